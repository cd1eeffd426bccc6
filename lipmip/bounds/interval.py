"""Interval bound propagation (IBP).

Layer 1 is exact per neuron: ``linear_range`` of the region (for a ball,
``W c + b ± r ‖W_i‖_{p*}``). Later layers push the box ``[σ(l), σ(u)]``
through ``W`` with ``W⁺ u + W⁻ l + b``. Every layer is widened by a bound on
its float64 rounding, so the result holds in exact arithmetic.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.bounds.base import Bounds, round_outward
from lipmip.domains import Region
from lipmip.network import Network

__all__ = ["interval_bounds", "propagate_interval"]


def propagate_interval(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds on ``W h + b`` for ``lo <= h <= hi``."""
    Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    z_lo = Wp @ lo + Wn @ hi + b
    z_hi = Wp @ hi + Wn @ lo + b
    magnitude = np.abs(W) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(b)
    return round_outward(z_lo, z_hi, magnitude, W.shape[1] + 1)


def interval_bounds(net: Network, region: Region) -> Bounds:
    start = time.perf_counter()
    first = net.layers[0]
    lo, hi = region.linear_range(first.W)
    lower, upper = [lo + first.b], [hi + first.b]
    lower[0], upper[0] = round_outward(lower[0], upper[0], np.abs(first.b), 2)
    for k in range(1, net.depth):
        act = net.layers[k - 1].activation
        h_lo, h_hi = act.forward(lower[-1]), act.forward(upper[-1])
        layer = net.layers[k]
        z_lo, z_hi = propagate_interval(layer.W, layer.b, h_lo, h_hi)
        lower.append(z_lo)
        upper.append(z_hi)
    return Bounds(net, region, tuple(lower), tuple(upper), "interval", time.perf_counter() - start)
