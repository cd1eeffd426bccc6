"""The exact local Lipschitz constant by activation-region enumeration.

The network is affine on each activation region, so the Lipschitz constant of
the query over the input region is the largest local value ``‖Jᵀc‖_{α*}`` or
``‖J‖_{α→α}`` over the regions met with full dimension. The upper bound is
that maximum over every region the enumeration keeps (ambiguous ones
included), each value enlarged by the float64 error of its Jacobian and of
the norm; the lower bound is a certified difference quotient
(:func:`lipmip.witness.witness_from_point`) at the interior point of the best
certified region, which reproduces that region's value. When the best region
is certified the two agree to rounding: status ``"exact"``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from lipmip.domains import Box, Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.network import Network
from lipmip.norms import operator_norm, vector_norm
from lipmip.query import Query
from lipmip.regions.enumerate import ActivationRegion, RegionEnumerator
from lipmip.result import LipschitzBound, Witness
from lipmip.rounding import gamma as _gamma
from lipmip.witness import best_witness, certified_quotient, free_coordinates, witness_from_point

__all__ = ["exact_lipschitz_by_enumeration", "local_value_upper", "best_region_witness", "kink_step", "region_step"]

_NORM_MARGIN = 1e-12  # relative: covers the rounding of the norm itself (SVD included) for small matrices
_ABS_MARGIN = 1e-300
_WITNESS_TRIES = 8
_CHORD_SHRINK = 1 - 1e-7  # stay a hair inside the segment's ends


def local_value_upper(query: Query, J: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Upper bounds on the query's local value of every exact Jacobian ``Ĵ``
    with ``|Ĵ - J| <= E`` (elementwise; both of shape (..., m, n)).

    Vector norms and the 1→1 / ∞→∞ operator norms only grow with the
    absolute entries, so they are evaluated at ``|J| + E``; the 2→2 norm uses
    ``‖J‖₂ + ‖E‖_F``. The result is enlarged by a relative 1e-12 for the
    rounding of the norm computation and a tiny absolute amount.
    """
    J = np.asarray(J, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)
    if query.c is None:
        if query.input_norm == 2.0:
            value = operator_norm(J, 2.0) + np.sqrt(np.sum(E * E, axis=(-2, -1))) * (1 + _gamma(J.shape[-1] * J.shape[-2] + 2))
        else:
            value = operator_norm(np.abs(J) + E, query.input_norm)
    else:
        m = query.c.size
        absc = np.abs(query.c)
        g = np.einsum("m,...mn->...n", query.c, J)
        g_err = (np.einsum("m,...mn->...n", absc, E) + _gamma(m + 1) * np.einsum("m,...mn->...n", absc, np.abs(J))) * (
            1 + _gamma(m + 2)
        )
        value = vector_norm(np.abs(g) + g_err, query.dual_input_norm)
    return value * (1 + _NORM_MARGIN) + _ABS_MARGIN


def exact_lipschitz_by_enumeration(
    net: Network,
    region: Region,
    query: Query,
    *,
    max_regions: int | None = 10_000,
    time_limit: float | None = None,
) -> LipschitzBound:
    """Certified ``[lower, upper]`` on the local Lipschitz constant of ``query``
    over ``region`` by enumerating activation regions; exact (status
    ``"exact"``) unless the best region could not be certified.

    For a box with fixed coordinates (``lo == hi``) only the free coordinates
    count: the Jacobian columns of fixed ones are dropped. Raises
    :class:`~lipmip.RegionLimitError` past ``max_regions`` regions or
    ``time_limit`` seconds (enumeration is exponential: small networks only).
    """
    start = time.perf_counter()
    region = as_region(region)
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    enumerator = RegionEnumerator(net, region, max_regions=max_regions, time_limit=time_limit)
    query.check_network(net)
    regions = enumerator.run()
    if not regions:  # pragma: no cover - a region with interior always meets some cell
        raise LipmipError("internal error: activation-region enumeration found no region")
    free = free_coordinates(region)
    J = np.stack([r.jacobian for r in regions]) * free
    E = np.stack([r.jacobian_error for r in regions]) * free
    values = np.asarray(query.local_value(J), dtype=np.float64).reshape(-1)
    uppers = local_value_upper(query, J, E).reshape(-1)
    upper = float(uppers.max())
    witness = best_region_witness(net, query, region, regions, values)
    lower = 0.0 if witness is None else float(witness.value)
    best = int(np.argmax(values))
    stats = enumerator.stats
    details = {
        "regions": stats.regions,
        "ambiguous_regions": stats.ambiguous,
        "lps": stats.lps,
        "lp_solves": stats.lp_solves,
        "pruned_by_lp": stats.pruned_by_lp,
        "pruned_exactly": stats.pruned_exactly,
        "nodes": stats.nodes,
        "unstable_neurons": stats.unstable_neurons,
        "enumeration_seconds": stats.seconds,
        "best_region_certified": bool(regions[best].certified_interior),
        "best_local_value": float(values[best]),
    }
    return LipschitzBound(
        lower=lower,
        upper=upper,
        method="enumerate",
        seconds=time.perf_counter() - start,
        witness=witness,
        query=query.to_dict(),
        region=region.to_dict(),
        details=details,
    )


