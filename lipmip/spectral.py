"""Certified linear algebra in float64: a verified positive-definiteness test
and upper bounds on vector and operator norms that are proven, not estimated.

**Positive definiteness** (:func:`is_positive_definite`). The idea is Rump's
("Verification of positive definiteness", BIT 46, 2006): run a floating-point
Cholesky factorisation on ``Ã = fl(A - cI)`` for a small shift ``c``; if it
runs to completion, the computed factor ``R`` satisfies ``RᵀR = Ã + Δ`` with
(Demmel; Higham, *Accuracy and Stability*, Thm 10.3, any summation order, FMA
or not) ``|Δ| <= γ_{n+1} |Rᵀ||R|`` entrywise, hence
``‖Δ‖₂ <= γ_{n+1} ‖|R|‖₂² <= γ_{n+1} ‖R‖_F²``. Since ``RᵀR`` is positive
semidefinite, ``λ_min(A) >= c - ‖Δ‖₂ - ‖Ã - (A - cI)‖₂``, and ``A`` is
positive definite as soon as ``c`` exceeds the right-hand side. The constant
used here, after rescaling ``A`` by a power of two so that ``max|a_ij|`` lies
in [1, 2):

    need = 2 γ_{n+1} ‖R‖_F²                     (Demmel's bound, doubled)
         + 4 n η (n + 1 + max_j r_jj)            (underflow: each product or
                                                  quotient may lose up to η/2,
                                                  η the smallest subnormal;
                                                  sums of subnormals are exact)
         + 2 u max_i |ã_ii|                      (rounding of a_ii - c)
         + n η                                   (entries made subnormal by the
                                                  rescaling)
         + error_norm / scale                    (the caller's own bound on
                                                  ‖A_exact - A‖₂)

with ``‖R‖_F²`` summed from the computed factor and rounded up. ``c`` is
chosen a priori (from ``‖R‖_F² <= tr(Ã) / (1 - γ_{n+1})``) so that the test
passes whenever the factorisation does, and the inequality ``c > need`` is
then checked a posteriori. When no error *norm* is given (an entrywise
bound ``F``, or no error at all), the test first scales ``A`` to ``DAD`` with
powers of two (exact) so that its diagonal lies in [1, 4), and uses
``‖DFD‖_F``: ``c`` then depends on the scaled trace, and rows of very
different sizes cost no precision. The factorisation is lipmip's own row-oriented
loop (numpy dot products and true divisions), not LAPACK's blocked routine,
so that the proof does not depend on how a BLAS library orders or
reciprocates its operations.

**Spectral norm** (:func:`certified_spectral_norm`). ``σ_max(W)`` is
estimated (SVD for small layers, power iteration on the smaller Gram matrix
for large ones); then ``μ >= σ_max²`` is *proven* by the test above on
``μI - G``, ``G = WWᵀ`` or ``WᵀW`` (the smaller one), with ``G``'s formation
error ``γ_p |W||W|ᵀ`` bounded in norm by ``γ_p ‖W‖_F²`` and passed as
``error_norm``. ``μ`` starts at ``σ̂² (1 + 1e-9)`` and the margin grows
fourfold until the proof succeeds (or the certified Frobenius norm, which is
always a bound, is smaller). The result is ``sqrt(μ)`` rounded up.

**ℓ1 and ℓ∞** operator norms are maximal absolute column or row sums; the
sums are widened by their rounding error (``γ_n`` of a sum of ``n``
nonnegative terms) and rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipmip.errors import NonFiniteError, ShapeError
from lipmip.norms import parse_norm
from lipmip.rounding import SMALLEST_SUBNORMAL as _ETA
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma

__all__ = [
    "is_positive_definite",
    "CertifiedNorm",
    "certified_spectral_norm",
    "spectral_norm_upper_bound",
    "operator_norm_upper_bound",
    "vector_norm_upper_bound",
    "nonnegative_sum_upper_bound",
    "SVD_MAX_DIM",
]

SVD_MAX_DIM = 512  # estimate σ_max by a full SVD when the smaller side is at most this, else by power iteration
_FIRST_MARGIN = 1e-9  # μ = σ̂² (1 + margin), margin growing fourfold per failed proof
_MAX_ATTEMPTS = 40
_TINY = float(np.finfo(np.float64).tiny)
_SLACK = 1 + 1e-10  # covers the rounding of the few operations that compute an error bound itself


def _up(x: float) -> float:
    """The next float above ``x`` (an upper bound on any real that ``x`` approximates to within half an ulp)."""
    return float(np.nextafter(x, math.inf))


def _power_of_two_above(peak: float) -> float:
    """A power of two ``s`` with ``peak / s`` in [1, 2) (1.0 for a zero peak)."""
    if peak == 0.0:
        return 1.0
    _, exponent = math.frexp(peak)
    return math.ldexp(1.0, exponent - 1)


def _scaled_back(value: float, scale: float) -> float:
    """``value * scale`` rounded up (the product by a power of two is exact unless it lands in the subnormal range)."""
    with np.errstate(over="ignore"):
        out = float(np.float64(value) * np.float64(scale))
    if out < _TINY and value > 0:
        out = _up(out)
    return out


def _checked_matrix(A: Any, what: str) -> np.ndarray:
    try:
        M = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what} is not a numeric matrix ({exc})") from None
    if M.ndim != 2:
        raise ShapeError(f"{what} must be a 2-D matrix, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise NonFiniteError(f"{what} holds NaN or infinite entries")
    return M


def _checked_error_norm(error_norm: Any) -> float:
    try:
        value = float(error_norm)
    except (TypeError, ValueError):
        raise ShapeError(f"error_norm must be a number, got {error_norm!r}") from None
    if math.isnan(value) or value < 0:
        raise ShapeError(f"error_norm must be a nonnegative number, got {error_norm!r}")
    return value


# ---------------------------------------------------------------------------- sums and vector norms
def nonnegative_sum_upper_bound(terms: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """An upper bound on the exact sum of nonnegative float64 ``terms`` (along
    ``axis``): the floating-point sum times ``1 + 2γ_n`` (a sum of ``n``
    nonnegative terms in any order is within ``γ_n`` of the exact one), rounded up."""
    terms = np.asarray(terms, dtype=np.float64)
    n = terms.size if axis is None else terms.shape[axis]
    with np.errstate(over="ignore"):
        total = np.sum(terms, axis=axis) * (1 + 2 * gamma(n + 1))
    total = np.nextafter(total, np.inf)
    return float(total) if axis is None else total


def _vector_norms_upper(V: np.ndarray, p: float) -> np.ndarray:
    """Upper bounds on ``‖row‖_p`` for every row of the 2-D ``V``."""
    rows, n = V.shape
    if n == 0:
        return np.zeros(rows)
    absV = np.abs(V)
    peak = absV.max(axis=1)
    if p == math.inf:
        return peak  # exact
    scale = np.array([_power_of_two_above(float(x)) for x in peak])
    S = absV / scale[:, None]
    # dividing by a power of two above 1 may push an entry into the subnormal range and lose up to η/2
    lossy = scale > 1
    if p == 1.0:
        value = nonnegative_sum_upper_bound(S, axis=1) + np.where(lossy, n * _ETA, 0.0)
    else:
        squares = nonnegative_sum_upper_bound(S * S, axis=1) + n * _ETA  # each square may underflow by η/2
        value = np.nextafter(np.sqrt(squares), np.inf) + np.where(lossy, math.sqrt(n) * _ETA, 0.0)
    value = np.nextafter(value, np.inf)
    out = np.array([_scaled_back(float(v), float(s)) for v, s in zip(value, scale)])
    return np.where(peak == 0, 0.0, out)


def vector_norm_upper_bound(v: Any, p: Any) -> float:
    """An upper bound on ``‖v‖_p`` (p in {1, 2, inf}) in exact arithmetic:
    exact for ∞; for 1 and 2 the rounded sum is widened by its error bound
    (``γ_n``, and ``η`` per term for underflow) and the square root rounded
    up. Relative excess about ``2 n u``; 0 exactly for a zero vector."""
    arr = np.asarray(v, dtype=np.float64).reshape(1, -1)
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError("vector holds NaN or infinite entries")
    return float(_vector_norms_upper(arr, parse_norm(p))[0])


# ---------------------------------------------------------------------------- positive definiteness
def _cholesky(A: np.ndarray) -> np.ndarray | None:
    """The floating-point Cholesky factor ``R`` (upper triangular, ``RᵀR ≈ A``)
    of the symmetric ``A``, row by row: ``r_jk = (a_jk - Σ_{i<j} r_ij r_ik) / r_jj``,
    ``r_jj = sqrt(a_jj - Σ_{i<j} r_ij²)``; None when a pivot is not positive."""
    n = A.shape[0]
    R = np.zeros_like(A)
    for j in range(n):
        s = A[j, j:] - R[:j, j] @ R[:j, j:] if j else A[j, j:].copy()
        if not s[0] > 0.0:
            return None
        r = math.sqrt(s[0])
        R[j, j] = r
        R[j, j + 1:] = s[1:] / r
    return R


def _factorisation_error(R: np.ndarray) -> float:
    """An upper bound on ``‖RᵀR - Ã‖₂`` for the computed factor ``R`` of ``Ã``
    (Demmel's bound doubled, plus the underflow terms)."""
    n = R.shape[0]
    frobenius_sq = nonnegative_sum_upper_bound(R * R) + R.size * _ETA
    max_pivot = float(np.max(np.diag(R)))
    return (2 * gamma(n + 1) * frobenius_sq + 4 * n * _ETA * (n + 1 + max_pivot)) * _SLACK


def _checked_entrywise(F: Any, n: int) -> np.ndarray | None:
    """The entrywise error bound as a float64 (n, n) matrix; None when it holds inf (nothing can be proven)."""
    try:
        M = np.asarray(F, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError("entrywise_error is not a numeric matrix") from None
    if M.shape != (n, n):
        raise ShapeError(f"entrywise_error must have the matrix's shape {(n, n)}, got {M.shape}")
    if np.any(np.isnan(M)) or np.any(M < 0):
        raise ShapeError("entrywise_error must hold nonnegative numbers")
    return None if np.any(np.isinf(M)) else M


def is_positive_definite(A: Any, *, error_norm: float = 0.0, entrywise_error: Any = None) -> bool:
    """Whether the symmetric float64 matrix ``A`` is *proven* positive definite.

    True is a proof: every symmetric matrix ``B`` with ``‖B - A‖₂ <= error_norm``
    and ``|B - A| <= entrywise_error`` entrywise (``A`` itself when both are
    absent, the entries read as exact reals) is positive definite. False
    proves nothing (``A`` may be positive definite with a smallest
    eigenvalue below about ``4 (n+1) u tr(A)``, plus the errors). The two
    error arguments are for matrices the caller formed in floating point:
    bounds on the distance to the exact matrix of interest.

    Without ``error_norm`` the test first scales ``A`` symmetrically by
    powers of two, ``D A D`` with a diagonal in [1, 4) (exact; ``D B D`` is
    positive definite exactly when ``B`` is), so that badly scaled rows cost
    nothing; an entrywise error is scaled with it.

    Raises :class:`~lipmip.errors.ShapeError` for a matrix that is not square,
    empty or not exactly symmetric, or a malformed error bound,
    :class:`~lipmip.errors.NonFiniteError` for NaN or infinite entries.
    """
    A = _checked_matrix(A, "matrix")
    n = A.shape[0]
    if A.shape != (n, n) or n == 0:
        raise ShapeError(f"a positive-definiteness test needs a non-empty square matrix, got shape {A.shape}")
    if not np.array_equal(A, A.T):
        raise ShapeError("matrix is not symmetric (the test reads one triangle; symmetrise it first)")
    error = _checked_error_norm(error_norm)
    F = None if entrywise_error is None else _checked_entrywise(entrywise_error, n)
    if math.isinf(error) or (entrywise_error is not None and F is None):
        return False
    diag = np.diag(A)
    if not np.all(diag > 0):
        return False  # the Cholesky factorisation would stop at that pivot
    equilibrate = error == 0.0
    with np.errstate(all="ignore"):
        if equilibrate:
            _, exponent = np.frexp(diag)
            d = np.ldexp(1.0, np.clip(-((exponent - 1) // 2), -400, 400))
            dd = np.outer(d, d)  # powers of two within 2^±800: exact, and symmetric
            A = A * dd
            if F is not None:
                F = np.where(F > 0, F * dd + _ETA, 0.0)  # a product landing in the subnormal range loses <= η/2
        if not np.all(np.isfinite(A)) or (F is not None and not np.all(np.isfinite(F))):
            return False
    if F is not None:
        error = _up(error + vector_norm_upper_bound(F.reshape(-1), 2))
    peak = float(np.max(np.abs(A)))
    scale = _power_of_two_above(peak)
    S = A / scale
    E = _up(error / scale) + (_ETA if error > 0 else 0.0)
    # entries pushed into the subnormal range by a scaling lose up to η/2 each (‖·‖₂ <= n max)
    rescaling_loss = n * _ETA * ((scale > 1) + equilibrate)
    diag = np.diag(S)
    trace = nonnegative_sum_upper_bound(np.maximum(diag, 0.0))
    g = gamma(n + 1)
    max_diag = float(np.max(np.abs(diag)))
    a_priori = (
        2 * g / (1 - g) * trace * (1 + _U)
        + 4 * n * _ETA * (n + 2 + math.sqrt(max(trace, 0.0)) * 2)
        + 2 * _U * max_diag * 1.5
        + rescaling_loss
        + E
    )
    shift = _up(1.25 * a_priori)
    shifted = S.copy()
    shifted[np.diag_indices(n)] = diag - shift
    R = _cholesky(shifted)
    if R is None:
        return False
    formation = 2 * _U * float(np.max(np.abs(np.diag(shifted))))
    need = (_factorisation_error(R) + formation + rescaling_loss + E) * _SLACK
    return shift > need


# ---------------------------------------------------------------------------- spectral norm
@dataclass(frozen=True)
class CertifiedNorm:
    """A certified upper bound ``value >= ‖W‖₂`` and how it was proven.

    ``estimate`` is the floating-point estimate of ``σ_max`` it started from
    (uncertified), ``how`` names the proof, ``attempts`` counts the
    verified-Cholesky tests run (0 when none was needed)."""

    value: float
    estimate: float
    how: str
    attempts: int = 0

    @property
    def relative_margin(self) -> float:
        """``value / estimate - 1`` (0 when both are 0)."""
        return 0.0 if self.estimate == 0 else self.value / self.estimate - 1.0

    def to_dict(self) -> dict:
        return {"value": self.value, "estimate": self.estimate, "how": self.how, "attempts": self.attempts}


def _largest_eigenvalue_estimate(G: np.ndarray, seed: int = 0, iterations: int = 500) -> float:
    """A floating-point estimate of ``λ_max`` of the symmetric PSD ``G`` by
    power iteration (uncertified; the caller proves a bound above it)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(G.shape[0])
    x /= np.linalg.norm(x)
    value = 0.0
    for _ in range(iterations):
        y = G @ x
        norm = float(np.linalg.norm(y))
        if norm == 0.0:
            return 0.0
        new_value = float(x @ y)
        x = y / norm
        if abs(new_value - value) <= 1e-13 * abs(new_value):
            return new_value
        value = new_value
    return value


def _gram(S: np.ndarray) -> tuple[np.ndarray, float]:
    """The smaller Gram matrix of ``S`` (exactly symmetric) and a bound on
    ``‖G_exact - G‖₂``: ``γ_p ‖S‖_F²`` for the inner length ``p``, plus underflow."""
    m, n = S.shape
    G = S @ S.T if m <= n else S.T @ S
    upper = np.triu(G)
    G = upper + np.triu(G, 1).T
    k, p = G.shape[0], max(m, n)
    frobenius_sq = nonnegative_sum_upper_bound(S * S) + S.size * _ETA
    error = (2 * gamma(p + 1) * frobenius_sq + 2 * k * p * _ETA) * _SLACK
    return G, error


def certified_spectral_norm(W: Any) -> CertifiedNorm:
    """A certified upper bound on the spectral norm ``‖W‖₂ = σ_max(W)``.

    Proven: ``value >= σ_max(W)`` for the exact real matrix the float64
    entries of ``W`` denote; ``value`` is within about 1e-9 relative of
    ``σ_max`` for ordinary matrices (the first margin tried), exact for zero
    matrices and 1×1 ones. Works at any scale (power-of-two rescaling
    inside; a norm above the float range is inf)."""
    W = _checked_matrix(W, "matrix W")
    m, n = W.shape
    if W.size == 0:
        return CertifiedNorm(0.0, 0.0, "empty matrix")
    peak = float(np.max(np.abs(W)))
    if peak == 0.0:
        return CertifiedNorm(0.0, 0.0, "zero matrix")
    if W.size == 1:
        return CertifiedNorm(peak, peak, "1x1 matrix: |w| exactly")
    scale = _power_of_two_above(peak)
    S = W / scale
    loss = math.sqrt(m * n) * _ETA if scale > 1 else 0.0  # entries pushed into the subnormal range by the rescaling
    if min(m, n) == 1:
        value = vector_norm_upper_bound(S.reshape(-1), 2) + loss
        estimate = float(np.linalg.norm(S))
        return CertifiedNorm(_scaled_back(_up(value), scale), estimate * scale, "vector: ℓ2 norm with its rounding bound")
    G, gram_error = _gram(S)
    k = G.shape[0]
    if k <= SVD_MAX_DIM:
        sigma = float(np.linalg.svd(S, compute_uv=False)[0])
        how = "svd estimate"
    else:
        sigma = math.sqrt(max(_largest_eigenvalue_estimate(G), 0.0))
        how = "power-iteration estimate"
    frobenius = vector_norm_upper_bound(S.reshape(-1), 2)
    base = max(sigma * sigma, float(np.max(np.diag(G))))  # λ_max(G) >= max diag
    margin = _FIRST_MARGIN
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        mu = _up(base * (1 + margin))
        if math.sqrt(mu) >= frobenius:
            break
        shifted = -G
        shifted[np.diag_indices(k)] = mu - np.diag(G)
        formation = 2 * _U * float(np.max(np.abs(np.diag(shifted))))
        if is_positive_definite(shifted, error_norm=(gram_error + formation) * _SLACK):
            value = _up(math.sqrt(mu)) + loss
            proof = f"{how}, then μ >= σ_max² proven by a verified Cholesky of μI - G ({k}x{k} Gram matrix)"
            return CertifiedNorm(_scaled_back(_up(value), scale), sigma * scale, proof, attempt)
        margin *= 4
    return CertifiedNorm(
        _scaled_back(_up(frobenius + loss), scale), sigma * scale, "Frobenius norm with its rounding bound", attempt
    )


def spectral_norm_upper_bound(W: Any) -> float:
    """``certified_spectral_norm(W).value``: a proven upper bound on ``‖W‖₂``."""
    return certified_spectral_norm(W).value


def operator_norm_upper_bound(M: Any, p: Any) -> float:
    """A proven upper bound on ``‖M‖_{p→p}`` for p in {1, 2, inf}: the
    certified spectral norm for 2; for 1 (max column sum) and ∞ (max row
    sum) the sums of absolute values widened by their rounding error."""
    M = _checked_matrix(M, "matrix")
    p = parse_norm(p)
    if p == 2.0:
        return spectral_norm_upper_bound(M)
    if M.size == 0:
        return 0.0
    lines = M.T if p == 1.0 else M
    return float(np.max(_vector_norms_upper(lines, 1.0)))
