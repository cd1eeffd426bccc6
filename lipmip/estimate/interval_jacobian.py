"""The local interval-Jacobian upper bound (the Fast-Lip idea, with lipmip's
forward and backward bounds).

Forward bounds fix every stable ReLU's slope over the region; backward
bounds (``lipmip.bounds.backward``) then give entrywise bounds
``|C J(x)| <= B`` for every ``x`` in the region, and

* scalar ``c·f``: ``L <= ‖B‖_{α*}`` (B is one row),
* vector ``f``: ``‖J‖_{∞→∞} <= max row sum of B``, ``‖J‖_{1→1} <= max column
  sum``, ``‖J‖_{2→2} <= ‖B‖_2`` (a nonnegative matrix that dominates ``|J|``
  entrywise has the larger spectral norm).

Certified, local (it tightens as the region shrinks), and takes milliseconds.

Interval arithmetic forgets that an unstable neuron's slope is *one* number
(0 or 1) for every entry it touches, and the loss compounds over the layers:
on ACAS Xu boxes with 6 to 14 unstable ReLUs the plain bound is 9 to 43
times the exact value. So the slopes of the (up to) ``enumerate_unstable``
(default 12, fewer on large networks) unstable neurons that weigh most (the bound on the gradient reaching them
times the width of their pre-activation range) are enumerated: one backward
interval propagation per 0/1 choice, all choices at once as a batch, and the
bound is the largest over the choices (every pattern the region allows is
among them, so it stays an upper bound), never above the plain one. With
every unstable neuron enumerated, it is the largest local value over all
patterns, feasible or not.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.bounds import compute
from lipmip.bounds.backward import GradientBounds, gradient_bounds, interval_times_matrix, interval_times_slopes
from lipmip.bounds.base import Bounds
from lipmip.domains import Region
from lipmip.errors import InvalidQueryError
from lipmip.network import Network
from lipmip.norms import operator_norm, vector_norm
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import free_coordinates

__all__ = ["interval_jacobian_upper_bound"]

_SAFETY = 1 + 1e-10
ENUMERATE_UNSTABLE = 12  # unstable neurons whose slopes are enumerated by default (4,096 backward passes in one batch) ...
ENUMERATION_BUDGET = 1e8  # ... unless that would take more than this many weight multiplications (fewer are enumerated)
_MAX_ENUMERATED = 14


def interval_jacobian_upper_bound(
    net: Network, region: Region, query: Query, *, bounds: str | Bounds = "linear",
    enumerate_unstable: int = ENUMERATE_UNSTABLE,
) -> LipschitzBound:
    """A certified local upper bound from interval bounds on the Jacobian;
    ``bounds`` picks the forward bound method (``interval``, ``linear``,
    ``lp``), or is forward bounds already computed for ``net`` (or for an
    equivalent network computing the same function) over ``region``;
    ``enumerate_unstable`` (0 to 14) unstable neurons have their slopes
    enumerated (module docstring; 0: the plain interval bound), fewer when
    ``2**k`` backward passes would cost more than
    :data:`ENUMERATION_BUDGET` weight multiplications."""
    if isinstance(enumerate_unstable, bool) or not isinstance(enumerate_unstable, (int, np.integer)) \
            or not 0 <= enumerate_unstable <= _MAX_ENUMERATED:
        raise InvalidQueryError(f"enumerate_unstable must be an integer from 0 to {_MAX_ENUMERATED}, "
                                f"got {enumerate_unstable!r}")
    start = time.perf_counter()
    forward = compute(net, region, bounds) if isinstance(bounds, str) else bounds
    C = np.eye(forward.net.output_dim) if query.c is None else query.c[None, :]
    grads = gradient_bounds(forward, C)
    free = free_coordinates(region)
    value = _norm_bound(query, grads.input_abs[None] * free)
    weights = C.shape[0] * sum(layer.W.size for layer in forward.net.layers)
    affordable = int(np.floor(np.log2(max(ENUMERATION_BUDGET / weights, 1.0))))
    chosen = _weightiest_unstable(forward, grads, min(int(enumerate_unstable), affordable))
    if chosen:
        value = min(value, _enumerated_bound(forward, grads, chosen, free, query))
    upper = value * _SAFETY + (1e-300 if value > 0 else 0.0)
    return LipschitzBound(
        lower=None,
        upper=upper,
        method="interval",
        seconds=time.perf_counter() - start,
        query=query.to_dict(),
        region=region.to_dict(),
        details={
            "forward_bounds": forward.method,
            "unstable_relus": forward.num_unstable,
            "relus": forward.num_relus,
            "enumerated": len(chosen),
        },
    )


def _norm_bound(query: Query, B: np.ndarray) -> float:
    """The largest over the first axis of the query's norm of any ``J`` with
    ``|C J| <= B[v]`` entrywise (``B`` nonnegative, ``(choices, rows, n)``)."""
    if query.c is None:
        return float(np.max(operator_norm(B, query.input_norm)))
    return float(np.max(vector_norm(B[:, 0, :], query.dual_input_norm, axis=-1)))


def _weightiest_unstable(forward: Bounds, grads: GradientBounds, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` unstable neurons ``(layer, index)``, largest first by
    the bound on the gradient reaching the neuron's output times the width of
    its pre-activation range."""
    scored = []
    for i, unstable in enumerate(forward.unstable):
        j = np.flatnonzero(unstable)
        if j.size:
            weight = grads.big_m(i + 1)[j] * (forward.upper[i][j] - forward.lower[i][j])
            scored += [(float(w), i, int(n)) for w, n in zip(weight, j)]
    scored.sort(key=lambda t: -t[0])
    return [(i, n) for _, i, n in scored[:count]]


def _enumerated_bound(forward: Bounds, grads: GradientBounds, chosen: list[tuple[int, int]], free: np.ndarray,
                      query: Query) -> float:
    """The interval bound with the slopes of the ``chosen`` neurons fixed to
    each of their 0/1 combinations (a batch of backward propagations),
    intersected with the plain bounds, largest over the combinations."""
    net = forward.net
    choices = ((np.arange(2 ** len(chosen))[:, None] >> np.arange(len(chosen))[None, :]) & 1).astype(np.float64)
    lo = hi = np.broadcast_to(grads.C, (choices.shape[0], *grads.C.shape))
    for i in range(net.depth - 1, -1, -1):
        s_lo, s_hi = (np.tile(s, (choices.shape[0], 1))[:, None, :] for s in forward.slope_bounds(i))
        for t, (layer, j) in enumerate(chosen):
            if layer == i:
                s_lo[:, 0, j] = s_hi[:, 0, j] = choices[:, t]
        lo, hi = interval_times_matrix(*interval_times_slopes(lo, hi, s_lo, s_hi), net.layers[i].W)
        # the plain bounds hold for every pattern, these choices included
        lo, hi = np.maximum(lo, grads.lower[i]), np.minimum(hi, grads.upper[i])
    return _norm_bound(query, np.maximum(np.abs(lo), np.abs(hi)) * free)
