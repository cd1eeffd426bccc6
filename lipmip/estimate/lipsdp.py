"""LipSDP-Neuron upper bounds for ℓ2 (Fazlyab, Robey, Hassani, Morari,
Pappas, "Efficient and accurate estimation of Lipschitz constants for deep
neural networks", NeurIPS 2019, arXiv 1906.04893), with a certified last step.

**The LMI.** Write the network over the region as a chain in the variables
``v = (x, u)``: ``x`` the free input coordinates, ``u`` the outputs of the
neurons whose slope is not fixed (every ReLU, globally; the unstable ones,
locally). A neuron whose slope is fixed is eliminated: an active ReLU or an
identity neuron passes its pre-activation on, an inactive one passes 0. Every
pre-activation ``z_i`` of a free neuron, and the queried output ``y`` (``c·f``
or ``f``), are then linear in ``v``: ``z_i = z_iᵀ v``, ``y = Y v``. A ReLU
with slope in [0, 1] satisfies, for any two inputs,
``Δu_i (Δz_i - Δu_i) >= 0``, so for multipliers ``λ_i >= 0``

    M(ρ, λ) = YᵀY - ρ [I 0; 0 0] + Σ_i λ_i (e_i z_iᵀ + z_i e_iᵀ - 2 e_i e_iᵀ)  ⪯  0

implies ``‖Δy‖² <= ρ ‖Δx‖²``: the Lipschitz constant is at most ``sqrt(ρ)``.
The SDP minimises ρ over ``λ`` (one per neuron: ``variant="neuron"``; one per
layer: ``variant="layer"``). Globally every ReLU has slope in [0, 1] and the
bound holds for every region; locally the slope bounds come from the forward
bounds over the region (active [1, 1] and inactive [0, 0] neurons fixed,
unstable [0, 1]). A network with no free neuron (one affine layer, or every
ReLU stable) gives ``ρ = ‖Y‖²``, the exact value, without a solver.

Neurons that cannot matter are dropped first: those whose pre-activation
does not depend on the input (``Δu = 0``) and those with no path to the
queried output. Since ``x`` enters only through the first layer, the SDP is
solved with the input block reduced to the row space of ``W_1`` (a
``rank(W_1)`` block instead of an ``n_in`` one: the optimum is the same in
exact arithmetic).

**Solvers.** Clarabel and SCS through cvxpy, or lipmip's own log-barrier
method (:class:`_BarrierProblem`): each multiplier's matrix has rank two, so
a Newton step costs ``O(D³ + D²N + N³)`` for an LMI of size ``D`` with ``N``
multipliers, where Clarabel factors a dense ``w(w+1)/2``-square matrix per
dense block of width ``w`` at every iteration. Measured in docs/lipsdp.md:
the same certified values (to 1e-8), and 0.1 s against 30 s on the digits
network's global LMI.

**Certification.** An SDP solver's answer is only approximately feasible, so
its ``sqrt(ρ)`` is never reported. Its multipliers (clipped to ``λ >= 0``)
are kept; the smallest ρ' they allow follows from the Schur complement on the
input block (ρ appears only there); then ``-M(ρ', λ)`` — built on the full,
unreduced matrices, with an entrywise bound on every rounding error of its
formation — is *proven* positive definite by the verified Cholesky test of
:mod:`lipmip.spectral` (after an exact power-of-two diagonal scaling, so that
large multipliers cost no precision on the input block). The upper bound is
``sqrt(ρ')`` rounded up. When the hidden block is not negative definite at
the solver's multipliers, or ρ' is not within 1e-7 of the solver's ρ, the SDP
is solved again with ``M ⪯ -ε [0 0; 0 I]`` for growing ε while that helps;
if no proof comes, ``upper`` is None and ``details["reason"]`` says why.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse

from lipmip.bounds import compute
from lipmip.bounds.base import Bounds
from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError, SolverUnavailableError
from lipmip.network import Network
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.rounding import SMALLEST_SUBNORMAL as _ETA
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma
from lipmip.spectral import is_positive_definite
from lipmip.witness import free_coordinates

__all__ = ["lipsdp_upper_bound", "SOLVERS", "VARIANTS", "CAVEAT", "CLARABEL_AUTO_BLOCK", "CLARABEL_MAX_BLOCK"]

SOLVERS = ("auto", "barrier", "clarabel", "scs")
VARIANTS = ("neuron", "layer")
CLARABEL_AUTO_BLOCK = 40  # "auto" uses Clarabel up to this largest dense LMI block (about a second), the barrier solver past it
CLARABEL_MAX_BLOCK = 110  # largest dense LMI block Clarabel is given at all (its per-iteration cost grows as the block's size⁶)
CAVEAT = (
    "SDP solvers stop at a tolerance, so the solver's own sqrt(rho) may lie slightly below the true LipSDP optimum "
    "and its multipliers need not satisfy the LMI exactly. That number is only reported as solver_value. The upper "
    "bound is certified: the solver's multipliers (clipped to >= 0) were kept, the smallest rho' they allow was "
    "computed, and the LMI at rho' was proven negative definite in float64 with every rounding error bounded "
    "(verified Cholesky). A loose solve costs tightness, never soundness."
)
_STRICTNESS = (0.0, 1e-9, 1e-7, 1e-5, 1e-3, 1e-2)  # ε / ρ_solver tried in turn for M ⪯ -ε [0 0; 0 I]
_NO_ANSWER = ("solver_error", "infeasible", "unbounded", "infeasible_inaccurate", "unbounded_inaccurate")
_CERTIFY_ATTEMPTS = 12
_SLACK = 1 + 1e-10


# ---------------------------------------------------------------------------- the chain v = (x, u)
@dataclass(frozen=True)
class _Chain:
    """The queried output and every free neuron's pre-activation as linear
    maps of ``v = (x_free, u)``, each with an entrywise bound on its rounding
    error: ``|Y_exact - Y| <= Y_err``, ``|Z_exact - Z| <= Z_err``."""

    n_x: int
    Z: np.ndarray  # (free neurons, dim v)
    Z_err: np.ndarray
    Y: np.ndarray  # (outputs of the query, dim v)
    Y_err: np.ndarray
    layer_of: np.ndarray  # activation layer of each free neuron
    first_weights: np.ndarray  # W_1 restricted to the free inputs (x enters only through it)

    @property
    def dim(self) -> int:
        return self.Z.shape[1]

    @property
    def free_neurons(self) -> int:
        return self.Z.shape[0]


def _product_with_error(A: np.ndarray, B: np.ndarray, B_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fl(A B)`` for an exact ``A`` and ``B`` known to within ``B_err``, and
    an entrywise bound on its distance to the exact product: the dot-product
    rounding ``γ_{k+1} |A||B|`` plus the propagated ``|A| B_err`` plus
    underflow, doubled to cover the rounding of the bound itself."""
    k = A.shape[1]
    absA = np.abs(A)
    # underflow: each of the product terms that is not exactly zero may lose η/2
    terms = (absA > 0).astype(np.float64) @ ((B != 0) | (B_err > 0)).astype(np.float64)
    err = gamma(k + 1) * (absA @ np.abs(B)) + absA @ B_err + terms * _ETA
    return A @ B, 2.0 * err


