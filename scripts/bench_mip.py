"""Benchmark: time to optimality of ``method="mip"``, the LipMIP recipe against lipmip's best configuration.

Every run is one call of :func:`lipmip.mip.mip_lipschitz` in a fresh Python subprocess, one run at a
time, each with the same time limit (single-threaded solver). Configurations are compared on the same
instance as ratios, because the machine is shared and timings are noisy.

* ``lipmip`` is the recipe of Jordan and Dimakis (2020): ``bounds="interval", encoding="bigm",
  warm_start=False, rescale=None``;
* ``best`` is lipmip's best configuration (:data:`BEST`);
* the ablations change one option of ``best`` at a time: neuron bounds, big-M vs partition P=2/4,
  rescaling, warm start, and the solver (HiGHS, SCIP; Gurobi when installed, on models within its
  licence). The solver comparison runs both ``lipmip`` and ``best`` on each solver.

Instances: random networks of the layer sizes in the authors' LipMIP code (He-normal weights, uniform
biases, ℓ∞ balls of radius 0.1 around centres uniform in [0, 1]^d), the [100,100,100,100,10] network at
ℓ∞ radius 0.01 of lipmip's MIP issue (the target instance), ACAS Xu boxes (networks 1_1 and 3_3; at
these seeded points the two smallest scores of 5_9 have Lipschitz constant 0) and ``mnist_relu_3_50``
ℓ∞ balls of radius 0.005-0.05 (plus an ℓ1 ball) around ``mnist_test.csv`` images. The query is the
margin f_top − f_runner-up at the centre (ACAS Xu: the two smallest scores, the advisory being the
minimum); the input norm is the ball's (ℓ∞: objective ‖g‖₁).

    python scripts/bench_mip.py --quick        # smoke test, < 3 min, writes /tmp/bench_mip_quick.md
    python scripts/bench_mip.py                # full run, <= --budget (35) min, writes docs/benchmarks/mip.md
    python scripts/bench_mip.py --resume       # continue a stopped run from its raw file
    python scripts/bench_mip.py --from-raw docs/benchmarks/mip_raw.jsonl   # rewrite the markdown only

Order of the runs: the target instance, recipe vs best on the main instances, the solver comparison, the
ablations (and ``--recipe-headline-limit``'s long recipe run last); a run that would end past the budget
is skipped and listed as such. Raw results go to a JSON-lines file next to the markdown
(``mip_raw.jsonl``: kept with the docs so the tables can be audited and re-rendered), one line per run,
appended as each run ends, so a crash loses nothing.
Instances that need the team's shared networks are skipped, with a message, when that folder is absent.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
OUT = REPO / "docs" / "benchmarks" / "mip.md"
QUICK_OUT = Path("/tmp/bench_mip_quick.md")

# ------------------------------------------------------------------ configurations
# cross_check off everywhere: this compares formulations and solvers, and the SCIP re-solve of an optimal
# HiGHS result (lipmip's default, a soundness measure) would add SCIP's time to every HiGHS run
RECIPE: dict[str, Any] = {"bounds": "interval", "encoding": "bigm", "warm_start": False, "rescale": None,
                          "cross_check": False}
BEST: dict[str, Any] = {"bounds": "lp", "encoding": "bigm", "warm_start": True, "rescale": None, "cross_check": False}
# one option of BEST changed at a time
ABLATIONS: dict[str, dict[str, Any]] = {
    "bounds=interval": {"bounds": "interval"},
    "bounds=linear": {"bounds": "linear"},
    "bounds=lp": {"bounds": "lp"},
    "partition P=2": {"encoding": "partition", "partitions": 2},
    "partition P=4": {"encoding": "partition", "partitions": 4},
    "bigm": {"encoding": "bigm"},
    "rescale=weights": {"rescale": "weights"},
    "rescale=big_m": {"rescale": "big_m"},
    "rescale off": {"rescale": None},
    "warm start on": {"warm_start": True},
    "warm start off": {"warm_start": False},
}
ABLATION_GROUPS: dict[str, list[str]] = {
    "neuron bounds": ["bounds=interval", "bounds=linear", "bounds=lp"],
    "ReLU encoding": ["bigm", "partition P=2", "partition P=4"],
    "rescaling": ["rescale off", "rescale=weights", "rescale=big_m"],
    "warm start": ["warm start on", "warm start off"],
}
SOLVERS = ("highs", "scip", "gurobi")

# ------------------------------------------------------------------ instances
ACAS_FILES = ["ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_3_3_batch_2000.onnx"]
ACAS_LO = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])
MNIST_NET = "mnist_relu_3_50.onnx"
NORM_NAMES = {"inf": "ℓ∞", "1": "ℓ1", "2": "ℓ2"}
HEADLINE = {"kind": "random", "widths": [100, 100, 100, 100, 10], "seed": 0, "radius": 0.01, "norm": "inf"}


@dataclass(frozen=True)
class Instance:
    """One (network, region, query), rebuilt from ``spec`` inside the worker process."""

    key: str
    family: str
    spec: dict


@dataclass(frozen=True)
class Run:
    """One configuration on one instance."""

    instance: Instance
    config: str            # "lipmip", "best" or an ablation name
    options: dict          # keyword options of mip_lipschitz (solver and time limit included)
    parts: tuple[str, ...]  # the report parts that use it: "main", "ablation", "solver", "headline", ...

    @property
    def key(self) -> str:
        """Identifies the run in the raw file (instance, configuration, solver, time limit)."""
        return f"{self.instance.key}|{self.config}|{self.options['solver']}|{self.options['time_limit']:g}"


def random_instance(widths: list[int], seed: int, radius: float, norm: str = "inf") -> Instance:
    """A random network of layer sizes ``widths`` (seeded) on a ball around a seeded centre in [0, 1]^d."""
    spec = {"kind": "random", "widths": list(widths), "seed": seed, "radius": radius, "norm": norm}
    name = "-".join(str(w) for w in widths)
    return Instance(f"random {name} seed {seed}, {NORM_NAMES[norm]} {radius:g}", "random", spec)


def acas_instance(file: str, point: int, half_width: float = 0.02) -> Instance:
    """An ACAS Xu network on a box around a seeded point of its normalised input domain."""
    spec = {"kind": "acas", "file": file, "point": point, "half_width": half_width}
    short = file.replace("ACASXU_run2a_", "").replace("_batch_2000.onnx", "")
    return Instance(f"ACAS Xu {short} point {point}, box ±{half_width:g}", "acasxu", spec)


def mnist_instance(image: int, radius: float, norm: str = "inf") -> Instance:
    """``mnist_relu_3_50`` on a ball around test image ``image`` (ℓ∞ balls clipped to [0, 1])."""
    spec = {"kind": "mnist", "file": MNIST_NET, "image": image, "radius": radius, "norm": norm}
    return Instance(f"mnist_relu_3_50 image {image}, {NORM_NAMES[norm]} {radius:g}", "mnist", spec)


DEPTH_6 = [2] + [20] * 6 + [2]
DEPTH_10 = [2] + [20] * 10 + [2]


def main_instances(quick: bool) -> list[Instance]:
    """The recipe-vs-best instances (HiGHS)."""
    if quick:
        return [random_instance([2, 16, 16, 2], 0, 0.1), random_instance([2, 20, 20, 20, 2], 0, 0.1),
                random_instance(DEPTH_6, 0, 0.1), acas_instance(ACAS_FILES[0], 0), mnist_instance(0, 0.005)]
    rand = [random_instance([2, 16, 16, 2], 0, 0.1), random_instance([10, 10, 10, 10, 10, 2], 0, 0.1)]
    rand += [random_instance([2, w, w, w, 2], 0, 0.1) for w in (20, 60)]
    rand += [random_instance(DEPTH_6, 0, 0.1), random_instance(DEPTH_10, 0, 0.1)]
    rand += [random_instance([100, 100, 100, 100, 10], 0, 0.1, "1")]
    acas = [acas_instance(f, p) for f in ACAS_FILES for p in (0, 1)]
    mnist = [mnist_instance(0, r) for r in (0.005, 0.01, 0.05)] + [mnist_instance(0, 0.5, "1")]
    return rand + acas + mnist


def ablation_instances(quick: bool) -> list[Instance]:
    """Instances (among the main ones) for the one-option-at-a-time ablations."""
    if quick:
        return [random_instance([2, 20, 20, 20, 2], 0, 0.1), acas_instance(ACAS_FILES[0], 0)]
    return [random_instance([2, 60, 60, 60, 2], 0, 0.1), random_instance(DEPTH_6, 0, 0.1),
            acas_instance(ACAS_FILES[1], 0), mnist_instance(0, 0.005)]


def solver_instances(quick: bool) -> list[Instance]:
    """Instances for HiGHS vs SCIP (vs Gurobi): recipe and best on each solver."""
    if quick:
        return [random_instance([2, 20, 20, 20, 2], 0, 0.1)]
    return [random_instance(DEPTH_6, 0, 0.1), acas_instance(ACAS_FILES[0], 0)]


# ------------------------------------------------------------------ building an instance (worker side)
def _random_layer(rng: np.random.Generator, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """He-normal weights (variance 2/fan_in, so gradients keep their scale through deep nets) and biases
    uniform in ±1/√fan_in (PyTorch's ``nn.Linear`` default)."""
    k = 1.0 / math.sqrt(fan_in)
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), (fan_out, fan_in)), rng.uniform(-k, k, fan_out)


