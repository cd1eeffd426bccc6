"""The LipSDP SDP through cvxpy (Clarabel, SCS), and the order in which solvers are tried.

The SDP minimises ρ over the multipliers ``λ >= 0`` (one per neuron:
``variant="neuron"``; one per layer: ``variant="layer"``) subject to
``M(ρ, λ) ⪯ 0`` (:mod:`lipmip.lipsdp.chain`), in the reduced input
coordinates. Clarabel holds each dense block of width ``w`` of the
(chordally decomposed) LMI as a dense ``w(w+1)/2``-square matrix and factors
it at every iteration, so large LMIs go to lipmip's own log-barrier method
(:mod:`lipmip.lipsdp.barrier`) instead (:func:`solver_order`). A solver's
answer (:class:`Solution`) is never a bound: :mod:`lipmip.lipsdp.certificate`
proves one from its multipliers.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from lipmip.errors import SolverUnavailableError
from lipmip.lipsdp.chain import Reduced

__all__ = ["SOLVERS", "VARIANTS", "CLARABEL_AUTO_BLOCK", "CLARABEL_MAX_BLOCK", "Solution", "solve_with_cvxpy",
           "solver_order"]

SOLVERS = ("auto", "barrier", "clarabel", "scs")
VARIANTS = ("neuron", "layer")
CLARABEL_AUTO_BLOCK = 40  # "auto" uses Clarabel up to this largest dense LMI block (about a second), the barrier solver past it
CLARABEL_MAX_BLOCK = 110  # largest dense LMI block Clarabel is given at all (its per-iteration cost grows as the block's size⁶)


@dataclass(frozen=True)
class Solution:
    """A solver's answer: its ρ and multipliers ``λ`` (None when it gave none;
    neither is certified), its status, and how long it took."""

    rho: float | None
    lam: np.ndarray | None
    status: str
    solver: str
    seconds: float
    message: str = ""


def solve_with_cvxpy(data: Reduced, variant: str, solver: str, strictness: float, time_limit: float | None) -> Solution:
    """Minimise ρ subject to ``M(ρ, λ) + ε [0 0; 0 I] ⪯ 0``, ``λ >= 0`` (``ε``
    = ``strictness``), in the reduced input coordinates, by ``solver``
    (``"clarabel"`` or ``"scs"``) through cvxpy."""
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
        return Solution(None, None, "solver_error", solver, time.perf_counter() - start, str(exc).strip())
    seconds = time.perf_counter() - start
    lam = None if t.value is None else np.asarray(lam_expr.value, dtype=np.float64).reshape(-1)
    value = None if rho.value is None else float(rho.value)
    if lam is not None and not np.all(np.isfinite(lam)):
        lam = None
    return Solution(value, lam, str(problem.status), solver, seconds)


def solver_order(solver: str, clique: int) -> list[str]:
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
