"""Backward (gradient) bounds: intervals on the back-propagated vectors.

For output functionals ``C`` (one row per functional: a query's ``c``, or each
output row for a Jacobian), the gradient of ``C f`` with respect to the
output ``h_k`` of layer ``k`` is

    G_k = C D_L W_L D_{L-1} W_{L-1} ... D_{k+1} W_{k+1}        (G_L = C)

(``D_j`` the diagonal of activation slopes of layer ``j``; ``h_0`` is the
input, so ``G_0`` is the input gradient / Jacobian). Over a region every
``D_j`` ranges over the slopes the forward bounds allow: 1 for active and
identity neurons, 0 for inactive ones, {0, 1} for unstable ones. This module
bounds every entry of every ``G_k`` over all those patterns. The bounds are
the big-M coefficients of the gradient part of the MIP, and the input-layer
bounds give a certified Lipschitz upper bound by themselves.

Two interval propagations are intersected: top-down (from ``C`` towards the
input; exact for the first product) and bottom-up (from the identity at
layer ``k`` towards the output, then multiplied by ``C``; exact for the first
product on that side). Each is rounded outward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lipmip.bounds.base import Bounds, round_outward

__all__ = ["GradientBounds", "gradient_bounds", "interval_times_matrix", "interval_times_slopes"]


@dataclass(frozen=True, eq=False)
class GradientBounds:
    """``lower[k] <= G_k <= upper[k]`` entrywise (shape ``(rows, n_k)``) for
    ``k = 0 .. L`` (``n_0`` the input dimension), over every activation
    pattern allowed by ``forward``."""

    forward: Bounds
    C: np.ndarray
    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    seconds: float
    details: dict = field(default_factory=dict)

    @property
    def input_abs(self) -> np.ndarray:
        """``max(|lower[0]|, |upper[0]|)``: entrywise bound on ``|C J(x)|``."""
        return np.maximum(np.abs(self.lower[0]), np.abs(self.upper[0]))

    def big_m(self, k: int) -> np.ndarray:
        """``max |G_k|`` per neuron of layer ``k`` over all rows."""
        return np.maximum(np.abs(self.lower[k]), np.abs(self.upper[k])).max(axis=0)


def interval_times_slopes(lo: np.ndarray, hi: np.ndarray, s_lo: np.ndarray, s_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval product ``[lo, hi] * [s_lo, s_hi]`` (columns scaled by slopes
    ``0 <= s_lo <= s_hi <= 1``); exact, as slopes are 0 or 1."""
    candidates = np.stack([lo * s_lo, lo * s_hi, hi * s_lo, hi * s_hi])
    return candidates.min(axis=0), candidates.max(axis=0)


def interval_times_matrix(lo: np.ndarray, hi: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds on ``G W`` for ``lo <= G <= hi`` (rows of G times W)."""
    Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    out_lo = lo @ Wp + hi @ Wn
    out_hi = hi @ Wp + lo @ Wn
    magnitude = np.maximum(np.abs(lo), np.abs(hi)) @ np.abs(W)
    return round_outward(out_lo, out_hi, magnitude, W.shape[0] + 1)


def _matrix_times(W: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds on ``W M`` for ``lo <= M <= hi``."""
    Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    out_lo = Wp @ lo + Wn @ hi
    out_hi = Wp @ hi + Wn @ lo
    magnitude = np.abs(W) @ np.maximum(np.abs(lo), np.abs(hi))
    return round_outward(out_lo, out_hi, magnitude, W.shape[1] + 1)


def _top_down(forward: Bounds, C: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    net = forward.net
    L = net.depth
    out: list[tuple[np.ndarray, np.ndarray]] = [(C, C)] * (L + 1)
    for k in range(L, 0, -1):
        # G_{k-1} = (G_k D_k) W_k, with layer k stored at index k-1
        lo, hi = interval_times_slopes(*out[k], *forward.slope_bounds(k - 1))
        out[k - 1] = interval_times_matrix(lo, hi, net.layers[k - 1].W)
    return out


def _bottom_up(forward: Bounds, C: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on ``G_k`` from the identity at layer k upwards."""
    net = forward.net
    L = net.depth
    n_k = net.widths[k]
    eye = np.eye(n_k)
    lo, hi = eye, eye
    for j in range(k, L):  # multiply by W_{j+1} then D_{j+1}
        lo, hi = _matrix_times(net.layers[j].W, lo, hi)
        s_lo, s_hi = forward.slope_bounds(j)
        lo, hi = interval_times_slopes(lo, hi, s_lo[:, None], s_hi[:, None])
    Cp, Cn = np.maximum(C, 0.0), np.minimum(C, 0.0)
    out_lo = Cp @ lo + Cn @ hi
    out_hi = Cp @ hi + Cn @ lo
    magnitude = np.abs(C) @ np.maximum(np.abs(lo), np.abs(hi))
    return round_outward(out_lo, out_hi, magnitude, C.shape[1] + 1)


def gradient_bounds(forward: Bounds, C: np.ndarray, *, bottom_up: bool = True) -> GradientBounds:
    """Entrywise bounds on every back-propagated matrix ``G_k`` of ``C f``.

    ``C`` is ``(rows, output_dim)`` (a single functional may be 1-D).
    ``bottom_up=False`` skips the second propagation (faster, looser).
    """
    start = time.perf_counter()
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    top = _top_down(forward, C)
    lower, upper = [], []
    for k, (lo, hi) in enumerate(top):
        if bottom_up and k < forward.net.depth:
            b_lo, b_hi = _bottom_up(forward, C, k)
            lo, hi = np.maximum(lo, b_lo), np.minimum(hi, b_hi)
        lower.append(lo)
        upper.append(hi)
    return GradientBounds(forward, C, tuple(lower), tuple(upper), time.perf_counter() - start)
