"""The LipSDP certificate: from a solver's multipliers to a proven ρ.

An SDP solver's answer is only approximately feasible, so its ``sqrt(ρ)`` is
never reported. Its multipliers (clipped to ``λ >= 0``) are kept; the
smallest ρ' they allow follows from the Schur complement on the input block
(ρ appears only there); then ``-M(ρ', λ)`` — built on the full, unreduced
matrices, with an entrywise bound on every rounding error of its formation —
is *proven* positive definite by the verified Cholesky test of
:mod:`lipmip.spectral` (after an exact power-of-two diagonal scaling, so that
large multipliers cost no precision on the input block). The upper bound is
``sqrt(ρ')`` rounded up. When the hidden block is not negative definite at
the solver's multipliers, or ρ' is not within 1e-7 of the solver's ρ, the SDP
is solved again with ``M ⪯ -ε [0 0; 0 I]`` for growing ε while that helps
(:mod:`lipmip.lipsdp.bound`); if no proof comes, ``upper`` is None and
``details["reason"]`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from lipmip.lipsdp.blas import single_threaded_blas
from lipmip.lipsdp.chain import Chain
from lipmip.rounding import SMALLEST_SUBNORMAL as _ETA
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma
from lipmip.spectral import is_positive_definite

__all__ = ["Certificate", "certify"]

_CERTIFY_ATTEMPTS = 12
_SLACK = 1 + 1e-10


@dataclass(frozen=True)
class Certificate:
    """The proven ``rho`` (None when nothing was proven, with the ``reason``),
    the Schur-complement value it started from, and the tries it took."""

    rho: float | None
    rho_schur: float | None
    attempts: int
    reason: str


def _lmi_without_rho(chain: Chain, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``M(0, λ)`` on the full matrices, exactly symmetric, and an entrywise
    bound ``F >= |M_exact(0, λ) - M|`` (symmetric).

    ``M = fl(fl(YᵀY) + K + Kᵀ - 2Λ)`` with ``K`` holding ``λ_i z_i`` in the row
    of neuron i; the errors: the Gram product (``γ_m |Y|ᵀ|Y|``), ``Y``'s own
    error (``|Y|ᵀE + Eᵀ|Y| + EᵀE``), the products ``λ_i z_ij`` (``u``) and
    ``Z``'s error (``λ_i E_ij``), the three additions per entry (``γ_4`` of the
    sum of absolute values), underflow; all doubled."""
    Y, E, n_x = chain.Y, chain.Y_err, chain.n_x
    m, D = Y.shape
    absY = np.abs(Y)
    G = Y.T @ Y
    K = np.zeros((D, D))
    K[n_x:, :] = lam[:, None] * chain.Z
    K_err = np.zeros((D, D))
    K_err[n_x:, :] = lam[:, None] * chain.Z_err + _U * np.abs(K[n_x:, :]) + _ETA
    diag = np.zeros(D)
    diag[n_x:] = -2.0 * lam
    M = G + K + K.T
    M[np.diag_indices(D)] += diag
    M = np.triu(M) + np.triu(M, 1).T
    gram_abs = absY.T @ absY
    entry = (
        gamma(m + 1) * gram_abs * (1 + 2 * gamma(m + 1))
        + absY.T @ E + E.T @ absY + E.T @ E
        + (m + 1) * _ETA
        + K_err + K_err.T
        + gamma(4) * (np.abs(G) + np.abs(K) + np.abs(K.T) + np.diag(np.abs(diag)))
    )
    entry = 2.0 * np.maximum(entry, entry.T) * _SLACK
    return M, entry


def certify(chain: Chain, lam: np.ndarray) -> Certificate:
    """The smallest ρ' for which ``M(ρ', λ) ≺ 0`` is proven (None with the reason when none is)."""
    with single_threaded_blas():
        return _certify_multipliers(chain, lam)


def _certify_multipliers(chain: Chain, lam: np.ndarray) -> Certificate:
    n_x, D = chain.n_x, chain.dim
    M, entry = _lmi_without_rho(chain, lam)
    Q_xx, Q_xu, Q_uu = M[:n_x, :n_x], M[:n_x, n_x:], M[n_x:, n_x:]
    if D > n_x:
        try:
            factor = np.linalg.cholesky(-Q_uu)
        except np.linalg.LinAlgError:
            return Certificate(None, None, 0, "the hidden block of the LMI is not negative definite at the solver's multipliers")
        T = scipy.linalg.solve_triangular(factor, Q_xu.T, lower=True)
        schur = Q_xx + T.T @ T
    else:
        schur = Q_xx
    rho_schur = float(np.linalg.eigvalsh((schur + schur.T) / 2)[-1])
    base = max(rho_schur, 0.0)
    relative, absolute = 1e-9, 4.0 * float(np.max(np.sum(entry[:n_x], axis=1))) + 1e-300
    x_diag = np.arange(n_x)
    for attempt in range(1, _CERTIFY_ATTEMPTS + 1):
        rho = float(np.nextafter(base * (1 + relative) + absolute, math.inf))
        A = -M
        A[x_diag, x_diag] = rho - M[x_diag, x_diag]
        F = entry.copy()
        F[x_diag, x_diag] += 2 * _U * np.abs(A[x_diag, x_diag]) + _ETA  # the rounding of rho - M_ii
        if is_positive_definite(A, entrywise_error=F):
            return Certificate(rho, rho_schur, attempt, "")
        relative *= 4
        absolute *= 4
    return Certificate(None, rho_schur, _CERTIFY_ATTEMPTS, "the LMI could not be proven negative definite at any rho' tried")
