"""Benchmark: the two exact engines side by side, MIP and region branch and bound, and ``auto``.

Every run is one call in a fresh Python subprocess, one at a time, with the same time limit. Methods:

* ``mip``: ``lipmip.lipschitz(method="mip")`` with its defaults (linear neuron bounds, warm start,
  HiGHS cross-checked by SCIP for the MILPs, SCIP for the ℓ2 MIQCPs);
* ``recipe``: the LipMIP recipe on HiGHS (interval bounds, big-M, no warm start, no cross-check), on the
  [64, 64, 64, 10] instance only (the issue's speed-up target is against it);
* ``bab``: ``method="bab"`` with its defaults, one process; ``bab-2w``: the same with ``workers=2``, on the
  instances where one process needs more than a second;
* ``auto``: ``method="auto"`` (cheap bounds, then the branch and bound for half the time, then the MIP);
  ``race``: ``method="auto", race=True`` (after the cheap bounds, the MIP in a second process beside the
  branch and bound, first to close wins).

Instances: random networks of bench_mip.py (He-normal weights, centres in [0, 1]^d, margin query
f_top − f_runner-up): the LipMIP paper's sizes at ℓ∞ 0.1, [64, 64, 64, 10] at ℓ∞ 0.02,
[100, 100, 100, 100, 10] at ℓ∞ and ℓ1 0.01; the four LipBaB networks over their boxes (p→p operator
norms of the full Jacobian for p ∈ {1, 2, ∞}); ``mnist_relu_3_50`` at ℓ∞ 0.005 and 0.01 (clipped to
[0, 1]) around the first five rows of ``mnist_test.csv`` (margin query).

    python scripts/bench_exact.py                 # full run (about 45 min), writes docs/benchmarks/exact.md
    python scripts/bench_exact.py --resume        # continue a stopped run from its raw file
    python scripts/bench_exact.py --from-raw docs/benchmarks/exact_raw.jsonl   # rewrite the markdown only

Raw records go to ``exact_raw.jsonl`` next to the markdown, one line per run, appended as each run ends.
Instances that need the team's shared networks are skipped, with a message, when that folder is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_mip
import numpy as np
from bench_mip import DEPTH_6, Instance, mnist_instance, random_instance

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "benchmarks" / "exact.md"
LIPBAB = {"iris_4_5_5_3": 1.0, "sd_10_15_10_3": 0.1, "sd_10_20_15_10_3": 0.1, "sd_10_30_30_30_3": 0.1}
RECIPE = {"bounds": "interval", "encoding": "bigm", "warm_start": False, "rescale": None, "cross_check": False,
          "solver": "highs"}
TWO_WORKERS_ABOVE = 1.0  # seconds of one-process bab above which bab-2w also runs
CLOSE = 1e-6             # relative gap taken as solved


@dataclass(frozen=True)
class Job:
    instance: Instance
    method: str

    @property
    def key(self) -> str:
        return f"{self.instance.key}|{self.method}"


def lipbab_instance(name: str, p: str) -> Instance:
    spec = {"kind": "lipbab", "name": name, "p": p}
    return Instance(f"LipBaB {name}, {bench_mip.NORM_NAMES[p]}→{bench_mip.NORM_NAMES[p]}", "lipbab", spec)


def instances() -> list[Instance]:
    lipmip_sizes = [random_instance(w, 0, 0.1) for w in ([2, 16, 16, 2], [10, 10, 10, 10, 10, 2], [2, 20, 20, 20, 2],
                                                          DEPTH_6)]
    big = [random_instance([64, 64, 64, 10], 0, 0.02), random_instance([100, 100, 100, 100, 10], 0, 0.01),
           random_instance([100, 100, 100, 100, 10], 0, 0.01, "1")]
    lipbab = [lipbab_instance(name, p) for name in LIPBAB for p in ("1", "2", "inf")]
    mnist = [mnist_instance(image, r) for r in (0.005, 0.01) for image in range(5)]
    return lipmip_sizes + big + lipbab + mnist


# ------------------------------------------------------------------ worker side
def build(spec: dict, shared: Path) -> tuple[Any, Any, Any]:
    import lipmip

    if spec["kind"] == "lipbab":
        net = lipmip.load(shared / "networks" / "lipbab" / f"{spec['name']}.npz")
        box = lipmip.Box(np.zeros(net.input_dim), np.full(net.input_dim, LIPBAB[spec["name"]]))
        return net, box, lipmip.Query.vector(spec["p"])
    net, region, query, _ = bench_mip.build(spec, shared)
    return net, region, query


def solve_one(spec: dict, method: str, time_limit: float, shared: Path) -> dict:
    import lipmip

    net, region, query = build(spec, shared)
    if method == "recipe":
        options: dict = {"method": "mip", **RECIPE}
    elif method == "bab-2w":
        options = {"method": "bab", "workers": 2}
    elif method == "race":
        options = {"method": "auto", "race": True}
    else:
        options = {"method": method}
    start = time.perf_counter()
    result = lipmip.lipschitz(net, region, query, time_limit=time_limit, **options)
    d = result.details
    return {
        "lower": result.lower, "upper": result.upper, "status": result.status, "seconds": time.perf_counter() - start,
        "relus": net.num_relus, "widths": list(net.widths),
        "stage": d.get("stage"), "nodes": d.get("nodes"), "unstable": d.get("unstable_neurons", d.get("unstable_relus")),
        "solver": d.get("solver"),
    }


# ------------------------------------------------------------------ parent side
def run_in_subprocess(job: Job, time_limit: float, shared: Path) -> dict:
    payload = {"spec": job.instance.spec, "method": job.method, "time_limit": time_limit, "shared": str(shared)}
    return bench_mip.run_worker(Path(__file__), payload, time_limit)


def solved(record: dict | None) -> bool:
    return (record is not None and record.get("lower") is not None and record.get("upper") is not None
            and record["upper"] - record["lower"] <= CLOSE * max(1.0, record["upper"]))


def execute(jobs: list[Job], args: argparse.Namespace, raw: Path, done: dict[str, dict]) -> dict[str, dict]:
    for job in jobs:
        if job.key in done:
            continue
        if job.method == "bab-2w":
            one = done.get(f"{job.instance.key}|bab")
            if one is None or one.get("seconds", 0) <= TWO_WORKERS_ABOVE:
                continue
        record = {"key": job.key, "instance": job.instance.key, "family": job.instance.family, "method": job.method,
                  **run_in_subprocess(job, args.time_limit, args.shared)}
        done[job.key] = record
        with raw.open("a") as f:
            f.write(json.dumps(record) + "\n")
        interval = f"[{record.get('lower')}, {record.get('upper')}]"
        print(f"{job.key}: {record['status']} {record.get('seconds', 0):.2f} s {interval}", flush=True)
    return done


# ------------------------------------------------------------------ report
def cell(record: dict | None, limit: float) -> str:
    if record is None:
        return "–"
    if record["status"] in ("killed", "crashed"):
        return record["status"]
    if solved(record):
        return f"**{record['seconds']:.2f} s**"
    lo, up = record.get("lower"), record.get("upper")
    return f"[{lo:.4g}, {up:.4g}] {record['status']}, {record['seconds']:.0f} s"


def value(records: list[dict]) -> str:
    exact = [r for r in records if solved(r)]
    if exact:
        return f"{max(r['lower'] for r in exact):.10g}"
    lower = max((r["lower"] for r in records if r.get("lower") is not None), default=None)
    upper = min((r["upper"] for r in records if r.get("upper") is not None), default=None)
    return "–" if lower is None else f"[{lower:.6g}, {upper:.6g}]"


def time_or_inf(record: dict | None) -> float:
    return record["seconds"] if solved(record) else math.inf


def auto_ratio(by: dict[str, dict], method: str) -> float | None:
    """``method``'s time over the better engine's (None when neither engine nor it solved the instance, or it
    did not run)."""
    if method not in by:
        return None
    best = min(time_or_inf(by.get("mip")), time_or_inf(by.get("bab")))
    mine = time_or_inf(by.get(method))
    if math.isinf(best) and math.isinf(mine):
        return None
    return mine / best if not math.isinf(best) else 0.0


FAMILIES = [("random", "Random networks"), ("lipbab", "LipBaB networks (p→p operator norms over their boxes)"),
            ("mnist", "mnist_relu_3_50, margin f_top − f_runner-up")]
METHODS = ["mip", "bab", "bab-2w", "auto", "race", "recipe"]


def write_markdown(records: dict[str, dict], args: argparse.Namespace, skipped: list[str]) -> None:
    limit = args.time_limit
    by_instance: dict[str, dict[str, dict]] = {}
    for r in records.values():
        by_instance.setdefault(r["instance"], {})[r["method"]] = r
    order = [i.key for i in instances() if i.key in by_instance]
    lines = ["# Exact engines: MIP, region branch and bound, auto", "",
             f"Written by `python scripts/bench_exact.py` ({bench_mip.machine()}; {bench_mip.versions()}). "
             f"One run at a time, each in a fresh process, time limit {limit:g} s, single-threaded solvers. "
             "A time in bold: the interval closed (to 1e-6 relative); otherwise the certified interval when the method "
             "stopped, its status and time (`bounded`: the MIP solver proved optimality but its widened bound and the "
             "verified witness differ by more than 1e-6). "
             "Times include neuron bounds and sampling; `bab-2w` is the branch and bound on two processes "
             f"(run where one process took over {TWO_WORKERS_ABOVE:g} s), which includes starting them.", ""]
    if skipped:
        lines += [f"Skipped (../shared absent): {', '.join(skipped)}.", ""]
    for family, title in FAMILIES:
        keys = [k for k in order if by_instance[k] and next(iter(by_instance[k].values()))["family"] == family]
        if not keys:
            continue
        methods = [m for m in METHODS if any(m in by_instance[k] for k in keys)]
        lines += [f"## {title}", "", "| instance | ReLUs | value | " + " | ".join(methods) + " |",
                  "|---|---:|---|" + "---|" * len(methods)]
        for k in keys:
            by = by_instance[k]
            relus = next(iter(by.values())).get("relus", "")
            lines.append(f"| {k} | {relus} | {value(list(by.values()))} | "
                         + " | ".join(cell(by.get(m), limit) for m in methods) + " |")
        lines.append("")
    lines += summary_lines(by_instance, order, limit)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def summary_lines(by_instance: dict[str, dict[str, dict]], order: list[str], limit: float) -> list[str]:
    lines = ["## Targets and summary", ""]
    n = len(order)
    for method in ("mip", "bab", "auto", "race"):
        count = sum(solved(by_instance[k].get(method)) for k in order)
        lines.append(f"- `{method}` closed {count} of {n} instances within {limit:g} s.")
    for method in ("auto", "race"):
        ratios = [r for r in (auto_ratio(by_instance[k], method) for k in order) if r is not None]
        if ratios:
            closed = sum(not math.isinf(r) for r in ratios)
            worst = max(ratios)
            lines.append(f"- `{method}`'s time over the better engine's: median {statistics.median(ratios):.2f}, "
                         f"worst {'not closed' if math.isinf(worst) else f'{worst:.2f}'}; it closed {closed} of the "
                         f"{len(ratios)} instances that it or either engine closed.")
    key64 = next((k for k in order if k.startswith("random 64-64-64-10")), None)
    if key64:
        by = by_instance[key64]
        bab, recipe = by.get("bab"), by.get("recipe")
        if solved(bab):
            speed = (f"{time_or_inf(recipe) / bab['seconds']:.0f}×" if solved(recipe)
                     else f"more than {limit / bab['seconds']:.0f}× (the recipe did not finish in {limit:g} s)")
            lines.append(f"- [64, 64, 64, 10] at ℓ∞ 0.02: bab exact in {bab['seconds']:.2f} s (target ≤ 2 s), "
                         f"{speed} faster than interval bounds + big-M MILP on HiGHS (target ≥ 20×).")
    for k in order:
        if k.startswith("random 100-100-100-100-10"):
            by = by_instance[k]
            best = min((time_or_inf(by.get(m)) for m in ("bab", "auto", "mip", "bab-2w")))
            lines.append(f"- {k}: " + (f"exact in {best:.1f} s (target ≤ 60 s)." if not math.isinf(best)
                                       else f"not closed in {limit:g} s (target ≤ 60 s); best interval "
                                            f"{value(list(by.values()))}."))
    lipbab = [k for k in order if k.startswith("LipBaB")]
    if lipbab:
        worst = max(time_or_inf(by_instance[k].get("bab")) for k in lipbab)
        lines.append(f"- LipBaB: bab's slowest of {len(lipbab)} cases {worst:.2f} s (target: each ≤ 60 s).")
    two = [(by_instance[k]["bab"]["seconds"], by_instance[k]["bab-2w"]["seconds"]) for k in order
           if solved(by_instance[k].get("bab")) and solved(by_instance[k].get("bab-2w"))]
    if two:
        lines.append(f"- bab on two processes: median speed-up {statistics.median(a / b for a, b in two):.2f}× over "
                     f"{len(two)} instances (each ran on two cores; the start of the workers is included).")
    return lines + [""]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--shared", type=Path, default=bench_mip.DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the raw file")
    parser.add_argument("--from-raw", type=Path, help="only rewrite the markdown from this raw file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(solve_one(job["spec"], job["method"], job["time_limit"], Path(job["shared"]))))
        return
    shared_ok = (args.shared / "networks").is_dir()
    todo = instances()
    skipped = [i.key for i in todo if i.spec["kind"] in ("lipbab", "mnist", "acas") and not shared_ok]
    todo = [i for i in todo if i.key not in skipped]
    raw = args.from_raw or args.out.with_name("exact_raw.jsonl")
    done: dict[str, dict] = {}
    if args.from_raw or args.resume:
        for line in raw.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["key"]] = record
    elif raw.exists():
        raw.unlink()
    if not args.from_raw:
        jobs = [Job(i, m) for i in todo for m in ("bab", "bab-2w", "auto", "mip", "race")]
        jobs += [Job(i, "recipe") for i in todo if i.key.startswith("random 64-64-64-10")]
        execute(jobs, args, raw, done)
    write_markdown(done, args, skipped)


if __name__ == "__main__":
    main()