def _build_chain(net: Network, slopes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], free: np.ndarray,
                 c: np.ndarray | None) -> _Chain:
    """The chain for ``slopes[k] = (active, inactive, free)`` masks of every
    activation layer ``k`` (the hidden layers, and the output layer when it
    has a ReLU), the free input mask, and the head ``c`` (None: the whole output)."""
    layers = net.layers
    n_x = int(free.sum())
    counts = [int(s[2].sum()) for s in slopes]
    offsets = np.concatenate([[n_x], n_x + np.cumsum(counts)]).astype(int)
    dim = int(offsets[-1])
    Z_rows, Z_err_rows, layer_of = [], [], []
    W1 = layers[0].W[:, free]
    Z = np.zeros((layers[0].out_features, dim))
    Z[:, :n_x] = W1
    Z_err = np.zeros_like(Z)
    post, post_err = None, None  # post-activation of the previous activation layer as a map of v
    for k, layer in enumerate(layers):
        if k > 0:
            active, _, unstable = slopes[k - 1]
            Z, Z_err = _product_with_error(layer.W[:, active], post[active], post_err[active])
            Z[:, offsets[k - 1]:offsets[k]] += layer.W[:, unstable]  # these columns of post[active] are 0: exact
        if k < len(slopes):
            active, inactive, unstable = slopes[k]
            Z_rows.append(Z[unstable])
            Z_err_rows.append(Z_err[unstable])
            layer_of += [k] * int(unstable.sum())
            post = np.where(active[:, None], Z, 0.0)
            post_err = np.where(active[:, None], Z_err, 0.0)
            post[np.flatnonzero(unstable), offsets[k] + np.arange(counts[k])] = 1.0
        else:
            post, post_err = Z, Z_err
    if c is None:
        Y, Y_err = post, post_err
    else:
        Y, Y_err = _product_with_error(c[None, :], post, post_err)
    return _Chain(
        n_x=n_x,
        Z=np.vstack(Z_rows) if Z_rows else np.zeros((0, dim)),
        Z_err=np.vstack(Z_err_rows) if Z_err_rows else np.zeros((0, dim)),
        Y=Y,
        Y_err=Y_err,
        layer_of=np.array(layer_of, dtype=int),
        first_weights=W1,
    )