def _margin_query(scores: np.ndarray, smallest: bool, norm: str) -> Any:
    """``Query.margin(top, runner-up)`` ranked by ``scores`` (largest first, or smallest for ACAS Xu)."""
    import lipmip

    order = np.argsort(scores) if smallest else np.argsort(-scores)
    return lipmip.Query.margin(int(order[0]), int(order[1]), scores.size, norm), [int(order[0]), int(order[1])]


def _ball(center: np.ndarray, radius: float, norm: str, clip: bool) -> Any:
    """The region: an ℓ∞ ball (clipped to [0, 1] for images) or an ℓ1/ℓ2 ball."""
    import lipmip

    if norm == "inf":
        ball = lipmip.Ball(center, radius, "inf")
        return ball.clip(0, 1) if clip else ball
    return lipmip.Ball(center, radius, norm)


def build(spec: dict, shared: Path) -> tuple[Any, Any, Any, dict]:
    """``(net, region, query, facts)`` for an instance spec."""
    import lipmip

    kind = spec["kind"]
    if kind == "random":
        rng = np.random.default_rng(spec["seed"])
        widths = spec["widths"]
        params = [_random_layer(rng, i, o) for i, o in zip(widths[:-1], widths[1:])]
        net = lipmip.Network.from_params(params)
        center = rng.random(widths[0])
        region = _ball(center, spec["radius"], spec["norm"], clip=False)
        query, pair = _margin_query(net(center), False, spec["norm"])
    elif kind == "acas":
        net = lipmip.load(shared / "networks" / "acasxu" / spec["file"])
        rng = np.random.default_rng(spec["point"])
        x = ACAS_LO + (ACAS_HI - ACAS_LO) * rng.random(5)
        h = spec["half_width"]
        region = lipmip.Box(np.maximum(x - h, ACAS_LO), np.minimum(x + h, ACAS_HI))
        query, pair = _margin_query(net(x), True, "inf")
    elif kind == "mnist":
        net = lipmip.load(shared / "networks" / "mnist" / spec["file"])
        data = np.loadtxt(shared / "networks" / "mnist" / "mnist_test.csv", delimiter=",", max_rows=spec["image"] + 1, ndmin=2)
        x = data[spec["image"], 1:] / 255.0
        region = _ball(x, spec["radius"], spec["norm"], clip=True)
        # rank by the last layer's pre-activations: the output ReLU of the ERAN nets ties many logits at 0
        query, pair = _margin_query(net.pre_activations(x)[-1], False, spec["norm"])
    else:
        raise ValueError(f"unknown instance kind {kind!r}")
    facts = {"widths": list(net.widths), "relus": net.num_relus, "margin": pair}
    return net, region, query, facts


