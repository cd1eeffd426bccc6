"""Benchmark: region branch and bound (``bab_lipschitz``) against the MIP and the enumeration.

Instances (all ℓ∞ balls, query a logit margin):

* ``random``: a random [64, 64, 64, 10] network (64 inputs, two hidden ReLU layers of 64, 10 outputs;
  weights N(0, 1)/sqrt(fan_in), biases N(0, 0.5²), numpy seed ``--seed``), centre N(0, I) from the same
  generator, radius 0.02, margin(0, 1). Optionally (``--deep``) the same with three hidden layers.
* ``digits-0``: the bundled digits MLP, test image 0, radius 0.05, margin(7, 9) (exact 313.4630539).
* ``digits-3``: test image 3, radius 0.08, margin(7, 3) (exact 278.689).

Methods, in the same process one after the other: ``bab`` (defaults: linear bounds, sampled incumbent,
all included in its time), ``mip`` as ``lipmip.lipschitz(..., method="mip", bounds="interval",
rescale=None, warm_start=False, time_limit=120)`` (the LipMIP recipe), and ``enumerate``. Every result
is checked against the others (the certified intervals must overlap).

    python scripts/bench_bab.py                 # random + digits-0 (+ digits-3 bab only)
    python scripts/bench_bab.py --all-mip       # also the MIP and enumeration on digits-3 (minutes)
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from typing import Any

import numpy as np

import lipmip
from lipmip import Ball, Network, Query
from lipmip.regions.bab import bab_lipschitz

MIP_OPTIONS: dict[str, Any] = {"bounds": "interval", "rescale": None, "warm_start": False, "time_limit": 120}


def random_network(seed: int, sizes: list[int]) -> tuple[Network, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(n_out, n_in)) / math.sqrt(n_in), rng.normal(size=n_out) * 0.5)
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    net = Network.from_params(params, ["relu"] * (len(sizes) - 2) + ["identity"])
    return net, rng.normal(size=sizes[0])


def run(name: str, net: Network, region: Ball, query: Query, methods: list[str]) -> list[lipmip.LipschitzBound]:
    results = []
    for method in methods:
        start = time.perf_counter()
        if method == "bab":
            r = bab_lipschitz(net, region, query)
        elif method == "mip":
            r = lipmip.lipschitz(net, region, query, method="mip", **MIP_OPTIONS)
        else:
            r = lipmip.lipschitz(net, region, query, method="enumerate", max_regions=None)
        wall = time.perf_counter() - start
        info = ""
        if method == "bab":
            d = r.details
            info = (f"nodes {d['nodes']}, leaves {d['leaves']}, pruned {d['pruned']}, infeasible {d['infeasible']}, "
                    f"LPs {d['lps']}, max queue {d['max_queue_size']}, unstable {d['unstable_neurons']}")
        elif method == "mip":
            info = f"solver {r.details.get('solver')}, status {r.details.get('solver_status')}, nodes {r.details.get('nodes')}"
        else:
            info = f"regions {r.details['regions']}, unstable {r.details['unstable_neurons']}"
        print(f"{name:9s} {method:9s} {wall:8.2f} s  [{r.lower:.10g}, {r.upper:.10g}]  {r.status:10s} {info}", flush=True)
        results.append(r)
    for r in results:
        for other in results:
            if r.lower > other.upper * (1 + 1e-9):
                print(f"{name:9s} INCONSISTENT: {r.method} proves L >= {r.lower!r} but {other.method} "
                      f"claims L <= {other.upper!r}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-mip", action="store_true", help="run the MIP and the enumeration on digits-3 too")
    parser.add_argument("--deep", action="store_true", help="add a [64, 64, 64, 64, 10] network")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, lipmip {lipmip.__version__}, "
          f"{platform.machine()}")
    net, centre = random_network(args.seed, [64, 64, 64, 10])
    run("random", net, Ball(centre, 0.02, "inf"), Query.margin(0, 1, 10), ["bab", "mip", "enumerate"])
    if args.deep:
        net, centre = random_network(args.seed, [64, 64, 64, 64, 10])
        run("random-3", net, Ball(centre, 0.02, "inf"), Query.margin(0, 1, 10), ["bab", "mip", "enumerate"])
    X, _ = lipmip.examples.digits_test_data()
    digits = lipmip.examples.digits_network()
    run("digits-0", digits, Ball(X[0], 0.05, "inf"), Query.margin(7, 9, 10), ["bab", "mip", "enumerate"])
    run("digits-3", digits, Ball(X[3], 0.08, "inf"), Query.margin(7, 3, 10),
        ["bab", "mip", "enumerate"] if args.all_mip else ["bab"])


if __name__ == "__main__":
    main()
