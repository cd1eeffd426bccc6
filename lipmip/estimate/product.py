"""The norm-product upper bound: ``L <= ‖head‖ · Π_k ‖W_k‖_{α→α}``.

With every activation slope in [0, 1] (ReLU, identity), the Jacobian is
``W_L D_{L-1} W_{L-1} ... D_1 W_1`` with diagonal ``0 <= D <= I``, whose
``‖·‖_{α→α}`` is at most 1 for α in {1, 2, ∞}. Submultiplicativity gives a
global bound valid over every region; it ignores the region, so it is cheap
and usually loose.

Every factor is a proven upper bound (:mod:`lipmip.spectral`): ℓ2 operator
norms by the certified spectral norm (an SVD or power-iteration estimate,
then ``μ >= σ_max²`` proven by a verified Cholesky of ``μI - WᵀW``), ℓ1 and
ℓ∞ ones as absolute column or row sums widened by their rounding error, the
head ``c·W_L`` by the dot-product error bound, vector norms with their
rounding bound. The product is formed from mantissas and exponents, so it
neither overflows into NaN nor underflows to 0; a result in the subnormal
range is replaced by the smallest normal number.
"""

from __future__ import annotations

import math
import time

import numpy as np

from lipmip.domains import Region
from lipmip.network import Network
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.spectral import (
    certified_spectral_norm,
    nonnegative_sum_upper_bound,
    operator_norm_upper_bound,
    vector_norm_upper_bound,
)

__all__ = ["product_upper_bound"]

_SAFETY = 1 + 1e-10
_TINY = np.finfo(np.float64).tiny  # smallest normal number
_SUBNORMAL = np.finfo(np.float64).smallest_subnormal


def _head_norm(net: Network, query: Query) -> tuple[float, str]:
    """An upper bound on the output layer's contribution, ``‖(c D_L W_L)ᵀ‖_{α*}``
    or ``‖D_L W_L‖_{α→α}`` over every diagonal ``0 <= D_L <= I``, and how it was proven."""
    last = net.layers[-1]
    if query.c is None:
        # a row-scaling never raises a p→p norm
        return _layer_norm(last.W, query.input_norm)
    absc = np.abs(query.c)
    if net.has_output_activation:
        # c · σ(z): the output slopes are free in [0, 1], so bound by the triangle inequality Σ_j |c_j| ‖W_j‖_{α*}
        rows = np.array([vector_norm_upper_bound(row, query.dual_input_norm) for row in last.W])
        with np.errstate(over="ignore"):
            terms = np.nextafter(absc * rows, np.inf)  # each product rounded up (one step also covers underflow)
        return nonnegative_sum_upper_bound(terms), "Σ_j |c_j| ‖row j‖ (output ReLU), rounding bounded"
    m = last.out_features
    gamma = (m + 1) * _U / (1 - (m + 1) * _U)
    # |exact c·W| <= |fl(c·W)| + γ (|c|·|W|) + η/2 per nonzero product (underflow), entrywise
    nonzero_products = (absc > 0).astype(np.float64) @ (last.W != 0)
    v = np.abs(query.c @ last.W) + gamma * (absc @ np.abs(last.W)) + _SUBNORMAL * nonzero_products
    v = v * (1 + 4 * _U)  # the roundings of the line above
    return vector_norm_upper_bound(v, query.dual_input_norm), "‖c·W_L‖ with the dot-product error bound"


def _layer_norm(W: np.ndarray, p: float) -> tuple[float, str]:
    """A proven upper bound on ``‖W‖_{p→p}`` and how it was proven."""
    if p == 2.0:
        proof = certified_spectral_norm(W)
        return proof.value, proof.how
    kind = "column" if p == 1.0 else "row"
    return operator_norm_upper_bound(W, p), f"max absolute {kind} sum with its rounding bound"


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
    """A certified global upper bound (valid for any region): the product of
    proven upper bounds on the head's and every hidden layer's norm."""
    start = time.perf_counter()
    proven = [_head_norm(net, query)] + [_layer_norm(layer.W, query.input_norm) for layer in net.layers[:-1]]
    factors = [value for value, _ in proven]
    return LipschitzBound(
        lower=None,
        upper=_safe_product(factors),
        method="naive",
        seconds=time.perf_counter() - start,
        query=query.to_dict(),
        region=None if region is None else region.to_dict(),
        details={"layer_factors": factors, "factor_proofs": [how for _, how in proven]},
    )
