"""Norms lipmip measures inputs and outputs with: ℓ1, ℓ2 and ℓ∞.

A norm is written as its exponent ``p`` in {1, 2, inf} (``parse_norm``
accepts the usual spellings). The Lipschitz constant of a scalar function
with respect to ``‖·‖_p`` on the input is the largest *dual* norm ``‖∇f‖_q``
of its gradient, ``1/p + 1/q = 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lipmip.errors import InvalidQueryError, LipmipError

__all__ = ["parse_norm", "dual_norm", "norm_name", "vector_norm", "operator_norm", "SUPPORTED_NORMS"]

SUPPORTED_NORMS = (1.0, 2.0, math.inf)

_SPELLINGS = {
    "1": 1.0, "l1": 1.0, "one": 1.0,
    "2": 2.0, "l2": 2.0, "two": 2.0, "euclidean": 2.0,
    "inf": math.inf, "linf": math.inf, "l_inf": math.inf, "infinity": math.inf, "max": math.inf,
    "∞": math.inf, "l∞": math.inf,
}


def parse_norm(p: Any, error: type[LipmipError] = InvalidQueryError, what: str = "norm") -> float:
    """Return ``p`` as one of 1.0, 2.0, math.inf, or raise ``error`` naming it."""
    if isinstance(p, str):
        key = p.strip().lower().replace("ℓ", "l")
        if key in _SPELLINGS:
            return _SPELLINGS[key]
    elif isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool):
        value = float(p)
        if value in SUPPORTED_NORMS:
            return value
    raise error(f"unknown {what} {p!r}: use 1, 2 or inf")


def dual_norm(p: float) -> float:
    """The dual exponent: 1 ↔ inf, 2 ↔ 2."""
    return {1.0: math.inf, 2.0: 2.0, math.inf: 1.0}[parse_norm(p)]


def norm_name(p: float) -> str:
    """``"1"``, ``"2"`` or ``"inf"`` (for JSON and messages)."""
    return {1.0: "1", 2.0: "2", math.inf: "inf"}[parse_norm(p)]


def _power_of_two_scale(M: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """A power of two ``s`` (per slice over ``axes``) with ``max|M| / s`` in
    [1, 2): dividing by it is exact, and keeps squares and sums clear of
    underflow and overflow."""
    peak = np.max(np.abs(M), axis=axes, keepdims=True) if M.size else np.zeros((1,) * M.ndim)
    _, exponent = np.frexp(peak)
    return np.where(peak > 0, np.ldexp(1.0, exponent - 1), 1.0)


def vector_norm(v: np.ndarray, p: float, axis: int = -1) -> np.ndarray:
    """``‖v‖_p`` along ``axis``, computed on a power-of-two rescaled copy so
    that tiny or huge entries neither underflow nor overflow (relative error
    a few ulps times the length)."""
    v = np.asarray(v, dtype=np.float64)
    scale = _power_of_two_scale(v, (axis,))
    with np.errstate(over="ignore"):  # a norm above the float range is inf, as it should be
        return np.linalg.norm(v / scale, ord=parse_norm(p), axis=axis) * np.squeeze(scale, axis=axis)


def operator_norm(M: np.ndarray, p: float) -> np.ndarray:
    """The induced norm ``‖M‖_{p→p}`` of the trailing two axes of ``M``
    (max column sum for 1, largest singular value for 2, max row sum for inf),
    computed on a power-of-two rescaled copy like :func:`vector_norm`."""
    M = np.asarray(M, dtype=np.float64)
    p = parse_norm(p)
    scale = _power_of_two_scale(M, (-2, -1))
    S = M / scale
    if p == 1.0:
        value = np.abs(S).sum(axis=-2).max(axis=-1)
    elif p == math.inf:
        value = np.abs(S).sum(axis=-1).max(axis=-1)
    else:
        value = np.linalg.norm(S, ord=2, axis=(-2, -1))
    with np.errstate(over="ignore"):
        return value * scale[..., 0, 0]