def needs_shared(instance: Instance) -> bool:
    """Whether the instance reads a file from the shared networks folder."""
    return instance.spec["kind"] in ("acas", "mnist")


# ------------------------------------------------------------------ one run (worker side)
def solve_one(spec: dict, options: dict, shared: Path) -> dict:
    """Run ``mip_lipschitz`` once and return a JSON-ready record."""
    from lipmip.errors import SolverUnavailableError
    from lipmip.mip import mip_lipschitz

    net, region, query, facts = build(spec, shared)
    start = time.perf_counter()
    try:
        result = mip_lipschitz(net, region, query, **options)
    except SolverUnavailableError as exc:
        return {**facts, "status": "unavailable", "message": str(exc), "seconds": time.perf_counter() - start}
    d = result.details
    gap = result.relative_gap
    return {
        **facts,
        "status": result.status,
        "solver_status": d.get("solver_status"),
        "solved": d.get("solver_status") == "optimal" and result.status in ("optimal", "bounded"),
        "lower": result.lower,
        "upper": result.upper,
        "relative_gap": None if math.isinf(gap) else gap,
        "seconds": result.seconds,
        "solver_seconds": d.get("solver_seconds"),
        "nodes": d.get("nodes"),
        "unstable_relus": d.get("unstable_relus"),
        "binaries": d.get("binaries"),
        "variables": d.get("variables"),
        "solver": d.get("solver"),
        "solver_best_bound": d.get("solver_best_bound"),
        "solver_incumbent": d.get("solver_incumbent"),
        "upper_from": d.get("upper_from"),
        "lower_from": d.get("lower_from"),
        "message": d.get("solver_message", ""),
    }


def worker(job_json: str) -> None:
    """The ``--worker`` entry point: one run, its record printed as one JSON line on stdout."""
    job = json.loads(job_json)
    record = solve_one(job["spec"], job["options"], Path(job["shared"]))
    print(json.dumps(record))


# ------------------------------------------------------------------ planning and running (parent side)
def config_options(config: str, solver: str, time_limit: float) -> dict:
    """The ``mip_lipschitz`` options of a named configuration."""
    if config == "lipmip":
        base = dict(RECIPE)
    elif config == "best":
        base = dict(BEST)
    else:
        base = {**BEST, **ABLATIONS[config]}
    return {**base, "solver": solver, "time_limit": time_limit, "threads": 1, "seed": 0}


def ablation_configs() -> list[str]:
    """Ablation configurations that differ from ``best`` (the ones equal to it are the ``best`` run)."""
    return [name for name, change in ABLATIONS.items() if {**BEST, **change} != BEST]


def plan(args: argparse.Namespace, shared_ok: bool) -> tuple[list[Run], list[str]]:
    """The runs in the order they are made (most important first), and the instances skipped for want of
    the shared networks. A run needed by several parts (e.g. ``best`` on HiGHS) is made once."""
    quick = args.quick
    planned: dict[str, Run] = {}
    skipped = sorted({i.key for i in main_instances(quick) + ablation_instances(quick) + solver_instances(quick)
                      if needs_shared(i) and not shared_ok})

    def add(instances: Iterable[Instance], configs: Iterable[str], solver: str, part: str, limit: float) -> None:
        """Plan ``configs`` on ``instances``, merging with runs already planned for another part."""
        for inst in instances:
            if needs_shared(inst) and not shared_ok:
                continue
            for config in configs:
                run = Run(inst, config, config_options(config, solver, limit), (part,))
                old = planned.get(run.key)
                planned[run.key] = run if old is None else Run(inst, config, old.options, old.parts + (part,))

    headline = [random_instance(**{k: v for k, v in HEADLINE.items() if k != "kind"})]
    if not quick:
        add(headline, ["best", "lipmip"], "highs", "headline", args.headline_limit)
    add(main_instances(quick), ["best", "lipmip"], "highs", "main", args.time_limit)
    for solver in SOLVERS:
        add(solver_instances(quick), ["best", "lipmip"], solver, "solver", args.time_limit)
    add(ablation_instances(quick), ["best", *ablation_configs()], "highs", "ablation", args.time_limit)
    if args.recipe_headline_limit and not quick:
        add(headline, ["lipmip"], "highs", "headline-long", args.recipe_headline_limit)
    return list(planned.values()), skipped


