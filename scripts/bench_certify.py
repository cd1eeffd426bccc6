"""Benchmark: ``lipmip certify`` on the MNIST networks -> docs/benchmarks/certify.md.

Two tables, every number from a run of the real command line in a fresh process:

* **Throughput**: samples per second (wall time of the whole command, start-up and, for 2 workers,
  the Dask ``LocalCluster`` included) certifying the first ``--rows`` rows of ``mnist_test.csv``
  (pixels / 255) with ``mnist_relu_3_50`` at ε = 0.01 (ℓ∞), for ``--workers`` 1 and 2, with
  ``--method interval`` and, with ``--throughput-auto``, with the full ladder. These runs start from an
  empty results file each time.
* **Certified accuracy** at ε in ``--eps`` (default 0.005, 0.01, 0.02) for each network of
  ``--networks`` (default: every MNIST network in ../shared/networks/mnist) with ``--method interval``,
  and for ``--exact-networks`` (default ``mnist_relu_3_50``) with the full ladder (``--methods``,
  ``--time-limit``, default 10 s per sample): clean accuracy, certified accuracy, and the share of
  rows that are correct and that no attack refuted (an upper limit on the robust accuracy). These
  runs keep their results files in ``--work`` (a folder in the temporary directory): running it again
  resumes them (only unfinished rows are certified) and rewrites the Markdown from all files.

    python scripts/bench_certify.py                          # everything (tens of minutes on 2 cores)
    python scripts/bench_certify.py --rows 20 --networks mnist_relu_3_50.onnx mnist-net_256x2.onnx
    python scripts/bench_certify.py --skip-throughput --methods auto --time-limit 30 --networks mnist_relu_3_50.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETWORKS = REPO.parent / "shared" / "networks" / "mnist"
DATA = NETWORKS / "mnist_test.csv"
ORDER = ["mnist_relu_3_50.onnx", "mnist_relu_3_100.onnx", "mnist-net_256x2.onnx", "mnist_relu_6_100.onnx",
         "mnist_relu_9_100.onnx", "mnist-net_256x4.onnx", "mnist_relu_9_200.onnx", "mnist-net_256x6.onnx.gz"]


def certify(model: Path, eps: float, rows: int, out: Path, *, method: str, time_limit: str, workers: int = 1) -> float:
    """Run ``lipmip certify`` (resuming ``out``) and return its wall time in seconds."""
    command = [sys.executable, "-m", "lipmip.cli", "certify", str(model), str(DATA), "--scale", "1/255",
               "--eps", repr(eps), "--limit", str(rows), "--method", method, "--time-limit", time_limit,
               "--workers", str(workers), "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr}")
    print(f"  {done.stdout.strip()}  [{wall:.1f} s]", flush=True)
    return wall


def records(path: Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[0], lines[1:]


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def machine() -> str:
    import numpy

    import lipmip

    cpus = os.cpu_count()
    model = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        model = found.group(1).strip() if found else ""
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {model or 'unknown CPU'}, {cpus} logical CPUs, "
            f"Python {platform.python_version()}; lipmip {lipmip.__version__}, numpy {numpy.__version__}")


def throughput(args: argparse.Namespace, work: Path) -> list[str]:
    model = NETWORKS / "mnist_relu_3_50.onnx"
    methods = [("interval", "60")] + ([("auto", args.time_limit)] if args.throughput_auto else [])
    lines = ["| method | workers | rows | wall time | samples/s | certified |", "|---|---:|---:|---:|---:|---:|"]
    for method, limit in methods:
        for workers in args.workers:
            out = work / f"throughput_{method}_{workers}w.jsonl"
            out.unlink(missing_ok=True)
            print(f"throughput: {method}, {workers} worker(s)", flush=True)
            wall = certify(model, 0.01, args.throughput_rows, out, method=method, time_limit=limit, workers=workers)
            _, done = records(out)
            label = method if method == "interval" else f"auto, {limit} s/sample"
            lines.append(f"| {label} | {workers} | {len(done)} | {wall:.1f} s | {len(done) / wall:.2f} | "
                         f"{sum(r['certified'] for r in done)}/{len(done)} |")
    return lines


def accuracy(args: argparse.Namespace, work: Path, method: str, networks: list[str]) -> list[str]:
    eps_list = args.eps
    head = "| network | ReLUs | clean | " + " | ".join(f"certified ε={e:g}" for e in eps_list) + " | " + \
        " | ".join(f"not refuted ε={e:g}" for e in eps_list) + " | s/sample |"
    lines = [head, "|---|---:|---:|" + "---:|" * (2 * len(eps_list) + 1)]
    for name in networks:
        model = NETWORKS / name
        if not model.exists():
            print(f"skipping {name}: not found", flush=True)
            continue
        certified, not_refuted, seconds, clean, relus = [], [], [], None, None
        for eps in eps_list:
            out = work / f"{name}_{args.rows}_{method}_{args.time_limit}_{eps:g}.jsonl"
            print(f"accuracy: {name} eps={eps:g}", flush=True)
            certify(model, eps, args.rows, out, method=method, time_limit=args.time_limit, workers=args.accuracy_workers)
            header, done = records(out)
            relus = header["network"]["relus"]
            n = len(done)
            clean = sum(bool(r["correct"]) for r in done), n
            certified.append(percent(sum(r["certified"] for r in done), n))
            not_refuted.append(percent(sum(bool(r["correct"]) and r["adversarial_distance"] is None for r in done), n))
            seconds += [r["seconds"] for r in done if r["seconds"] is not None]
        mean = sum(seconds) / len(seconds) if seconds else float("nan")
        lines.append(f"| {name} | {relus} | {percent(*clean)} | " + " | ".join(certified) + " | " +
                     " | ".join(not_refuted) + f" | {mean:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100, help="first rows of mnist_test.csv, accuracy runs (default 100)")
    parser.add_argument("--throughput-rows", type=int, default=100, help="first rows, throughput runs (default 100)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    parser.add_argument("--networks", nargs="+", default=ORDER)
    parser.add_argument("--methods", nargs="+", default=["interval", "auto"],
                        help="methods of the accuracy runs (default: interval, auto)")
    parser.add_argument("--exact-networks", nargs="+", default=["mnist_relu_3_50.onnx"],
                        help="networks for the methods other than interval (default mnist_relu_3_50.onnx)")
    parser.add_argument("--time-limit", default="10", help="seconds per sample of the exact methods (default 10)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts of the throughput runs")
    parser.add_argument("--accuracy-workers", type=int, default=2, help="workers of the accuracy runs (default 2)")
    parser.add_argument("--throughput-auto", action="store_true", help="also time the full ladder (auto)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lipmip-bench-certify",
                        help="results files, kept for resuming (default: a folder in the temporary directory)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "certify.md")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: the MNIST networks are not shipped with lipmip")
    args.work.mkdir(parents=True, exist_ok=True)
    parts = ["# Certified robustness over a data set: `lipmip certify` on MNIST", "",
             f"Written by `python {' '.join(['scripts/bench_certify.py', *sys.argv[1:]])}` ({machine()}). "
             "Data: the first rows of `mnist_test.csv` (pixels / 255, ℓ∞ balls, not clipped to [0, 1]). Every "
             "run is the real command line in a fresh process.", ""]
    if not args.skip_throughput:
        parts += ["## Throughput", "",
                  f"`mnist_relu_3_50` at ε = 0.01, the first {args.throughput_rows} rows; wall time of the whole "
                  "command (start-up and the Dask cluster included); each run starts from an empty results file.",
                  "", *throughput(args, args.work), ""]
    parts += ["## Certified accuracy", "",
              f"The first {args.rows} rows. *certified*: rows proven robust at ε (and correctly classified); "
              "*not refuted*: rows correctly classified for which the attack found no adversarial example "
              "(an upper limit on the robust accuracy; the attack runs only on rows the bounds leave open); "
              "s/sample: mean time per row over the radii "
              f"(per process; the runs use {args.accuracy_workers} workers).", ""]
    for method in args.methods:
        networks = args.networks if method == "interval" else [n for n in args.networks if n in args.exact_networks]
        if not networks:
            continue
        title = "interval bounds only" if method == "interval" else \
            f"escalating to exact methods, time limit {args.time_limit} s per sample"
        parts += [f"### `--method {method}`: {title}", "", *accuracy(args, args.work, method, networks), ""]
    args.out.write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
