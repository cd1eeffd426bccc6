"""Benchmark: the fast estimators side by side, each against the exact value.

For every instance of the exact-engine benchmark (``bench_exact.py``: random networks of the LipMIP paper's
sizes, [64,64,64,10], [100,100,100,100,10], the LipBaB networks, ``mnist_relu_3_50`` balls) and the ACAS Xu
boxes of ``bench_mip.py``, one process runs, one after the other:

* the reference: ``method="bab"`` with a time limit (exact when it closes; otherwise its certified bracket);
* certified lower bounds: ``sample`` (2,000 points), ``sample`` with the region walk, ``ascent``
  (sampling + smoothed ascent + walk, JAX float32);
* the uncertified ``clever`` estimate;
* certified upper bounds: ``naive`` (norm product), ``interval`` (interval Jacobian), ``lipsdp`` (ℓ2 queries).

Each method runs twice on each instance: *cold* (the first call on that network shape, JAX compilation
included) and *warm* (the same call again); the tables give value / exact and both times. Then the
sampler's throughput (points per second ranked) on ``mnist_relu_3_100``, JAX float32 against numpy float64.

    python scripts/bench_estimate.py                # writes docs/benchmarks/estimate.md (about 15 min)
    python scripts/bench_estimate.py --resume       # continue from docs/benchmarks/estimate_raw.jsonl
    python scripts/bench_estimate.py --from-raw     # rewrite the markdown only

Raw records (one line per instance, appended as each finishes) go to ``estimate_raw.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exact  # noqa: E402
import bench_mip  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "benchmarks" / "estimate.md"
RAW = OUT.with_name("estimate_raw.jsonl")
LOWER = ("sample", "sample+walk", "ascent")
UPPER = ("interval", "lipsdp", "naive")
METHODS = LOWER + ("clever",) + UPPER
REFERENCE_LIMIT = 60.0
CLOSE = 1e-6
THROUGHPUT_POINTS = 100_000


def instances() -> list:
    acas = [bench_mip.acas_instance(f, p) for f in bench_mip.ACAS_FILES for p in (0, 1)]
    return bench_exact.instances() + acas


def build(instance, shared: Path):
    if instance.spec["kind"] == "lipbab":
        return bench_exact.build(instance.spec, shared)
    net, region, query, _ = bench_mip.build(instance.spec, shared)
    return net, region, query


def call(method: str, net, region, query):
    import lipmip

    if method == "sample+walk":
        return lipmip.lipschitz(net, region, query, method="sample", walk=True)
    if method == "lipsdp":
        if query.input_norm != 2.0:
            return None
        return lipmip.lipschitz(net, region, query, method="lipsdp")
    return lipmip.lipschitz(net, region, query, method=method)


def measure(instance, shared: Path) -> dict:
    import lipmip

    net, region, query = build(instance, shared)
    start = time.perf_counter()
    ref = lipmip.lipschitz(net, region, query, method="bab", time_limit=REFERENCE_LIMIT)
    record = {"instance": instance.key, "family": instance.family, "widths": list(net.widths),
              "input_norm": query.input_norm if math.isfinite(query.input_norm) else "inf",
              "reference": {"lower": ref.lower, "upper": ref.upper, "status": ref.status,
                            "seconds": time.perf_counter() - start}, "methods": {}}
    for method in METHODS:
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            try:
                r = call(method, net, region, query)
            except lipmip.LipmipError as exc:
                runs.append({"error": str(exc)})
                break
            if r is None:
                break
            runs.append({"lower": r.lower, "upper": r.upper, "estimate": r.estimate, "seconds": time.perf_counter() - t})
        if runs:
            record["methods"][method] = runs
    return record


def throughput(shared: Path) -> dict:
    import lipmip
    from lipmip.estimate.sampling import ranked_values

    net = lipmip.load(shared / "networks" / "mnist" / "mnist_relu_3_100.onnx")
    region = lipmip.Ball(np.full(784, 0.5), 0.05, "inf")
    points = region.sample(THROUGHPUT_POINTS, np.random.default_rng(0))
    free = np.ones(784, dtype=bool)
    out = {"network": "mnist_relu_3_100", "points": THROUGHPUT_POINTS}
    queries = (("margin (gradient)", lipmip.Query.margin(0, 1, 10, "inf")), ("Jacobian ∞→∞", lipmip.Query.vector("inf")))
    for label, query in queries:
        row = {}
        for backend, dtype in (("jax", "float32"), ("jax", "float64"), ("numpy", "float64")):
            n = THROUGHPUT_POINTS if backend == "jax" else THROUGHPUT_POINTS // 10
            ranked_values(net, query, points[:n], free, backend, dtype)  # compile this shape / warm up
            t = time.perf_counter()
            ranked_values(net, query, points[:n], free, backend, dtype)
            row[f"{backend}-{dtype}"] = n / (time.perf_counter() - t)
        out[label] = row
    return out


# ------------------------------------------------------------------ report
def exact_value(record: dict) -> float | None:
    ref = record["reference"]
    if ref["lower"] is not None and ref["upper"] is not None and ref["upper"] - ref["lower"] <= CLOSE * max(1.0, ref["upper"]):
        return ref["upper"]
    return None


def value(run: dict, method: str) -> float | None:
    if method in LOWER:
        return run.get("lower")
    if method == "clever":
        return run.get("estimate")
    return run.get("upper")


def cell(record: dict, method: str) -> str:
    runs = record["methods"].get(method)
    if not runs:
        return "–"
    if "error" in runs[0]:
        return "error"
    exact = exact_value(record)
    v = value(runs[0], method)
    times = f"{runs[0]['seconds']:.2f}/{runs[-1]['seconds']:.2f} s"
    if v is None:
        return f"none, {times}"
    if exact is None or exact == 0:
        return f"{v:.4g}, {times}"
    return f"{v / exact:.4f}, {times}"


def best_fast_lower(record: dict, warm: bool) -> tuple[float, float] | None:
    """The largest certified lower bound among the fast methods and the time of the method that gave it."""
    best = None
    for method in LOWER:
        runs = record["methods"].get(method)
        if not runs or "error" in runs[0]:
            continue
        run = runs[-1] if warm else runs[0]
        if run.get("lower") is not None and (best is None or run["lower"] > best[0]):
            best = (run["lower"], run["seconds"])
    return best


def report(records: list[dict], meta: dict) -> str:
    lines = ["# Fast estimators against the exact value", "",
             f"Written by `{meta['command']}` ({meta['machine']}; {meta['versions']}; started {meta['started']}). "
             "Raw records: [estimate_raw.jsonl](estimate_raw.jsonl).", "",
             "Each cell: value / exact value, then seconds cold / warm (cold: first call on the network, JAX "
             "compilation included; warm: the same call again). Lower-bound columns are certified lower bounds "
             "(≤ 1), upper-bound columns certified upper bounds (≥ 1), *clever* an uncertified estimate (either "
             f"side of 1). Exact values from `method=\"bab\"` ({REFERENCE_LIMIT:g} s limit); where it did not close "
             "the cell shows the raw value and the reference column the bracket. *lipsdp* runs on ℓ2 queries only. "
             "The machine is a shared 2-core VM: compare columns of one row.", ""]
    header = ["instance", "exact"] + list(METHODS)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        exact = exact_value(r)
        ref = r["reference"]
        ref_text = f"{exact:.6g}" if exact is not None else f"[{ref['lower']:.4g}, {ref['upper']:.4g}]"
        lines.append("| " + " | ".join([r["instance"], ref_text] + [cell(r, m) for m in METHODS]) + " |")
    lines += [""] + targets(records) + [""]
    if meta.get("throughput"):
        t = meta["throughput"]
        lines += [f"## Sampler throughput on {t['network']}", "",
                  "Points per second whose local Lipschitz value is computed (the ranking step of `sample` and "
                  f"`ascent`), one timed call after a warm-up call of the same size ({t['points']:,} points for JAX, a tenth of "
                  "that for numpy):", "", "| query | JAX float32 | JAX float64 | numpy float64 |", "|---|---:|---:|---:|"]
        for label in ("margin (gradient)", "Jacobian ∞→∞"):
            row = t[label]
            lines.append(f"| {label} | {row['jax-float32']:,.0f} | {row['jax-float64']:,.0f} | {row['numpy-float64']:,.0f} |")
        lines.append("")
    return "\n".join(lines)


def targets(records: list[dict]) -> list[str]:
    out = ["## Against the targets", ""]
    exact = [r for r in records if exact_value(r)]
    for warm in (True, False):
        hits = 0
        for r in exact:
            best = best_fast_lower(r, warm)
            if best and best[0] >= 0.98 * exact_value(r) and best[1] <= 1.0:
                hits += 1
        label = "warm" if warm else "cold (JAX compilation included)"
        out.append(f"- Best fast certified lower bound ≥ 0.98 × exact within 1 s, {label}: **{hits} of {len(exact)}** "
                   f"instances with an exact value ({100 * hits / max(1, len(exact)):.0f}%; target ≥ 90%).")
    ratios = []
    for r in exact:
        best = best_fast_lower(r, True)
        if best:
            ratios.append(best[0] / exact_value(r))
    if ratios:
        out.append(f"- Best fast lower bound / exact: median {statistics.median(ratios):.4f}, worst {min(ratios):.4f}.")
    acas = [r for r in exact if r["family"] == "acasxu" and r["methods"].get("interval")]
    if acas:
        worst = max(r["methods"]["interval"][0]["upper"] / exact_value(r) for r in acas)
        out.append(f"- Interval-Jacobian bound on the ACAS Xu boxes: at most **{worst:.2f}×** exact over {len(acas)} boxes "
                   "(target ≤ 3×).")
    misses = [f"{r['instance']} ({best_fast_lower(r, True)[0] / exact_value(r):.3f})" for r in exact
              if best_fast_lower(r, True) and best_fast_lower(r, True)[0] < 0.98 * exact_value(r)]
    if misses:
        out.append(f"- Below 0.98 × exact: {', '.join(misses)}. Every miss is a miss of the search, not of time (the "
                   "warm times are all under 1 s): the steepest activation region of these instances is one that "
                   "neither 20,000 sampled points nor 256 ascent restarts of 300 steps reach (measured on the misses "
                   "of an earlier run: neither changes a single ratio), presumably a region of small volume among less "
                   "steep ones (on mnist image 2 at 0.01 it lies 5 ReLU flips from the centre's pattern, and every "
                   "ascent restart ends in one region about 7% lower). The exact engines find them (`bab` closes each in "
                   "at most 14 s, most in under 1.5 s); the fast "
                   "bounds are for when an answer within a few percent, certified on the safe side, is enough.")
    missing = [r["instance"] for r in records if not exact_value(r)]
    if missing:
        out.append(f"- No exact value within {REFERENCE_LIMIT:g} s (left out of the counts): {', '.join(missing)}.")
    return out


# ------------------------------------------------------------------ driver
def load_raw() -> tuple[dict | None, list[dict]]:
    if not RAW.exists():
        return None, []
    meta, records = None, []
    for line in RAW.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash: that instance is run again
        if "meta" in item:
            meta = item["meta"]
        else:
            records.append(item)
    return meta, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resume", action="store_true", help="continue from the raw file")
    parser.add_argument("--from-raw", action="store_true", help="only rewrite the markdown from the raw file")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    if args.from_raw:
        meta, records = load_raw()
        OUT.write_text(report(records, meta))
        return
    meta, records = load_raw() if args.resume else (None, [])
    if meta is None:
        meta = {"command": "python scripts/bench_estimate.py", "machine": bench_mip.machine(),
                "versions": bench_mip.versions(), "started": time.strftime("%Y-%m-%d %H:%M")}
        RAW.write_text(json.dumps({"meta": meta}) + "\n")
    done = {r["instance"] for r in records}
    shared_ok = (args.shared / "networks").is_dir()
    for instance in instances():
        if instance.key in done:
            continue
        if not shared_ok and instance.spec["kind"] in ("acas", "mnist", "lipbab"):
            print(f"skipped (no shared networks): {instance.key}")
            continue
        record = measure(instance, args.shared)
        records.append(record)
        with RAW.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"{instance.key}: " + ", ".join(f"{m} {cell(record, m)}" for m in METHODS), flush=True)
    if shared_ok and "throughput" not in meta:
        meta["throughput"] = throughput(args.shared)
        lines = RAW.read_text().splitlines()
        lines[0] = json.dumps({"meta": meta})
        RAW.write_text("\n".join(lines) + "\n")
    OUT.write_text(report(records, meta))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
