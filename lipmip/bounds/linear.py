"""Linear bounds by back-substitution (the CROWN / DeepPoly family).

For each layer ``k`` in turn, ``z_k`` is written as a linear function of the
previous post-activations and pushed back layer by layer to the input,
replacing each ``h_j = σ(z_j)`` by a linear upper or lower bound valid over
``[l_j, u_j]`` (the sign of its coefficient decides which):

* stable active or identity: ``h = z``; stable inactive: ``h = 0``;
* unstable ReLU: upper ``h <= u (z - l) / (u - l)`` (the chord), lower
  ``h >= α z`` with the adaptive slope ``α = 1`` if ``u >= -l`` else ``0``.

The resulting ``Λ x + const`` is bounded over the region exactly
(``Region.linear_range``). Each layer's result is intersected with the
interval bounds before it is used for the next layer, and every bound is
widened by a bound on the float64 rounding of the whole substitution.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.activations import IDENTITY
from lipmip.bounds.base import Bounds, round_outward
from lipmip.bounds.interval import interval_bounds, propagate_interval
from lipmip.domains import Region
from lipmip.network import Network

__all__ = ["linear_bounds", "relaxation"]


def relaxation(lo: np.ndarray, hi: np.ndarray, identity: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(a_lo, c_lo, a_up, c_up)`` with ``a_lo z + c_lo <= σ(z) <= a_up z + c_up``
    for ``lo <= z <= hi`` (ReLU, or identity when ``identity``)."""
    n = lo.size
    if identity:
        ones, zeros = np.ones(n), np.zeros(n)
        return ones, zeros, ones, zeros
    active = lo >= 0
    unstable = (lo < 0) & (hi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chord = np.where(unstable, hi / (hi - lo), 0.0)
    a_up = np.where(active, 1.0, chord)
    c_up = np.where(unstable, -chord * lo, 0.0)
    a_lo = np.where(active, 1.0, np.where(unstable & (hi >= -lo), 1.0, 0.0))
    return a_lo, np.zeros(n), a_up, c_up


def _layer_bounds(net: Network, region: Region, k: int, lower: list, upper: list) -> tuple[np.ndarray, np.ndarray]:
    """Linear bounds on ``z_k`` from the bounds already known for layers < k."""
    layer = net.layers[k]
    lam_up = layer.W.copy()  # coefficients of h_{k-1} in the upper bound
    lam_lo = layer.W.copy()
    const_up = layer.b.copy()
    const_lo = layer.b.copy()
    magnitude = np.abs(layer.b).copy()
    terms = 1
    for j in range(k - 1, -1, -1):
        a_lo, c_lo, a_up, c_up = relaxation(lower[j], upper[j], net.layers[j].activation is IDENTITY)
        scale = np.maximum(np.abs(lower[j]), np.abs(upper[j]))
        # upper bound of lam·h: positive coefficients take the upper line, negative the lower line
        pos, neg = np.maximum(lam_up, 0.0), np.minimum(lam_up, 0.0)
        const_up = const_up + pos @ c_up + neg @ c_lo
        z_up = pos * a_up + neg * a_lo
        pos, neg = np.maximum(lam_lo, 0.0), np.minimum(lam_lo, 0.0)
        const_lo = const_lo + pos @ c_lo + neg @ c_up
        z_lo = pos * a_lo + neg * a_up
        magnitude = magnitude + (np.abs(lam_up) + np.abs(lam_lo)) @ (scale + np.abs(c_up))
        W, b = net.layers[j].W, net.layers[j].b
        const_up = const_up + z_up @ b
        const_lo = const_lo + z_lo @ b
        magnitude = magnitude + (np.abs(z_up) + np.abs(z_lo)) @ np.abs(b)
        lam_up = z_up @ W
        lam_lo = z_lo @ W
        terms += W.shape[0] + W.shape[1] + 2
    _, hi = region.linear_range(lam_up)
    lo, _ = region.linear_range(lam_lo)
    box = region.bounding_box()
    x_scale = np.maximum(np.abs(box.lo), np.abs(box.hi))
    magnitude = magnitude + (np.abs(lam_up) + np.abs(lam_lo)) @ x_scale
    return round_outward(lo + const_lo, hi + const_up, magnitude, terms + region.dim + 2)


def linear_bounds(net: Network, region: Region, base: Bounds | None = None) -> Bounds:
    """Back-substitution bounds, intersected neuron by neuron with ``base``
    (interval bounds when not given)."""
    start = time.perf_counter()
    base = base if base is not None else interval_bounds(net, region)
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for k in range(net.depth):
        if k == 0:
            lo, hi = base.lower[0], base.upper[0]  # layer 1 is already exact per neuron
        else:
            lo, hi = _layer_bounds(net, region, k, lower, upper)
            # interval propagation from the tightened previous layer can still win on some neurons
            act = net.layers[k - 1].activation
            i_lo, i_hi = propagate_interval(net.layers[k].W, net.layers[k].b, act.forward(lower[-1]), act.forward(upper[-1]))
            lo = np.maximum.reduce([lo, i_lo, base.lower[k]])
            hi = np.minimum.reduce([hi, i_hi, base.upper[k]])
        lower.append(lo)
        upper.append(hi)
    return Bounds(net, region, tuple(lower), tuple(upper), "linear", time.perf_counter() - start)
