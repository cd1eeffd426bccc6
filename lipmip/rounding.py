"""Constants of float64 rounding-error analysis, shared by every module that
widens a bound to cover its own rounding."""

from __future__ import annotations

import numpy as np

__all__ = ["UNIT_ROUNDOFF", "SMALLEST_SUBNORMAL", "gamma"]

UNIT_ROUNDOFF = float(np.finfo(np.float64).eps / 2)  # u = 2^-53
SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)


def gamma(n: int) -> float:
    """γ_n = n u / (1 - n u): ``|fl(Σ_{i<n} a_i b_i) - Σ a_i b_i| <= γ_n Σ |a_i b_i|``
    for any summation order (Higham, Accuracy and Stability, §3.1)."""
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)