def solver_usable(name: str) -> bool:
    """Whether the backend ``name`` is installed (and, for Gurobi, licensed) here."""
    from lipmip.solvers.registry import available_solvers

    return name in available_solvers()


def run_in_subprocess(run: Run, shared: Path) -> dict:
    """One run in a fresh interpreter."""
    job = {"spec": run.instance.spec, "options": run.options, "shared": str(shared)}
    return run_worker(Path(__file__), job, float(run.options["time_limit"]))


def run_worker(script: Path, job: dict, time_limit: float) -> dict:
    """``python script --worker JOB`` in a fresh interpreter: the JSON record it prints last, with
    ``wall_seconds``; a run that hangs is killed after a generous wall-clock limit (status ``killed``), one
    that fails gives status ``crashed`` with the end of its output."""
    hard = 3 * time_limit + 120
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(script.resolve()), "--worker", json.dumps(job)],
                              capture_output=True, text=True, timeout=hard, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "message": f"no answer after {hard:.0f} s", "seconds": time.perf_counter() - start}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"status": "crashed", "message": " / ".join(tail), "seconds": time.perf_counter() - start}
    record = json.loads(lines[-1])
    record["wall_seconds"] = time.perf_counter() - start
    return record


def describe(record: dict) -> str:
    """One line about a finished run, for the progress log."""
    gap = record.get("relative_gap")
    gap_text = "-" if gap is None else f"{100 * gap:.3g}%"
    return (f"{record['status']} gap {gap_text} {record.get('seconds', 0):.1f}s nodes {record.get('nodes')} "
            f"unstable {record.get('unstable_relus')}")


def load_raw(path: Path) -> tuple[dict, list[dict]]:
    """``(meta, records)`` from a raw JSON-lines file (the first line may be ``{"meta": ...}``)."""
    if not path.exists():
        return {}, []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    meta = next((r["meta"] for r in rows if "meta" in r), {})
    latest = {r["run_key"]: r for r in rows if "meta" not in r}  # a resumed run's new record replaces the old one
    return meta, list(latest.values())


