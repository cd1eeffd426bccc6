"""The norm-product upper bound: ``L <= ‖head‖ · Π_k ‖W_k‖_{α→α}``.

With every activation slope in [0, 1] (ReLU, identity), the Jacobian is
``W_L D_{L-1} W_{L-1} ... D_1 W_1`` with diagonal ``0 <= D <= I``, whose
``‖·‖_{α→α}`` is at most 1 for α in {1, 2, ∞}. Submultiplicativity gives a
global bound valid over every region; it ignores the region, so it is cheap
and usually loose.

Rounding: each factor is computed on a power-of-two rescaled matrix (no
underflow or overflow inside), enlarged by a relative 1e-10 (far above the
error of an absolute sum or an SVD of these sizes), and the head ``c·W_L`` by
the dot-product error bound. The product is formed from mantissas and
exponents, so it neither overflows into NaN nor underflows to 0; a result in
the subnormal range is replaced by the smallest normal number.
"""

from __future__ import annotations

import math
import time

import numpy as np

from lipmip.domains import Region
from lipmip.network import Network
from lipmip.norms import operator_norm, vector_norm
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.rounding import UNIT_ROUNDOFF as _U

__all__ = ["product_upper_bound"]

_SAFETY = 1 + 1e-10
_TINY = np.finfo(np.float64).tiny  # smallest normal number
_SUBNORMAL = np.finfo(np.float64).smallest_subnormal


def _head_norm(net: Network, query: Query) -> float:
    """Upper bound on the output layer's contribution, ``‖(c D_L W_L)ᵀ‖_{α*}``
    or ``‖D_L W_L‖_{α→α}`` over every diagonal ``0 <= D_L <= I``."""
    last = net.layers[-1]
    if query.c is None:
        return float(operator_norm(last.W, query.input_norm))  # a row-scaling never raises a p→p norm
    absc = np.abs(query.c)
    if net.has_output_activation:
        # c · σ(z): the output slopes are free in [0, 1], so bound by the triangle inequality
        return float(absc @ vector_norm(last.W, query.dual_input_norm, axis=1)) * (1 + (last.out_features + 2) * _U)
    m = last.out_features
    gamma = (m + 1) * _U / (1 - (m + 1) * _U)
    # |exact c·W| <= |fl(c·W)| + γ (|c|·|W|) + (underflow slack), entrywise
    v = np.abs(query.c @ last.W) + gamma * (absc @ np.abs(last.W)) + (m + 1) * _SUBNORMAL * (absc @ (last.W != 0))
    return float(vector_norm(v, query.dual_input_norm))


def _safe_product(factors: list[float]) -> float:
    """An upper bound on ``Π factors`` (each already an upper bound), computed
    from mantissas and exponents: 0 if a factor is exactly 0, inf if one is
    inf, never NaN, never rounded below the exact product."""
    if any(f == 0.0 for f in factors):
        return 0.0
    if any(math.isinf(f) for f in factors):
        return math.inf
    mantissa, exponent = 1.0, 0
    for f in factors:
        # a subnormal factor may have lost up to half an ulp when it was scaled back
        m, e = math.frexp(f * _SAFETY + (2 * _SUBNORMAL if f < _TINY else 0.0))
        mantissa, exponent = mantissa * m * (1 + 2 * _U), exponent + e
        m2, e2 = math.frexp(mantissa)
        mantissa, exponent = m2, exponent + e2
    try:
        value = math.ldexp(mantissa, exponent)
    except OverflowError:
        return math.inf
    return max(value * (1 + 2 * _U), _TINY)


def product_upper_bound(net: Network, region: Region | None, query: Query) -> LipschitzBound:
    """A certified global upper bound (valid for any region)."""
    start = time.perf_counter()
    factors = [_head_norm(net, query)]
    factors += [float(operator_norm(layer.W, query.input_norm)) for layer in net.layers[:-1]]
    return LipschitzBound(
        lower=None,
        upper=_safe_product(factors),
        method="naive",
        seconds=time.perf_counter() - start,
        query=query.to_dict(),
        region=None if region is None else region.to_dict(),
        details={"layer_factors": factors},
    )
