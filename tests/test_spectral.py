"""lipmip.spectral: the verified positive-definiteness test and certified norms.

Every check compares with an exact answer: matrices whose norm or smallest
eigenvalue is known in closed form (diagonal, rank one with dyadic entries,
Hadamard rotations of small integers, B Bᵀ with integer B), or an exact
rational lower bound ``‖W x‖² / ‖x‖²`` computed with fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr

import numpy as np
import pytest

import lipmip
from lipmip import spectral
from lipmip.errors import LipmipError, NonFiniteError, ShapeError
from lipmip.spectral import (
    certified_spectral_norm,
    is_positive_definite,
    operator_norm_upper_bound,
    spectral_norm_upper_bound,
    vector_norm_upper_bound,
)

HADAMARD4 = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=float) / 2  # orthogonal


def exact_sigma_sq_lower(W: np.ndarray, x: np.ndarray) -> Fr:
    """``‖W x‖² / ‖x‖²`` in exact rational arithmetic: a lower bound on ``σ_max(W)²``."""
    Wf = [[Fr(float(w)) for w in row] for row in W]
    xf = [Fr(float(v)) for v in x]
    image = [sum((w * v for w, v in zip(row, xf)), Fr(0)) for row in Wf]
    return sum((y * y for y in image), Fr(0)) / sum((v * v for v in xf), Fr(0))


def top_right_singular_vector(W: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(W)))
    return np.linalg.svd(W / scale)[2][0]


# ---------------------------------------------------------------------------- norms known exactly
@pytest.mark.parametrize("scale", [1.0, 2.0**-600, 2.0**600, 2.0**-1000])
def test_diagonal_matrix(scale):
    d = np.array([3.0, -7.0, 5.0, 1.0]) * scale
    c = certified_spectral_norm(np.diag(d))
    assert c.value >= 7.0 * scale
    assert c.value <= 7.0 * scale * (1 + 1e-6)


@pytest.mark.parametrize("scale", [1.0, 2.0**-700, 2.0**700])
def test_rank_one_with_dyadic_entries(scale):
    u = np.array([0.5, -1.25, 3.0, 0.75])
    v = np.array([2.0, 0.125, -1.5])
    W = np.outer(u, v) * scale  # exact: products of short dyadic numbers
    exact_sq = sum(Fr(float(a)) ** 2 for a in u) * sum(Fr(float(b)) ** 2 for b in v) * Fr(scale) ** 2
    value = spectral_norm_upper_bound(W)
    assert Fr(value) ** 2 >= exact_sq
    assert value <= math.sqrt(float(exact_sq / Fr(scale) ** 2)) * scale * (1 + 1e-6)


@pytest.mark.parametrize("d", [[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 1.0, 0.0], [2.0, -9.0, 9.0, 3.0]])
def test_hadamard_rotation_of_small_integers(d):
    """``Q diag(d) Qᵀ`` with the orthogonal ``Q = H4/2``: entries are exact in
    float64 and the singular values are exactly ``|d|``."""
    W = HADAMARD4 @ np.diag(d) @ HADAMARD4.T
    assert np.array_equal(HADAMARD4 @ HADAMARD4.T, np.eye(4))
    top = max(abs(x) for x in d)
    for M in (W, HADAMARD4 @ np.diag(d), (HADAMARD4 @ np.diag(d))[:3]):  # square, and 3 rows of Q diag(d)
        value = spectral_norm_upper_bound(M)
        assert Fr(value) ** 2 >= exact_sq_lower_scaled(M)
        assert value <= float(np.linalg.norm(M, 2)) * (1 + 1e-6)
    assert top <= spectral_norm_upper_bound(W) <= top * (1 + 1e-6)


def test_zero_and_one_by_one_matrices():
    assert certified_spectral_norm(np.zeros((3, 5))).value == 0.0
    assert certified_spectral_norm(np.zeros((1, 1))).value == 0.0
    assert certified_spectral_norm([[-2.5]]).value == 2.5
    assert certified_spectral_norm([[5e-324]]).value == 5e-324
    assert certified_spectral_norm([[1e308]]).value == 1e308


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (1, 2), (2, 1)])
def test_vectors(shape):
    rng = np.random.default_rng(3)
    for scale in (1.0, 1e-200, 1e200, 1e-310):
        W = rng.standard_normal(shape) * scale
        value = spectral_norm_upper_bound(W)
        exact_sq = sum(Fr(float(w)) ** 2 for w in W.reshape(-1))
        assert Fr(value) ** 2 >= exact_sq, (shape, scale)
        if scale >= 1e-200:
            assert value <= math.sqrt(float(exact_sq / Fr(scale) ** 2)) * scale * (1 + 1e-12)


def test_huge_entries_give_inf_not_a_wrong_number():
    W = np.full((3, 3), 1e308)
    value = spectral_norm_upper_bound(W)  # σ = 3e308 > the largest float
    assert value == math.inf


# ---------------------------------------------------------------------------- random matrices
SHAPES = [(2, 2), (3, 5), (5, 3), (8, 8), (20, 13), (1, 30), (30, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1e-200, 1e200])
def test_random_matrix_exact_lower_bound_and_tightness(shape, scale):
    rng = np.random.default_rng(sum(shape))
    W = rng.standard_normal(shape) * scale
    c = certified_spectral_norm(W)
    # a real lower bound on σ_max² (rational arithmetic) must not exceed the certified value squared
    assert Fr(c.value) ** 2 >= exact_sq_lower_scaled(W)
    reference = float(np.linalg.norm(W / scale, 2)) * scale
    assert reference * (1 - 1e-12) <= c.value <= reference * (1 + 1e-6)


def exact_sq_lower_scaled(W: np.ndarray) -> Fr:
    return exact_sigma_sq_lower(W, top_right_singular_vector(W))


@pytest.mark.parametrize("shape", [(64, 32), (50, 784), (10, 600)])
def test_larger_layers_are_tight(shape):
    rng = np.random.default_rng(7)
    W = rng.standard_normal(shape) / math.sqrt(shape[1])
    c = certified_spectral_norm(W)
    reference = float(np.linalg.norm(W, 2))
    assert reference <= c.value <= reference * (1 + 1e-6)
    assert c.attempts >= 1 and "Cholesky" in c.how


def test_power_iteration_path(monkeypatch):
    """Past SVD_MAX_DIM the estimate comes from power iteration; the proof
    still holds, even when the two top singular values nearly coincide
    (power iteration converges slowly and underestimates)."""
    monkeypatch.setattr(spectral, "SVD_MAX_DIM", 1)
    rng = np.random.default_rng(11)
    Q1, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    Q2, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    for top in ([3.0, 3.0 * (1 - 1e-9), 1.0, 0.5, 0.1], [2.0, 1.0, 1.0, 0.0, 0.0]):
        S = np.zeros((6, 5))
        S[np.arange(5), np.arange(5)] = top
        W = Q1 @ S @ Q2.T
        c = certified_spectral_norm(W)
        assert "power-iteration" in c.how
        assert Fr(c.value) ** 2 >= exact_sq_lower_scaled(W)
        reference = float(np.linalg.norm(W, 2))
        assert reference <= c.value <= reference * (1 + 1e-6)


def test_bad_matrices_raise_lipmip_errors():
    with pytest.raises(NonFiniteError):
        certified_spectral_norm([[1.0, np.nan]])
    with pytest.raises(ShapeError):
        certified_spectral_norm(np.ones(3))
    with pytest.raises(ShapeError):
        certified_spectral_norm([["a"]])


# ---------------------------------------------------------------------------- ℓ1, ℓ∞ and vector norms
@pytest.mark.parametrize("scale", [1.0, 1e-305, 1e300])
def test_l1_and_linf_operator_norms_are_at_least_the_exact_sums(scale):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((7, 40)) * scale
    exact_rows = max(sum(abs(Fr(float(w))) for w in row) for row in W)
    exact_cols = max(sum(abs(Fr(float(w))) for w in col) for col in W.T)
    inf_norm = operator_norm_upper_bound(W, "inf")
    one_norm = operator_norm_upper_bound(W, 1)
    assert Fr(inf_norm) >= exact_rows and Fr(one_norm) >= exact_cols
    assert inf_norm <= float(exact_rows) * (1 + 1e-12) + 1e-320
    assert one_norm <= float(exact_cols) * (1 + 1e-12) + 1e-320


def test_vector_norms_are_at_least_exact():
    rng = np.random.default_rng(9)
    for scale in (1.0, 1e-170, 1e-310, 1e150):
        v = rng.standard_normal(50) * scale
        exact_1 = sum(abs(Fr(float(x))) for x in v)
        exact_2_sq = sum(Fr(float(x)) ** 2 for x in v)
        assert Fr(vector_norm_upper_bound(v, 1)) >= exact_1
        assert Fr(vector_norm_upper_bound(v, 2)) ** 2 >= exact_2_sq
        assert vector_norm_upper_bound(v, "inf") == float(np.max(np.abs(v)))
    assert vector_norm_upper_bound(np.zeros(4), 2) == 0.0


# ---------------------------------------------------------------------------- positive definiteness
def singular_gram(rng: np.random.Generator, n: int) -> np.ndarray:
    """``B Bᵀ`` with an integer ``n × (n-1)`` matrix ``B``: exact in float64, singular."""
    B = rng.integers(-4, 5, size=(n, n - 1)).astype(float)
    return B @ B.T


def test_clearly_positive_definite_matrices_are_accepted():
    rng = np.random.default_rng(0)
    assert is_positive_definite(np.eye(5))
    assert is_positive_definite([[2.0]])
    assert is_positive_definite(np.diag([1.0, 1e-6, 3.0]))
    for n in (2, 10, 60):
        B = rng.standard_normal((n, n))
        A = B @ B.T / n + 0.1 * np.eye(n)
        assert is_positive_definite((A + A.T) / 2)
    for s in (1e-300, 1e300, 1e-310):  # any scale
        assert is_positive_definite(np.eye(3) * s)


def test_exactly_singular_matrices_are_rejected():
    rng = np.random.default_rng(1)
    for n in range(2, 30):
        A = singular_gram(rng, n)
        assert not is_positive_definite(A), n
    assert not is_positive_definite(np.zeros((3, 3)))
    assert not is_positive_definite([[0.0]])
    assert not is_positive_definite([[1.0, 1.0], [1.0, 1.0]])


def test_slightly_indefinite_matrices_are_rejected():
    """``B Bᵀ - δI`` has smallest eigenvalue exactly ``-δ``; δ about 1e-13 ‖A‖
    (a power of two, so the shifted diagonal is exact)."""
    rng = np.random.default_rng(2)
    for n in range(2, 30):
        A = singular_gram(rng, n)
        delta = 2.0 ** (math.floor(math.log2(np.max(np.abs(A)))) - 43)
        shifted = A - delta * np.eye(n)
        assert np.array_equal(shifted + delta * np.eye(n), A)  # the shift is exact
        assert not is_positive_definite(shifted), n


def test_error_norm_is_respected():
    """diag(1, 2, 3) has λ_min = 1 exactly: within 0.5 every symmetric matrix is
    positive definite, within 1 one is singular."""
    A = np.diag([1.0, 2.0, 3.0])
    assert is_positive_definite(A, error_norm=0.5)
    assert not is_positive_definite(A, error_norm=1.0)
    assert not is_positive_definite(A, error_norm=math.inf)


def test_badly_scaled_matrices_are_equilibrated():
    """[[1e12, 0.1], [0.1, 1e-12]] has determinant 0.99 > 0: positive definite,
    though its small eigenvalue (1e-12) is far below u·tr(A); the exact
    diagonal scaling makes it provable. Its singular twin is still rejected."""
    assert is_positive_definite([[1e12, 0.1], [0.1, 1e-12]])
    assert not is_positive_definite([[2.0**40, 1.0], [1.0, 2.0**-40]])  # determinant exactly 0


def test_entrywise_error_is_respected():
    A = np.diag([1.0, 2.0, 3.0])
    assert is_positive_definite(A, entrywise_error=np.full((3, 3), 0.25))  # ‖B - A‖₂ <= 0.75 < 1
    F = np.zeros((3, 3))
    F[0, 0] = 1.0  # B = diag(0, 2, 3) is within it
    assert not is_positive_definite(A, entrywise_error=F)
    assert not is_positive_definite(A, entrywise_error=np.full((3, 3), np.inf))
    tiny = np.diag([1e-20, 1e20])
    assert is_positive_definite(tiny, entrywise_error=np.diag([1e-21, 1e19]))  # 10% of each entry
    assert not is_positive_definite(tiny, entrywise_error=np.diag([1e-20, 0.0]))
    with pytest.raises(ShapeError):
        is_positive_definite(A, entrywise_error=np.ones((2, 2)))
    with pytest.raises(ShapeError):
        is_positive_definite(A, entrywise_error=-np.ones((3, 3)))


def test_pd_test_rejects_bad_input():
    with pytest.raises(ShapeError):
        is_positive_definite(np.ones((2, 3)))
    with pytest.raises(ShapeError):
        is_positive_definite(np.zeros((0, 0)))
    with pytest.raises(ShapeError):
        is_positive_definite([[1.0, 0.5], [0.25, 1.0]])
    with pytest.raises(NonFiniteError):
        is_positive_definite([[np.inf]])
    with pytest.raises(LipmipError):
        is_positive_definite(np.eye(2), error_norm=-1.0)


# ---------------------------------------------------------------------------- the product bound uses them
def test_product_bound_factors_are_certified_spectral_norms():
    W = HADAMARD4 @ np.diag([1.0, 2.0, 3.0, 4.0]) @ HADAMARD4.T
    net = lipmip.Network([lipmip.Layer(W, np.zeros(4), "identity")])
    r = lipmip.lipschitz(net, lipmip.Ball(np.zeros(4), 1.0, 2), lipmip.Query.vector(2), method="naive")
    assert 4.0 <= r.upper <= 4.0 * (1 + 1e-6)
    assert "Cholesky" in r.details["factor_proofs"][0]
    two = lipmip.Network([lipmip.Layer(W, np.zeros(4)), lipmip.Layer(W.T, np.zeros(4), "identity")])
    r2 = lipmip.lipschitz(two, lipmip.Ball(np.zeros(4), 1.0, 2), lipmip.Query.vector(2), method="naive")
    assert 16.0 <= r2.upper <= 16.0 * (1 + 1e-6)
    assert len(r2.details["layer_factors"]) == 2