def run_meta(args: argparse.Namespace, command: str) -> dict:
    """What the markdown header needs: command, limits, machine, versions, start time."""
    return {"command": command, "time_limit": args.time_limit, "quick": args.quick, "budget_min": args.budget,
            "machine": machine(), "versions": versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def execute(runs: list[Run], args: argparse.Namespace, meta: dict) -> list[dict]:
    """Make the runs one after the other, appending each record to ``args.raw`` as it ends."""
    raw_path = args.raw
    not_made = ("skipped", "killed", "crashed")
    done = {r["run_key"]: r for r in load_raw(raw_path)[1] if r["status"] not in not_made} if args.resume else {}
    if not args.resume or not raw_path.exists():
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(json.dumps({"meta": meta}) + "\n")
    records: list[dict] = []
    usable = {s: solver_usable(s) for s in SOLVERS}
    start = time.perf_counter()
    for i, run in enumerate(runs, 1):
        elapsed = time.perf_counter() - start
        prefix = f"[{i}/{len(runs)} {elapsed / 60:4.1f} min] {run.instance.key} | {run.config} | {run.options['solver']}"
        if run.key in done:
            records.append({**done[run.key], "parts": list(run.parts)})
            print(f"{prefix}: from {raw_path.name}", file=sys.stderr, flush=True)
            continue
        if not usable[run.options["solver"]]:
            record = {"status": "unavailable", "message": f"{run.options['solver']} is not installed or not licensed"}
        elif elapsed + float(run.options["time_limit"]) > 60 * args.budget:
            record = {"status": "skipped", "message": f"over the {args.budget:g}-minute budget"}
        else:
            record = run_in_subprocess(run, args.shared)
        record.update(run_key=run.key, instance=run.instance.key, family=run.instance.family, config=run.config,
                      parts=list(run.parts), options=run.options, spec=run.instance.spec)
        records.append(record)
        with raw_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{prefix}: {describe(record)}", file=sys.stderr, flush=True)
    return records


# ------------------------------------------------------------------ statistics
@dataclass
class Timing:
    """Time to optimality, or a lower bound on it when the run stopped unsolved (``censored``)."""

    seconds: float
    censored: bool

    @classmethod
    def of(cls, record: dict | None) -> "Timing | None":
        """The timing of a run, None when it was not made (unavailable, skipped, killed, crashed)."""
        if record is None or record.get("status") in ("unavailable", "skipped", "killed", "crashed", None):
            return None
        if record.get("solved"):
            return cls(record["seconds"], False)
        return cls(record["seconds"], True)  # unsolved (time limit, solver error): time to optimality > seconds


def ratio_bounds(slow: Timing, fast: Timing) -> tuple[float, float]:
    """Bounds ``(lo, hi)`` on ``time(slow) / time(fast)`` given possibly censored times."""
    lo = slow.seconds / fast.seconds if not fast.censored else 0.0
    hi = slow.seconds / fast.seconds if not slow.censored else math.inf
    if fast.censored and not slow.censored:
        hi = slow.seconds / fast.seconds
    if slow.censored and not fast.censored:
        lo = slow.seconds / fast.seconds
    return lo, hi


def median_bounds(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Bounds on the median of quantities each known only to lie in ``[lo, hi]``."""
    if not pairs:
        return math.nan, math.nan
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def median_time(timings: list[Timing]) -> tuple[float, bool]:
    """The median time to optimality, unsolved runs counted as +∞; ``(value, is_lower_bound)``."""
    values = sorted(math.inf if t.censored else t.seconds for t in timings)
    if not values:
        return math.nan, False
    med = statistics.median(values)
    if math.isinf(med):
        return statistics.median(t.seconds for t in timings), True
    return med, False


# ------------------------------------------------------------------ markdown
def fmt_ratio(lo: float, hi: float) -> str:
    """A ratio known to lie in ``[lo, hi]``: exact, ``≥``, ``≤``, a range, or ``?``."""
    if math.isnan(lo):
        return "-"
    if lo == hi:
        return f"{lo:.3g}×"
    if math.isinf(hi):
        return f"≥ {lo:.3g}×" if lo > 0 else "?"
    if lo == 0:
        return f"≤ {hi:.3g}×"
    return f"{lo:.3g}–{hi:.3g}×"


def fmt_time(t: Timing | None) -> str:
    """Seconds to optimality, ``> s`` when unsolved."""
    if t is None:
        return "-"
    return f"> {t.seconds:.0f}" if t.censored else f"{t.seconds:.2f}"


def fmt_gap(record: dict | None) -> str:
    """The certified relative gap of a run, in percent."""
    if record is None or record.get("status") in ("unavailable", "skipped", "killed", "crashed"):
        return "-" if record is None else record["status"]
    gap = record.get("relative_gap")
    return "∞" if gap is None else f"{100 * gap:.3g}%"


def index(records: list[dict]) -> dict[tuple[str, str, str, float], dict]:
    """Records by ``(instance, config, solver, time limit)``."""
    return {(r["instance"], r["config"], r["options"]["solver"], float(r["options"]["time_limit"])): r for r in records}


def comparison_rows(records: list[dict], part: str, solver: str, limit: float, config: str = "lipmip") -> list[dict]:
    """Per instance of ``part``: the ``config`` run against the ``best`` run on ``solver``, both with ``limit``."""
    by = index(records)
    rows = []
    for inst in dict.fromkeys(r["instance"] for r in records if part in r["parts"]):
        best, other = by.get((inst, "best", solver, limit)), by.get((inst, config, solver, limit))
        if best is not None or other is not None:
            family = (best or other)["family"]
            rows.append({"instance": inst, "family": family, "best": best, "other": other,
                         "t_best": Timing.of(best), "t_other": Timing.of(other)})
    return rows


def _value(record: dict | None) -> str:
    """The certified interval of a run, short."""
    if not record or record.get("upper") is None:
        return "-"
    return f"[{record.get('lower') or 0:.4g}, {record['upper']:.4g}]"


def comparison_table(rows: list[dict]) -> list[str]:
    """Markdown rows: recipe and best side by side, with the speed-up."""
    lines = [
        "| instance | ReLUs | unstable recipe / best | recipe: status | gap | s | nodes "
        "| best: status | gap | s | nodes | best: certified L | speed-up |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        b, o = row["best"] or {}, row["other"] or {}
        both = row["t_best"] is not None and row["t_other"] is not None
        ratio = ratio_bounds(row["t_other"], row["t_best"]) if both else (math.nan, math.nan)
        lines.append(
            f"| {row['instance']} | {b.get('relus', o.get('relus', '-'))} | {o.get('unstable_relus', '-')} / "
            f"{b.get('unstable_relus', '-')} | {o.get('status', '-')} | {fmt_gap(row['other'])} | {fmt_time(row['t_other'])} "
            f"| {o.get('nodes', '-')} | {b.get('status', '-')} | {fmt_gap(row['best'])} | {fmt_time(row['t_best'])} "
            f"| {b.get('nodes', '-')} | {_value(row['best'])} | {fmt_ratio(*ratio)} |"
        )
    return lines


def summary(rows: list[dict]) -> dict:
    """Counts and medians over the rows where both runs happened."""
    both = [r for r in rows if r["t_best"] and r["t_other"]]
    ratios = [ratio_bounds(r["t_other"], r["t_best"]) for r in both]
    return {
        "n": len(both),
        "solved_best": sum(not r["t_best"].censored for r in both),
        "solved_other": sum(not r["t_other"].censored for r in both),
        "median_best": median_time([r["t_best"] for r in both]),
        "median_other": median_time([r["t_other"] for r in both]),
        "median_ratio": median_bounds(ratios),
    }


def fmt_median(value: tuple[float, bool]) -> str:
    """A median time, ``> s`` when it is only a lower bound."""
    v, lower = value
    if math.isnan(v):
        return "-"
    return f"> {v:.3g}" if lower else f"{v:.3g}"


SUMMARY_HEAD = ["| instances | n | recipe solved | best solved | recipe median s | best median s | median speed-up |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]


def summary_line(s: dict, label: str) -> str:
    """One row of the summary table."""
    return (f"| {label} | {s['n']} | {s['solved_other']} | {s['solved_best']} | {fmt_median(s['median_other'])} "
            f"| {fmt_median(s['median_best'])} | {fmt_ratio(*s['median_ratio'])} |")


def summary_table(rows: list[dict], label: str) -> list[str]:
    """The summary over all rows, then per family when there are several."""
    lines = SUMMARY_HEAD + [summary_line(summary(rows), label)]
    families = list(dict.fromkeys(r["family"] for r in rows))
    if len(families) > 1:
        lines += [summary_line(summary([r for r in rows if r["family"] == f]), f"{label}: {f}") for f in families]
    return lines


def ablation_cell(record: dict | None, t: Timing | None, best: Timing | None) -> tuple[str, tuple[float, float] | None]:
    """One cell of an ablation table and the ratio to best it shows (None for best itself)."""
    if record is None or t is None or best is None:
        return ("-" if record is None else record["status"]), None
    r = ratio_bounds(t, best) if record["config"] != "best" else None
    extra = f", **{fmt_ratio(*r)}**" if r else ""
    return (f"{fmt_time(t)} s ({fmt_gap(record)}, {record.get('unstable_relus')} unst., "
            f"{record.get('nodes')} nodes{extra})"), r


def ablation_section(records: list[dict], limit: float) -> list[str]:
    """One table per ablation group: each instance's runs and the median ratio to best."""
    by = index(records)
    instances = list(dict.fromkeys(r["instance"] for r in records if "ablation" in r["parts"]))
    lines: list[str] = []
    for group, names in ABLATION_GROUPS.items():
        configs = ["best" if {**BEST, **ABLATIONS[n]} == BEST else n for n in names]
        labels = [f"{n} (best)" if c == "best" else n for n, c in zip(names, configs)]
        lines += [f"### {group}", "", "| instance | " + " | ".join(labels) + " |", "| --- |" + " ---: |" * len(labels)]
        ratios: dict[str, list[tuple[float, float]]] = {c: [] for c in configs}
        for inst in instances:
            best = Timing.of(by.get((inst, "best", "highs", limit)))
            cells = []
            for config in configs:
                rec = by.get((inst, config, "highs", limit))
                cell, r = ablation_cell(rec, Timing.of(rec), best)
                cells.append(cell)
                if r:
                    ratios[config].append(r)
            lines.append(f"| {inst} | " + " | ".join(cells) + " |")
        medians = ["1×" if c == "best" else fmt_ratio(*median_bounds(ratios[c])) for c in configs]
        lines += ["| **median time / time(best)** | " + " | ".join(medians) + " |", ""]
    return lines


def versions() -> str:
    """Versions of lipmip, the solvers and numpy/scipy."""
    parts = []
    for package in ("lipmip", "highspy", "pyscipopt", "gurobipy", "numpy", "scipy"):
        try:
            parts.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def machine() -> str:
    """OS, CPU model and count, Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def options_text(options: dict) -> str:
    """The options that define a configuration, as text."""
    keys = [k for k in ("bounds", "encoding", "partitions", "warm_start", "rescale") if k in options]
    if options.get("encoding") != "partition" and "partitions" in keys:
        keys.remove("partitions")
    return ", ".join(f"{k}={options[k]!r}" for k in keys)


def target1_line(main: dict, limit: float) -> str:
    """Target 1 (median speed-up ≥ 5×), as decided by the numbers."""
    lo, hi = main["median_ratio"]
    head = "- Target 1 (median time-to-optimal at least 5× below the recipe's, HiGHS): "
    if main["n"] == 0:
        return head + "no main comparison ran."
    where = f"the median speed-up is {fmt_ratio(lo, hi)} over {main['n']} instances"
    if lo >= 5:
        return head + f"met; {where}."
    if hi < 5:
        return head + f"**missed**; {where}."
    return head + f"not decided by this run: {where}, an interval because runs stopped at the {limit:g} s limit."


def headline_lines(headline: list[dict]) -> list[str]:
    """Target 2 (the [100,100,100,100,10] instance within 60 s), as decided by the numbers."""
    lines = []
    for rec in headline:
        t = Timing.of(rec)
        if t is None:
            continue
        what = f"{rec['status']} after {rec['seconds']:.1f} s (limit {rec['options']['time_limit']:g} s), gap {fmt_gap(rec)}"
        if rec["config"] == "best":
            verdict = "met" if not t.censored and t.seconds <= 60 else "**missed**"
            lines.append(f"- Target 2 (random [100,100,100,100,10], ℓ∞ 0.01, optimal within 60 s with HiGHS): {verdict}; "
                         f"best: {what}.")
        else:
            lines.append(f"- The recipe on that instance: {what}.")
    return lines


def shortfalls(main: dict, headline: list[dict], solver_sums: dict[str, dict], limit: float, quick: bool) -> list[str]:
    """Plain statements computed from the numbers: where the targets are missed (or met)."""
    lines = ["- This is a `--quick` smoke test: too few instances and too short a limit to judge the targets."] if quick else []
    lines.append(target1_line(main, limit))
    if main["n"] and main["n"] > main["solved_best"]:
        lines.append(f"- The best configuration left {main['n'] - main['solved_best']} of {main['n']} main instances "
                     f"unsolved at {limit:g} s; the recipe left {main['n'] - main['solved_other']}.")
    lines += headline_lines(headline)
    for solver, s in solver_sums.items():
        if s["n"]:
            lines.append(f"- {solver}: median speed-up {fmt_ratio(*s['median_ratio'])} over {s['n']} instances; "
                         f"best solved {s['solved_best']}, recipe {s['solved_other']}.")
    return lines


def widening_lines(records: list[dict]) -> list[str]:
    """How far the certified upper bound sits above the solver's proven bound on solved runs."""
    solved = [r for r in records if r.get("solved") and (r.get("solver_best_bound") or 0) > 0 and r.get("upper")]
    if not solved:
        return []
    factors = sorted(((r["upper"] / r["solver_best_bound"], r) for r in solved), key=lambda fr: fr[0])
    wide = [(f, r) for f, r in factors if f > 1.01]
    bounded = sum(r.get("status") == "bounded" for r in solved)
    lines = [f"- Of {len(solved)} solved runs, {bounded} ended `bounded` (certified sides more than 1e-6 apart though the "
             f"solver proved optimality); on {len(wide)} the certified upper bound is more than 1% above the solver's "
             "proven bound (widened by the solver's tolerances, see docs/mip.md)."]
    if wide:
        f, r = wide[-1]
        instances = sorted({r["instance"] for _, r in wide})
        lines.append(f"- Largest widening: {f:.3g}× on {r['instance']} ({r['config']}, {r['options']['solver']}); "
                     f"instances with a widening above 1%: {'; '.join(instances)}.")
    return lines


def run_totals(records: list[dict]) -> str:
    """How many runs were made and how long they took, and how many were not made."""
    made = [r for r in records if "wall_seconds" in r]
    left = {s: sum(r["status"] == s for r in records) for s in ("skipped", "unavailable", "killed", "crashed")}
    text = f"{len(made)} runs made in {sum(r['wall_seconds'] for r in made) / 60:.1f} min"
    extra = [f"{n} {s}" for s, n in left.items() if n]
    return text + (f" ({', '.join(extra)})" if extra else "")


def intro(meta: dict, skipped: list[str], records: list[dict]) -> list[str]:
    """The markdown header: how the numbers were made and what they mean."""
    limit = meta["time_limit"]
    lines = [
        "# Exact MIP: time to optimality, LipMIP recipe vs lipmip's best configuration",
        "",
        f"Written by `scripts/bench_mip.py` ({meta.get('started', '?')}): `{meta['command']}`.",
        "",
        f"- Machine: {meta['machine']}; shared with other jobs, so configurations are compared by their ratio on the "
        "same instance.",
        f"- Versions: {meta['versions']}.",
        f"- {run_totals(records)}; budget {meta.get('budget_min', '?')} min (a run that would not fit is skipped).",
        f"- Each run: one call of `lipmip.mip.mip_lipschitz` in a fresh subprocess, one run at a time, solver threads 1, "
        f"time limit {limit:g} s for the whole call (neuron bounds, sampling, model, solve, HiGHS's confirming re-solve).",
        f"- LipMIP recipe: `{options_text(RECIPE)}`. Best: `{options_text(BEST)}`.",
        "- *Solved*: the solver proved optimality (status `optimal`, or `bounded` when the certified sides stay more than "
        "1e-6 apart). An unsolved run's time is only a lower bound (`> limit`). Speed-up = time(recipe) / time(best) on "
        "the same instance; with an unsolved run it is a bound (`≥`, `≤`) or unknown (`?`), and a median over bounds is an "
        "interval. Medians of times count unsolved runs as +∞ (`>` when the median is unsolved).",
        "- Gap: (upper − lower) / upper of the certified bounds at the end of the run; `certified L` is [lower, upper].",
        "- Random networks: layer sizes from the authors' LipMIP code (revbucket/lipMIP `tutorials/tutorial_2_lipMIP.ipynb`: "
        "[2,16,16,2], [10,10,10,10,10,2]; `scripts/width_architecture_series.py`: [2,w,w,w,2]; "
        "`scripts/depth_architecture_series.py`: [2,20×d,2]; ℓ∞ balls of radius 0.1 in [0,1]^d as there). The paper's "
        "own tables could not be read here, and its networks were trained; these have random He-normal weights and "
        "uniform biases. [100,100,100,100,10] at ℓ∞ 0.01 is the target instance of lipmip's MIP issue.",
        "- ACAS Xu: boxes of half-width 0.02 (normalised units) around seeded points; MNIST: `mnist_relu_3_50` (as shipped, "
        "with its output ReLU; the runner-up is ranked by pre-activation), ℓ∞ balls clipped to [0,1] and unclipped ℓ1 balls "
        "around `mnist_test.csv` images. Query: the margin f_top − f_runner-up at the centre (ACAS Xu: the two smallest "
        "scores); input norm that of the ball (ℓ∞: objective ‖g‖₁; ℓ1: ‖g‖∞).",
        "",
    ]
    if skipped:
        lines += ["Skipped, no shared networks folder: " + "; ".join(skipped) + ".", ""]
    return lines


def solver_section(records: list[dict], limit: float) -> list[str]:
    """Recipe and best on each solver."""
    lines = ["## Solvers (recipe and best on each solver)", ""]
    for solver in SOLVERS:
        statuses = {r["status"] for r in records if r["options"]["solver"] == solver}
        if statuses == {"unavailable"}:
            lines += [f"### {solver}", "", f"Not run: {solver} is not installed or not licensed here.", ""]
            continue
        rows = comparison_rows(records, "solver", solver, limit)
        if rows:
            lines += [f"### {solver}", ""] + comparison_table(rows) + [""] + SUMMARY_HEAD
            lines += [summary_line(summary(rows), solver), ""]
    return lines


def write_markdown(records: list[dict], meta: dict, skipped: list[str], path: Path) -> None:
    """Write the whole report to ``path``."""
    limit = float(meta["time_limit"])
    main_rows = comparison_rows(records, "main", "highs", limit)
    main = summary(main_rows)
    solver_sums = {s: summary(comparison_rows(records, "solver", s, limit)) for s in SOLVERS if s != "highs"}
    headline = [r for r in records if {"headline", "headline-long"} & set(r["parts"])]
    lines = intro(meta, skipped, records)
    lines += ["## Summary (HiGHS)", ""] + summary_table(main_rows, "main")
    lines += ["", "## Where it falls short", ""] + shortfalls(main, headline, solver_sums, limit, meta.get("quick", False))
    lines += widening_lines(records) + [""]
    if headline:
        head_limit = float(next(r["options"]["time_limit"] for r in headline if "headline" in r["parts"]))
        lines += ["## Target instance: random [100,100,100,100,10], ℓ∞ 0.01", ""]
        lines += comparison_table(comparison_rows(records, "headline", "highs", head_limit)) + [""]
        for rec in (r for r in headline if "headline-long" in r["parts"] and Timing.of(r) is not None):
            lines += [f"Recipe with a {rec['options']['time_limit']:g} s limit: {rec['status']} after {rec['seconds']:.0f} s, "
                      f"gap {fmt_gap(rec)}, {rec.get('nodes')} nodes.", ""]
    lines += ["## Main comparison (HiGHS)", ""] + comparison_table(main_rows) + [""]
    lines += ["## Ablations (HiGHS, one option of best changed at a time)", "",
              "Each cell: time to optimality, final gap, unstable ReLUs, solver nodes and **time / time(best)**.", ""]
    lines += ablation_section(records, limit)
    lines += solver_section(records, limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options, with the defaults of quick and full mode filled in."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few small instances, short limits (smoke test, < 3 min)")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per run (default 60, --quick 10)")
    parser.add_argument("--budget", type=float, default=None,
                        help="minutes for the whole run; runs that would not fit are skipped (default 35, --quick 3)")
    parser.add_argument("--headline-limit", type=float, default=60.0,
                        help="seconds for the [100,100,100,100,10] ℓ∞ 0.01 instance (target: optimal within 60 s)")
    parser.add_argument("--recipe-headline-limit", type=float, default=0.0,
                        help="also run the recipe on the headline instance with this limit (e.g. 600; not in the default budget)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"markdown file (default {OUT.relative_to(REPO)}, --quick {QUICK_OUT})")
    parser.add_argument("--raw", type=Path, default=None, help="JSON-lines results (default: next to --out, *_raw.jsonl)")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the team's shared folder (networks/)")
    parser.add_argument("--resume", action="store_true", help="reuse the runs already in --raw, make the others")
    parser.add_argument("--from-raw", type=Path, default=None, help="only rewrite the markdown from this raw file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_limit is None:
        args.time_limit = 10.0 if args.quick else 60.0
    if args.budget is None:
        args.budget = 3.0 if args.quick else 35.0
    if args.out is None:
        args.out = QUICK_OUT if args.quick else OUT
    if args.raw is None:
        args.raw = args.from_raw or args.out.with_name(args.out.stem + "_raw.jsonl")
    return args


def command_line(argv: list[str]) -> str:
    """The command as typed, for the report."""
    return " ".join(["python scripts/bench_mip.py", *[a if " " not in a else repr(a) for a in argv]])


def main(argv: list[str] | None = None) -> None:
    """Plan, run (or read the raw file), write the markdown."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return
    shared_ok = (args.shared / "networks").is_dir()
    runs, skipped = plan(args, shared_ok)
    if skipped:
        print(f"{args.shared / 'networks'} is absent: skipping {len(skipped)} instances that need the shared networks "
              f"({'; '.join(skipped)})", file=sys.stderr)
    if args.from_raw is not None:
        meta, records = load_raw(args.from_raw)
        meta = meta or run_meta(args, command_line(argv))
        skipped = meta.get("skipped", skipped)
    else:
        meta = {**run_meta(args, command_line(argv)), "skipped": skipped}
        print(f"{len(runs)} runs, time limit {args.time_limit:g} s, budget {args.budget:g} min; raw results: {args.raw}",
              file=sys.stderr)
        records = execute(runs, args, meta)
    write_markdown(records, meta, skipped, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