def _without_idle_neurons(chain: _Chain) -> _Chain:
    """The chain without the free neurons that cannot matter: those whose
    pre-activation does not depend on the input (no path of nonzero weights
    from a free input: ``Δu_i = 0`` for every pair of inputs, so the LMI is
    only needed on ``u_i = 0``), and those the queried output cannot depend
    on (their rows of the LMI would hold only ``-2λ_i`` and ``λ_i z_i``, and
    dropping a neuron's quadratic constraint keeps the LMI a valid
    certificate). Without them the SDP has a bounded optimal set."""
    n_x, N = chain.n_x, chain.free_neurons
    feeds_output = np.any((chain.Y[:, n_x:] != 0) | (chain.Y_err[:, n_x:] > 0), axis=0)
    feeds = (chain.Z[:, n_x:] != 0) | (chain.Z_err[:, n_x:] > 0)  # feeds[j, i]: neuron j depends on neuron i
    from_input = np.any((chain.Z[:, :n_x] != 0) | (chain.Z_err[:, :n_x] > 0), axis=1)
    varies = np.zeros(N, dtype=bool)
    for i in range(N):  # a neuron depends only on neurons of earlier layers (smaller slots)
        varies[i] = from_input[i] or bool(np.any(feeds[i, :i] & varies[:i]))
    kept = np.zeros(N, dtype=bool)
    for i in range(N - 1, -1, -1):
        kept[i] = varies[i] and (feeds_output[i] or bool(np.any(feeds[kept, i])))
    if kept.all():
        return chain
    columns = np.concatenate([np.arange(n_x), n_x + np.flatnonzero(kept)])
    return _Chain(
        n_x=n_x,
        Z=chain.Z[kept][:, columns],
        Z_err=chain.Z_err[kept][:, columns],
        Y=chain.Y[:, columns],
        Y_err=chain.Y_err[:, columns],
        layer_of=chain.layer_of[kept],
        first_weights=chain.first_weights,
    )


def _depends_on_input(chain: _Chain) -> bool:
    """Whether some free input reaches the output through a nonzero weight
    (directly or through a kept neuron, :func:`_without_idle_neurons`)."""
    n_x = chain.n_x
    direct = (chain.Y[:, :n_x] != 0) | (chain.Y_err[:, :n_x] > 0)
    through = (chain.Z[:, :n_x] != 0) | (chain.Z_err[:, :n_x] > 0)
    return bool(np.any(direct) or np.any(through))


