"""Benchmark: share of stable ReLUs and time per neuron-bound method.

For each network and region, runs ``lipmip.bounds.compute`` with
``interval``, ``linear`` and ``lp`` side by side (same process, same inputs)
and writes a Markdown table to ``docs/benchmarks/bounds.md``.

Regions: ACAS Xu, boxes of half-width 0.02 (normalised units) around 3
seeded points of the normalised input domain; MNIST, ℓ∞ balls of radius
0.005, 0.01, 0.02, 0.05 around the first test images of ``mnist_test.csv``
(pixels/255), clipped to [0, 1].

    python scripts/bench_bounds.py                     # needs ../shared/networks
    python scripts/bench_bounds.py --images 1 --lp-time-limit 30
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

import lipmip
from lipmip.bounds import compute

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "networks"
OUT = REPO / "docs" / "benchmarks" / "bounds.md"

ACAS = ["ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_3_3_batch_2000.onnx", "ACASXU_run2a_5_9_batch_2000.onnx"]
ACAS_LO = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])
MNIST = ["mnist_relu_3_50.onnx", "mnist_relu_3_100.onnx", "mnist_relu_6_100.onnx", "mnist-net_256x2.onnx"]
RADII = [0.005, 0.01, 0.02, 0.05]


def regions(args):
    rng = np.random.default_rng(0)
    for name in ACAS:
        points = ACAS_LO + (ACAS_HI - ACAS_LO) * rng.random((args.acas_points, 5))
        for i, x in enumerate(points):
            box = lipmip.Box(np.maximum(x - 0.02, ACAS_LO), np.minimum(x + 0.02, ACAS_HI))
            yield f"acasxu/{name}", f"box ±0.02 around point {i}", box
    images = np.loadtxt(SHARED / "mnist" / "mnist_test.csv", delimiter=",")[: args.images, 1:] / 255.0
    for name in MNIST:
        for r in RADII:
            for i, x in enumerate(images):
                yield f"mnist/{name}", f"ℓ∞ {r} around image {i}", lipmip.Ball(x, r, "inf").clip(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="MNIST images per radius")
    parser.add_argument("--acas-points", type=int, default=3)
    parser.add_argument("--lp-time-limit", type=float, default=60.0, help="seconds per lp run (bounds stay valid)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: this benchmark needs the team's shared networks")

    rows = []
    nets: dict[str, lipmip.Network] = {}
    for name, label, region in regions(args):
        net = nets.setdefault(name, lipmip.load(SHARED / name))
        row = {"network": name, "region": label, "relus": net.num_relus}
        for method in ("interval", "linear", "lp"):
            options = {"time_limit": args.lp_time_limit} if method == "lp" else {}
            start = time.perf_counter()
            b = compute(net, region, method, **options)
            row[method] = (100 * b.stable_fraction, time.perf_counter() - start, b.details.get("timed_out", False))
        rows.append(row)
        print(name, label, {m: f"{row[m][0]:.1f}% {row[m][1]:.2f}s" for m in ("interval", "linear", "lp")}, flush=True)

    lines = [
        "# Neuron bounds: stable ReLUs and time per method",
        "",
        "Written by `scripts/bench_bounds.py` "
        f"(`--images {args.images} --acas-points {args.acas_points} --lp-time-limit {args.lp_time_limit:g}`) "
        f"on {platform.machine()} with {platform.python_version()}, one process, methods run side by side on the same region.",
        "A ReLU is stable when its pre-activation bounds do not straddle 0 (an output ReLU counts too).",
        "`lp` starts from `linear` and tightens every unstable neuron by two LPs per neuron (HiGHS, rigorous dual bounds);",
        "a `*` marks an lp run stopped by its time limit (its bounds are still valid, just less tight).",
        "",
        "| network | region | ReLUs | stable interval | stable linear | stable lp | s interval | s linear | s lp |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        star = "*" if r["lp"][2] else ""
        lines.append(
            f"| {r['network']} | {r['region']} | {r['relus']} | {r['interval'][0]:.1f}% | {r['linear'][0]:.1f}% | "
            f"{r['lp'][0]:.1f}%{star} | {r['interval'][1]:.4f} | {r['linear'][1]:.4f} | {r['lp'][1]:.2f} |"
        )
    lines += ["", "## Mean over regions, per network", "",
              "| network | stable interval | stable linear | stable lp | lp / linear time |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name in dict.fromkeys(r["network"] for r in rows):
        sel = [r for r in rows if r["network"] == name]
        mean = {m: np.mean([r[m][0] for r in sel]) for m in ("interval", "linear", "lp")}
        ratio = np.mean([r["lp"][1] / max(r["linear"][1], 1e-9) for r in sel])
        lines.append(f"| {name} | {mean['interval']:.1f}% | {mean['linear']:.1f}% | {mean['lp']:.1f}% | {ratio:.0f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