def best_region_witness(
    net: Network, query: Query, region: Region, regions: list[ActivationRegion], values: np.ndarray
) -> Witness | None:
    """The best certified witness from the interior points of the certified
    regions with the largest local values (a few are tried; the first whose
    witness reaches its region's value wins)."""
    free = free_coordinates(region)
    order = [i for i in np.argsort(-values, kind="stable") if regions[i].certified_interior][:_WITNESS_TRIES]
    best: Witness | None = None
    for i in order:
        if best is not None and best.value >= values[i] * (1 - 1e-9):
            break
        x = regions[i].point
        best = best_witness(best, witness_from_point(net, query, region, x),
                            _chord_witness(net, query, region, x, regions[i].jacobian * free))
    return best


def _chord_witness(net: Network, query: Query, region: Region, x: np.ndarray, J: np.ndarray) -> Witness | None:
    """A certified pair at (just inside) both ends of the segment through the
    interior point ``x`` along the query's steepest direction for ``J`` that
    stays in ``x``'s activation region and in the input region. The network is
    affine along it, so the quotient is the region's local value; the long
    segment keeps the rounding of the two forward passes small relative to it."""
    d = query.steepest_direction(J) * free_coordinates(region)
    if not np.any(d):
        return None
    forward = min(kink_step(net, x, d), region_step(region, x, d))
    backward = min(kink_step(net, x, -d), region_step(region, x, -d))
    if not (math.isfinite(forward) and math.isfinite(backward)) or forward + backward <= 0:
        return None
    a, b = x - _CHORD_SHRINK * backward * d, x + _CHORD_SHRINK * forward * d
    value = certified_quotient(net, query, region, a, b)
    return Witness(a=a, b=b, value=value) if value > 0 else None


def kink_step(net: Network, x: np.ndarray, d: np.ndarray) -> float:
    """The largest ``t >= 0`` before some ReLU's pre-activation reaches 0 on
    ``x + t d`` (the pattern of ``x`` kept along the way; float64)."""
    h, dh = x, d
    step = math.inf
    for layer in net.layers:
        z, dz = layer.W @ h + layer.b, layer.W @ dh
        if layer.activation.kinks:
            closing = z * dz < 0
            if np.any(closing):
                step = min(step, float(np.min(-z[closing] / dz[closing])))
        h, dh = layer.activation.forward(z), layer.activation.slope(z) * dz
    return step


def region_step(region: Region, x: np.ndarray, d: np.ndarray) -> float:
    """The largest ``t >= 0`` with ``x + t d`` in the region (a box by a
    ratio test, a ball by bisection on membership)."""
    if isinstance(region, Box):
        moving = d != 0
        up = (np.where(d > 0, region.hi, region.lo)[moving] - x[moving]) / d[moving]
        return float(max(0.0, up.min())) if up.size else math.inf
    lo, hi = 0.0, 2.0 * region.radius / float(vector_norm(d, region.p))
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if region.contains(x + mid * d) else (lo, mid)
    return lo