def _slope_masks(net: Network, forward: Bounds | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(active, inactive, free) per activation layer: from the forward bounds
    (local), or every ReLU free and every identity neuron active (global)."""
    count = len(net.layers) - (0 if net.has_output_activation else 1)
    masks = []
    for k in range(count):
        layer = net.layers[k]
        n = layer.out_features
        if layer.activation.name == "identity":
            masks.append((np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool)))
        elif forward is None:
            masks.append((np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool)))
        else:
            masks.append((forward.active[k].copy(), forward.inactive[k].copy(), forward.unstable[k].copy()))
    return masks


# ---------------------------------------------------------------------------- the SDP
@dataclass(frozen=True)
class _Solution:
    rho: float | None
    lam: np.ndarray | None
    status: str
    solver: str
    seconds: float
    message: str = ""


@dataclass(frozen=True)
class _Reduced:
    """The LMI data for the solver: ``Y`` and ``Z`` with the input block
    expressed in an orthonormal basis of the row space of ``W_1`` (``r``
    coordinates; float only, the certificate uses the full chain)."""

    Y: np.ndarray
    Z: np.ndarray
    r: int
    layer_of: np.ndarray

    @property
    def dim(self) -> int:
        return self.r + self.Z.shape[0]

    def largest_clique(self) -> int:
        """An estimate of the largest dense block a chordal decomposition of the
        LMI leaves: the widest row envelope (``i - min{j : M_ij != 0} + 1``) in
        the natural order (inputs, then layer by layer), which bounds the
        cliques of the Cholesky fill."""
        D, r = self.dim, self.r
        pattern = np.zeros((D, D), dtype=bool)
        cols = np.flatnonzero(np.any(self.Y != 0, axis=0))
        pattern[np.ix_(cols, cols)] = True
        pattern[r:, :] |= self.Z != 0
        pattern |= pattern.T
        pattern[np.diag_indices(D)] = True
        first = np.argmax(pattern, axis=1)
        return int(np.max(np.arange(D) - first + 1))


def _reduced(chain: _Chain) -> _Reduced:
    W1, n_x = chain.first_weights, chain.n_x
    if W1.shape[0] >= W1.shape[1]:
        basis = np.eye(n_x)
    else:
        _, _, vt = np.linalg.svd(W1, full_matrices=False)
        basis = vt.T
    Y = np.hstack([chain.Y[:, :n_x] @ basis, chain.Y[:, n_x:]])
    Z = np.hstack([chain.Z[:, :n_x] @ basis, chain.Z[:, n_x:]])
    return _Reduced(Y, Z, basis.shape[1], chain.layer_of)


def _solve_sdp(data: _Reduced, variant: str, solver: str, strictness: float, time_limit: float | None) -> _Solution:
    """Minimise ρ subject to ``M(ρ, λ) + ε [0 0; 0 I] ⪯ 0``, ``λ >= 0`` (``ε``
    = ``strictness``), in the reduced input coordinates."""
    if solver == "barrier":
        return _solve_barrier(data, variant, strictness, time_limit)
    import cvxpy as cp

    Y, Z, r = data.Y, data.Z, data.r
    N, D = Z.shape[0], data.dim
    C = Y.T @ Y
    C = (C + C.T) / 2
    # vec(Σ λ_i A_i) = A_map @ λ, A_i = e_s zᵀ + z e_sᵀ - 2 e_s e_sᵀ with s = r + i (row-major vec)
    rows, cols, vals = [], [], []
    for i in range(N):
        s = r + i
        nz = np.flatnonzero(Z[i])
        rows += [s * D + nz, nz * D + s, np.array([s * D + s])]
        cols += [np.full(nz.size, i), np.full(nz.size, i), np.array([i])]
        vals += [Z[i, nz], Z[i, nz], np.array([-2.0])]
    A_map = scipy.sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(D * D, N)
    )
    if variant == "layer":
        groups = np.unique(data.layer_of)
        expand = scipy.sparse.csc_matrix(
            (np.ones(N), (np.arange(N), np.searchsorted(groups, data.layer_of))), shape=(N, groups.size)
        )
        t = cp.Variable(groups.size, nonneg=True)
        lam_expr = expand @ t
        linear = (A_map @ expand) @ t
    else:
        t = cp.Variable(N, nonneg=True)
        lam_expr = t
        linear = A_map @ t
    rho = cp.Variable()
    P = np.zeros((D, D))
    P[np.arange(r), np.arange(r)] = 1.0
    Pu = np.zeros((D, D))
    Pu[np.arange(r, D), np.arange(r, D)] = 1.0
    M = C + cp.reshape(linear, (D, D), order="C") - rho * P + strictness * Pu
    problem = cp.Problem(cp.Minimize(rho), [-(M + M.T) / 2 >> 0])
    if solver == "clarabel":
        name = cp.CLARABEL
        options: dict[str, Any] = {"max_iter": 200, "tol_gap_abs": 1e-12, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
    else:
        name = cp.SCS
        options = {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200_000}
        if time_limit is not None:
            options["time_limit_secs"] = float(time_limit)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "solution may be inaccurate": the status says so, and the bound is certified
            problem.solve(solver=name, **options)
    except (cp.SolverError, ValueError, ArithmeticError, MemoryError) as exc:
        return _Solution(None, None, "solver_error", solver, time.perf_counter() - start, str(exc).strip())
    seconds = time.perf_counter() - start
    lam = None if t.value is None else np.asarray(lam_expr.value, dtype=np.float64).reshape(-1)
    value = None if rho.value is None else float(rho.value)
    if lam is not None and not np.all(np.isfinite(lam)):
        lam = None
    return _Solution(value, lam, str(problem.status), solver, seconds)


# ---------------------------------------------------------------------------- lipmip's structured barrier solver
_BARRIER_GAP = 1e-9  # stop when the duality gap (D + p) / t is below this share of ρ
_BARRIER_STEPS = 3000
_BARRIER_STAGE_STEPS = 500


class _BarrierProblem:
    """``min ρ`` subject to ``F(ρ, λ) = ρP - YᵀY - Σ_i λ_i A_i ≻ 0`` (``F = -M``),
    ``λ = T t``, ``t > 0``, by the log-barrier method (Boyd and Vandenberghe,
    *Convex Optimization*, §11.3). Each ``A_i = e_s w_iᵀ + w_i e_sᵀ`` has rank
    two (``w_i = z_i - e_s``), so with ``G = F⁻¹`` the gradient is
    ``tr(G A_i) = 2 (G w_i)_s`` and the Hessian
    ``tr(G A_i G A_j) = 2 (w_iᵀG e_j)(w_jᵀG e_i) + 2 (w_iᵀG w_j)(e_iᵀG e_j)``:
    a Newton step costs ``O(D³ + D²N + N³)``, where a general conic solver
    factors dense ``D(D+1)/2``-square blocks."""

    def __init__(self, data: _Reduced, variant: str, strictness: float):
        Y, Z, r = data.Y, data.Z, data.r
        self.N, self.D, self.r = Z.shape[0], data.dim, r
        self.slots = r + np.arange(self.N)
        self.W = Z.T.copy()
        self.W[self.slots, np.arange(self.N)] -= 1.0
        C = Y.T @ Y
        self.base = -(C + C.T) / 2
        self.base[self.slots, self.slots] -= strictness
        if variant == "layer":
            groups = np.unique(data.layer_of)
            self.T = (data.layer_of[:, None] == groups[None, :]).astype(np.float64)
        else:
            self.T = None
        self.p = self.N if self.T is None else self.T.shape[1]
        self.layer_of = data.layer_of
        self.delta = 0.0  # weight of Σ t in the objective (set at the start; bounds the optimal set)

    def lam(self, t: np.ndarray) -> np.ndarray:
        return t if self.T is None else self.T @ t

    def F(self, rho: float, t: np.ndarray) -> np.ndarray:
        K = np.zeros((self.D, self.D))
        K[self.slots, :] = self.lam(t)[:, None] * self.W.T
        F = self.base - K - K.T
        F[np.arange(self.r), np.arange(self.r)] += rho
        return F

    def barrier(self, rho: float, t: np.ndarray, weight: float) -> tuple[float, np.ndarray | None]:
        if not np.all(t > 0):
            return math.inf, None
        try:
            L = np.linalg.cholesky(self.F(rho, t))
        except np.linalg.LinAlgError:
            return math.inf, None
        value = weight * (rho + self.delta * float(np.sum(t))) - 2 * float(np.sum(np.log(np.diag(L)))) - float(np.sum(np.log(t)))
        return value, L

    def newton_step(self, L: np.ndarray, t: np.ndarray, weight: float) -> tuple[np.ndarray, float]:
        """The Newton direction for ``(ρ, t)`` and the squared Newton decrement."""
        D, r, N, slots = self.D, self.r, self.N, self.slots
        Linv, info = scipy.linalg.lapack.dtrtri(L, lower=1)
        if info != 0:
            Linv = scipy.linalg.solve_triangular(L, np.eye(D), lower=True)
        G = Linv.T @ Linv
        GW = G @ self.W
        g_lam = 2 * GW[slots, np.arange(N)]
        h_rho_lam = -2 * (G[:, :r] @ (G[:r, :] @ self.W))[slots, np.arange(N)]
        B = GW[slots, :].T
        H_lam = 2 * (B * B.T) + 2 * ((self.W.T @ GW) * G[np.ix_(slots, slots)])
        if self.T is not None:
            g_lam, h_rho_lam, H_lam = self.T.T @ g_lam, self.T.T @ h_rho_lam, self.T.T @ H_lam @ self.T
        g = np.concatenate([[weight - np.trace(G[:r, :r])], g_lam + weight * self.delta - 1.0 / t])
        H = np.empty((self.p + 1, self.p + 1))
        H[0, 0] = np.sum(G[:r, :r] ** 2)
        H[0, 1:] = H[1:, 0] = h_rho_lam
        H[1:, 1:] = H_lam + np.diag(1.0 / t**2)
        scale = 1.0 / np.sqrt(np.maximum(np.diag(H), 1e-300))
        Hs = H * scale[:, None] * scale[None, :]
        try:
            step = -scale * scipy.linalg.cho_solve(scipy.linalg.cho_factor(Hs), scale * g)
        except np.linalg.LinAlgError:
            step = -scale * np.linalg.lstsq(Hs, scale * g, rcond=None)[0]
        return step, float(-g @ step)

    def start(self) -> tuple[float, np.ndarray] | None:
        """A strictly feasible point: multipliers growing geometrically towards
        the first layer, ``λ_i = c β^(last - layer_i)``, with β doubled until
        the multipliers' own part of the hidden block is positive definite
        (its off-diagonal blocks are strictly lower triangular), then ``c``
        large enough to dominate ``YᵀY``; ρ from the Schur complement."""
        r, depth = self.r, self.layer_of
        last = int(depth.max()) if self.N else 0
        groups = np.unique(depth)
        for beta in range(0, 64, 2):
            ratio = np.power(2.0, beta * (last - depth))
            unit = ratio if self.T is None else np.array([ratio[depth == g][0] for g in groups])
            own = self.F(0.0, unit) - self.base
            try:
                L_own = np.linalg.cholesky(own[r:, r:])
            except np.linalg.LinAlgError:
                if last == 0:
                    break
                continue
            X = scipy.linalg.solve_triangular(L_own, -self.base[r:, r:], lower=True)
            X = scipy.linalg.solve_triangular(L_own, X.T, lower=True)
            c = 2.0 * max(float(np.linalg.eigvalsh((X + X.T) / 2)[-1]), 0.0) + 1e-9
            t = unit * c
            F = self.F(0.0, t)
            try:
                L_uu = np.linalg.cholesky(F[r:, r:])
            except np.linalg.LinAlgError:
                continue
            X = scipy.linalg.solve_triangular(L_uu, F[r:, :r], lower=True)
            schur = X.T @ X - F[:r, :r]
            rho = 1.5 * max(float(np.linalg.eigvalsh((schur + schur.T) / 2)[-1]), 0.0) + 1e-12
            if math.isfinite(rho) and np.all(np.isfinite(t)):
                return rho, t
        return None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread while inside (when threadpoolctl is installed). The
    barrier solver and the certificate run thousands of products of a few
    hundred rows, where OpenBLAS's threads gain little alone and, on a busy
    machine, spin: the ACAS Xu global LMI took 587 s with them and 7 s
    without, on two shared cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limits = threadpool_limits(limits=1, user_api="blas")
    try:
        yield
    finally:
        limits.restore_original_limits()


def _solve_barrier(data: _Reduced, variant: str, strictness: float, time_limit: float | None) -> _Solution:
    """LipSDP by :class:`_BarrierProblem`; every iterate is strictly feasible,
    so a stop at the time limit still leaves certifiable multipliers."""
    with _single_threaded_blas():
        return _run_barrier(data, variant, strictness, time_limit)


def _run_barrier(data: _Reduced, variant: str, strictness: float, time_limit: float | None) -> _Solution:
    start_time = time.perf_counter()
    problem = _BarrierProblem(data, variant, strictness)
    first = problem.start()
    if first is None:
        return _Solution(None, None, "solver_error", "barrier", time.perf_counter() - start_time,
                         "no strictly feasible starting point found")
    rho, t = first
    problem.delta = 1e-10 * rho / max(float(np.sum(t)), 1e-300)
    degree = problem.D + problem.p
    weight = degree / max(rho, 1e-300)
    value, L = problem.barrier(rho, t, weight)
    steps, status = 0, "optimal_inaccurate"
    while steps < _BARRIER_STEPS:
        centred = False
        for _ in range(_BARRIER_STAGE_STEPS):
            if time_limit is not None and time.perf_counter() - start_time > time_limit:
                return _Solution(rho, problem.lam(t), "user_limit", "barrier", time.perf_counter() - start_time,
                                 f"{steps} Newton steps")
            step, decrement = problem.newton_step(L, t, weight)
            steps += 1
            if decrement / 2 <= 1e-6:
                centred = True
                break
            size = 1.0
            while size > 1e-12:
                new_value, new_L = problem.barrier(rho + size * step[0], t + size * step[1:], weight)
                if new_value <= value - 0.25 * size * decrement:
                    break
                size /= 2
            if size <= 1e-12 or value - new_value <= 1e-13 * max(1.0, abs(value)):
                centred = decrement <= 1e-3  # no decrease left to find in float64: as centred as it gets
                if size <= 1e-12:
                    break
            rho, t, value, L = rho + size * step[0], t + size * step[1:], new_value, new_L
            if centred:
                break
        if not centred:
            break  # the gap estimate needs a centred point: stop with what is there (still strictly feasible)
        if degree / weight <= _BARRIER_GAP * max(abs(rho), 1e-300):
            status = "optimal"
            break
        weight *= 8
        value, L = problem.barrier(rho, t, weight)
    return _Solution(rho, problem.lam(t), status, "barrier", time.perf_counter() - start_time, f"{steps} Newton steps")


# ---------------------------------------------------------------------------- the certificate
@dataclass(frozen=True)
class _Certificate:
    rho: float | None
    rho_schur: float | None
    attempts: int
    reason: str


def _lmi_without_rho(chain: _Chain, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _certify(chain: _Chain, lam: np.ndarray) -> _Certificate:
    """The smallest ρ' for which ``M(ρ', λ) ≺ 0`` is proven (None with the reason when none is)."""
    with _single_threaded_blas():
        return _certify_multipliers(chain, lam)


def _certify_multipliers(chain: _Chain, lam: np.ndarray) -> _Certificate:
    n_x, D = chain.n_x, chain.dim
    M, entry = _lmi_without_rho(chain, lam)
    Q_xx, Q_xu, Q_uu = M[:n_x, :n_x], M[:n_x, n_x:], M[n_x:, n_x:]
    if D > n_x:
        try:
            factor = np.linalg.cholesky(-Q_uu)
        except np.linalg.LinAlgError:
            return _Certificate(None, None, 0, "the hidden block of the LMI is not negative definite at the solver's multipliers")
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
            return _Certificate(rho, rho_schur, attempt, "")
        relative *= 4
        absolute *= 4
    return _Certificate(None, rho_schur, _CERTIFY_ATTEMPTS, "the LMI could not be proven negative definite at any rho' tried")


# ---------------------------------------------------------------------------- entry point
def _best_certificate(chain: _Chain, data: _Reduced, variant: str, solver: str, time_limit: float | None,
                      attempts: list[dict]) -> tuple[_Solution, _Certificate, float] | None:
    """Solve the SDP, certify the multipliers; when the certified ρ' is not
    within ``1e-7`` of the solver's optimum (multipliers at which the hidden
    block is nearly singular amplify the solver's tolerance), or nothing is
    proven, solve again with ``M ⪯ -ε [0 0; 0 I]`` for growing ε while that
    helps. Returns the best (solution, certificate, ε / ρ) or None; every
    run is appended to ``attempts``."""
    best, target, rho_scale = None, None, 0.0
    for strictness in _STRICTNESS:
        if strictness and target is None:
            break
        sol = _solve_sdp(data, variant, solver, strictness * rho_scale, time_limit)
        record = {"solver": solver, "status": sol.status, "seconds": sol.seconds, "strictness": strictness}
        if sol.message:
            record["message"] = sol.message
        attempts.append(record)
        if sol.lam is None:
            break
        if target is None:
            rho_scale = max(sol.rho or 0.0, 1e-12)
            target = rho_scale * (1 + 1e-7)
        cert = _certify(chain, np.maximum(sol.lam, 0.0))
        record["reason"] = cert.reason or None
        if cert.rho is not None:
            record["certified_rho"] = cert.rho
            if best is not None and cert.rho >= best[1].rho:
                break  # more strictness no longer helps
            best = (sol, cert, strictness)
            if cert.rho <= target:
                break
    return best


def _check_query(query: Query) -> None:
    if query.input_norm != 2.0 or (query.c is None and query.output_norm != 2.0):
        raise InvalidQueryError(
            f"LipSDP bounds l2 Lipschitz constants only (a scalar query c·f with input norm 2, or the 2→2 operator "
            f"norm of the Jacobian); got {query.describe()}. For norms 1 and inf use method='naive', 'interval', "
            f"'bab', 'mip' or 'auto'"
        )


def _check_choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidQueryError(f"unknown LipSDP {what} {value!r}; use one of {', '.join(allowed)}")
    return value


def _normalised(chain: _Chain) -> tuple[_Chain, float]:
    """The chain with its output map divided by a power of two ``s`` that
    brings the largest column norm of ``Y`` near 1 (the SDP is better
    conditioned), and ``s``; ``L = s · L_normalised``."""
    peak = float(np.max(np.linalg.norm(chain.Y, axis=0))) if chain.Y.size else 0.0
    if not peak > 0.0 or not math.isfinite(peak):
        return chain, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1] - 1)
    Y = chain.Y / scale
    # a nonzero quotient landing in the subnormal range loses up to η/2; a zero stays exact
    Y_err = chain.Y_err / scale + np.where(chain.Y != 0, _ETA if scale > 1 else 0.0, 0.0)
    return _Chain(chain.n_x, chain.Z, chain.Z_err, Y, Y_err, chain.layer_of, chain.first_weights), scale


def _solver_order(solver: str, clique: int) -> list[str]:
    """The solvers to try in turn. Clarabel holds each dense block of the
    (chordally decomposed) LMI as a dense ``w(w+1)/2``-square matrix and
    factors it every iteration (cost ~w⁶): "auto" gives it the LMIs whose
    largest block is at most :data:`CLARABEL_AUTO_BLOCK` and the barrier
    solver the others, each falling back on the other, then on SCS."""
    if solver == "clarabel" and clique > CLARABEL_MAX_BLOCK:
        raise SolverUnavailableError(
            f"the LMI has a dense block of about {clique} rows, too large for Clarabel (at most {CLARABEL_MAX_BLOCK}: "
            f"it would store and factor a {clique * (clique + 1) // 2}-square dense matrix per iteration); "
            f"use solver='barrier' or 'scs'"
        )
    if solver != "auto":
        return [solver]
    if clique <= CLARABEL_AUTO_BLOCK:
        return ["clarabel", "barrier", "scs"]
    return ["barrier", "clarabel", "scs"] if clique <= CLARABEL_MAX_BLOCK else ["barrier", "scs"]


def lipsdp_upper_bound(
    net: Network,
    region: Region,
    query: Query,
    *,
    local: bool = True,
    variant: str = "neuron",
    solver: str = "auto",
    bounds: str | Bounds = "linear",
    time_limit: float | None = None,
) -> LipschitzBound:
    """A certified ℓ2 upper bound from LipSDP-Neuron (or LipSDP-Layer).

    ``query``: a scalar ``c·f`` with input norm 2, or the 2→2 operator norm of
    the Jacobian (anything else raises :class:`InvalidQueryError`).
    ``local=True``: slope bounds from the forward bounds over ``region``
    (``bounds``: ``"interval"``, ``"linear"``, ``"lp"``, or precomputed
    :class:`~lipmip.bounds.Bounds`), fixed box coordinates not varied;
    ``local=False``: every ReLU in [0, 1], a bound valid for every region.
    ``variant``: ``"neuron"`` (a multiplier per neuron, default) or
    ``"layer"`` (one per layer, looser). ``solver``: ``"clarabel"`` or
    ``"scs"`` (through cvxpy), ``"barrier"`` (lipmip's log-barrier method
    for this LMI, whose Newton steps exploit the rank-two multiplier terms),
    or ``"auto"``: Clarabel when the LMI's largest dense block has at most
    :data:`CLARABEL_AUTO_BLOCK` rows, the barrier solver otherwise, each
    falling back on the other, then on SCS. ``time_limit``: seconds per
    solver run (a barrier run stopped by it still certifies its last,
    strictly feasible, iterate).

    Guarantee: ``upper`` is proven in float64 (see the module docstring);
    the solver's own value is reported in ``details`` only. ``upper`` is
    None, with ``details["reason"]``, when no bound could be proven.
    """
    start = time.perf_counter()
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__} (use lipmip.load to read a model)")
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    region = as_region(region)
    region.check_network(net)
    query.check_network(net)
    _check_query(query)
    variant = _check_choice(variant, VARIANTS, "variant")
    solver = _check_choice(solver, SOLVERS, "solver")
    if not isinstance(local, bool):
        raise InvalidQueryError(f"local must be True or False, got {local!r}")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))
                                   or not time_limit > 0):
        raise InvalidQueryError(f"time_limit must be a positive number of seconds, got {time_limit!r}")

    forward = None
    if local:
        forward = compute(net, region, bounds) if isinstance(bounds, str) else bounds
        if not isinstance(forward, Bounds) or forward.net.widths != net.widths:
            raise InvalidQueryError("bounds must be a bound method name or Bounds computed for this network's shape")
        free = free_coordinates(region)
    else:
        free = np.ones(net.input_dim, dtype=bool)
    full = _build_chain(net, _slope_masks(net, forward), free, query.c)
    chain, scale = _normalised(_without_idle_neurons(full))
    details: dict[str, Any] = {
        "scope": "local" if local else "global (valid for every region)",
        "variant": variant,
        "free_neurons": full.free_neurons,
        "idle_neurons": full.free_neurons - chain.free_neurons,
        "fixed_neurons": net.num_relus - full.free_neurons if local else 0,
        "free_inputs": chain.n_x,
        "lmi_size": chain.dim,
        "caveat": CAVEAT,
    }
    if forward is not None:
        details["forward_bounds"] = forward.method

    def result(upper: float | None, status: str = "", **extra: Any) -> LipschitzBound:
        return LipschitzBound(
            lower=None, upper=upper, method="lipsdp", seconds=time.perf_counter() - start, query=query.to_dict(),
            region=region.to_dict(), details={**details, **extra}, **({"status": status} if status else {}),
        )

    if not _depends_on_input(chain):
        return result(0.0, note="no path of nonzero weights leads from a free input to the queried output: L = 0")
    if chain.free_neurons == 0:
        cert = _certify(chain, np.zeros(0))
        if cert.rho is None:
            return result(None, "not_certified", reason=cert.reason)
        upper = _scaled_up(cert.rho, scale)
        return result(upper, solver=None, certified_value=upper, certify_attempts=cert.attempts,
                      note="no free neuron: the query is linear over the region and rho = ||Y||^2 needs no SDP")

    data = _reduced(chain)
    clique = data.largest_clique()
    details.update(sdp_size=data.dim, largest_dense_block=clique)
    attempts: list[dict] = []
    for name in _solver_order(solver, clique):
        best = _best_certificate(chain, data, variant, name, time_limit, attempts)
        if best is not None:
            sol, cert, strictness = best
            upper = _scaled_up(cert.rho, scale)
            solver_value = math.sqrt(max(sol.rho, 0.0)) * scale if sol.rho is not None else None
            return result(
                upper,
                solver=name,
                solver_status=sol.status,
                solver_value=solver_value,
                certified_value=upper,
                certified_over_solver=None if not solver_value else upper / solver_value,
                solve_seconds=sum(a["seconds"] for a in attempts),
                certify_attempts=cert.attempts,
                strictness=strictness,
                attempts=attempts,
            )
        if any(a["solver"] == name and a["status"] not in _NO_ANSWER for a in attempts):
            break  # the solver answered: another one would not certify more from the same LMI, or spend the time again
    failures = "; ".join(
        f"{a['solver']}: {a['status']}" + (f" ({a['message']})" if a.get("message") else "")
        + (f" - {a['reason']}" if a.get("reason") else "") for a in attempts
    )
    if all(a["status"] == "solver_error" for a in attempts):
        raise SolverUnavailableError(f"LipSDP: every SDP solver failed: {failures}")
    status = "time_limit" if attempts[-1]["status"] == "user_limit" else "not_certified"
    return result(None, status, reason=f"no certified bound: {failures}", attempts=attempts)


def _scaled_up(rho: float, scale: float) -> float:
    """``sqrt(rho) · scale`` rounded up (the square root is correctly rounded; scale is a power of two)."""
    value = float(np.nextafter(math.sqrt(rho), math.inf))
    with np.errstate(over="ignore"):
        out = float(np.float64(value) * np.float64(scale))
    return float(np.nextafter(out, math.inf)) if 0 < out < np.finfo(np.float64).tiny else out

