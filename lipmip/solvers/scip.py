"""The SCIP backend (via pyscipopt, a core dependency of lipmip).

SCIP solves both the mixed-integer linear programs and the mixed-integer
quadratic ones lipmip builds. SCIP wants a linear objective, so a quadratic
objective ``cᵀx + xᵀQx`` is moved into a constraint: a new variable ``t``
with ``t <= xᵀQx`` is maximised together with ``cᵀx``. When ``Q`` is not
negative semidefinite that constraint is nonconvex and SCIP handles it by
spatial branch and bound; ``t`` gets a finite box from interval arithmetic
over the variable bounds, so the relaxation stays bounded.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from lipmip.formulate.model import MIPModel, QuadraticConstraint
from lipmip.solvers.base import MIPResult, MIPSolver, Progress, SolveOptions

__all__ = ["ScipSolver", "quadratic_range"]

# SCIP statuses that mean "stopped at a limit before proving optimality"
_LIMIT_STATUSES = {
    "timelimit",
    "nodelimit",
    "totalnodelimit",
    "stallnodelimit",
    "memlimit",
    "sollimit",
    "bestsollimit",
    "restartlimit",
    "primallimit",
    "duallimit",
}
# seconds between progress reports on solved nodes (best-solution events always report)
_PROGRESS_INTERVAL = 1.0


def _pyscipopt() -> Any:
    import pyscipopt

    return pyscipopt


def quadratic_range(Q: sp.spmatrix, lb: np.ndarray, ub: np.ndarray) -> tuple[float, float]:
    """Interval enclosure ``[lo, hi]`` of ``xᵀQx`` over the box ``lb <= x <= ub``
    (term by term; a square ``x_i²`` uses its exact range)."""
    Q = sp.coo_matrix(Q)
    i, j, q = Q.row, Q.col, Q.data
    corners = np.stack([lb[i] * lb[j], lb[i] * ub[j], ub[i] * lb[j], ub[i] * ub[j]])
    lo_term, hi_term = corners.min(axis=0), corners.max(axis=0)
    square = i == j
    straddles = square & (lb[i] < 0) & (ub[i] > 0)
    lo_term = np.where(straddles, 0.0, lo_term)
    lo = np.where(q >= 0, q * lo_term, q * hi_term)
    hi = np.where(q >= 0, q * hi_term, q * lo_term)
    return float(lo.sum()), float(hi.sum())


def _quadratic_terms(Q: sp.spmatrix, variables: list) -> dict:
    """``{Term: coefficient}`` for ``xᵀQx``, with ``Q[i, j]`` and ``Q[j, i]`` merged."""
    pyscipopt = _pyscipopt()
    Q = sp.coo_matrix(Q)
    merged: dict[tuple[int, int], float] = {}
    for i, j, q in zip(Q.row.tolist(), Q.col.tolist(), Q.data.tolist()):
        key = (i, j) if i <= j else (j, i)
        merged[key] = merged.get(key, 0.0) + q
    return {pyscipopt.scip.Term(variables[i], variables[j]): q for (i, j), q in merged.items() if q != 0.0}


def _padded(Q: sp.spmatrix, n: int) -> sp.coo_matrix:
    Q = sp.coo_matrix(Q)
    return sp.coo_matrix((Q.data, (Q.row, Q.col)), shape=(n, n))


def _side(value: float) -> float | None:
    """A constraint side for pyscipopt: ``None`` for an infinite one."""
    return None if math.isinf(value) else float(value)


class _ProgressReporter:
    """Builds the pyscipopt event handler that reports ``(seconds, incumbent,
    bound)`` on every new best solution and, at most once a second, on solved
    nodes; the solve reports once more when it ends. A callback that raises
    interrupts the solve; the error is kept."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.error: BaseException | None = None
        self._last = -math.inf

    def handler(self) -> Any:
        pyscipopt = _pyscipopt()
        reporter = self

        class _Handler(pyscipopt.Eventhdlr):
            def eventinit(self) -> None:
                self.model.catchEvent(pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND, self)
                self.model.catchEvent(pyscipopt.SCIP_EVENTTYPE.NODESOLVED, self)

            def eventexec(self, event: Any) -> None:
                reporter.report(self.model, event.getType() == pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND)

        return _Handler()

    def report(self, scip: Any, new_solution: bool, *, final: bool = False) -> None:
        """Report now (on a new solution, at the end, or a second after the last report)."""
        if self.error is not None:
            return
        try:
            now = scip.getSolvingTime()
            if not (new_solution or final) and now - self._last < _PROGRESS_INTERVAL:
                return
            self._last = now
            incumbent = _finite(scip.getPrimalbound(), scip) if scip.getNSols() > 0 else None
            self.progress(now, incumbent, _finite(scip.getDualbound(), scip))
        except Exception as exc:  # noqa: BLE001 - reported as the solve's error
            self.error = exc
            if not final:
                scip.interruptSolve()


def _finite(value: float, scip: Any) -> float | None:
    """A SCIP value, with SCIP's 'infinity' turned into ``None``."""
    return None if scip.isInfinity(abs(value)) else float(value)


class _Built:
    """A MIPModel translated into a pyscipopt model."""

    def __init__(self, model: MIPModel) -> None:
        pyscipopt = _pyscipopt()
        self.model = model
        self.scip = pyscipopt.Model("lipmip")
        self.scip.hideOutput()
        self.x = self._add_variables()
        self.unit_terms = [pyscipopt.scip.Term(v) for v in self.x]
        self.t = None
        self._add_rows()
        for k, qc in enumerate(model.quadratic_constraints):
            self._add_quadratic_constraint(qc, f"qc{k}")
        self._add_quadratic_objective()
        if model.objective_constant:
            self.scip.addObjoffset(float(model.objective_constant))
        self.scip.setMaximize()

    def _add_variables(self) -> list:
        m = self.model
        c = m.linear_objective
        vtypes = np.where(m.integer, "I", "C").tolist()
        return [
            self.scip.addVar(name=f"x{j}", vtype=vtypes[j], lb=float(m.lb[j]), ub=float(m.ub[j]), obj=float(c[j]))
            for j in range(m.num_variables)
        ]

    def _linear_terms(self, cols: np.ndarray, coefs: np.ndarray) -> dict:
        return {self.unit_terms[j]: float(a) for j, a in zip(cols.tolist(), coefs.tolist()) if a != 0.0}

    def _add_rows(self) -> None:
        pyscipopt = _pyscipopt()
        A, lo, hi = self.model.A, self.model.row_lo, self.model.row_hi
        for r in range(A.shape[0]):
            if math.isinf(lo[r]) and math.isinf(hi[r]):
                continue
            start, end = A.indptr[r], A.indptr[r + 1]
            expr = pyscipopt.Expr(self._linear_terms(A.indices[start:end], A.data[start:end]))
            self.scip.addCons(pyscipopt.ExprCons(expr, lhs=_side(lo[r]), rhs=_side(hi[r])), name=f"r{r}")

    def _add_quadratic_constraint(self, qc: QuadraticConstraint, name: str) -> None:
        pyscipopt = _pyscipopt()
        n = self.model.num_variables
        terms = _quadratic_terms(_padded(qc.Q, n), self.x)
        a = np.zeros(n)
        a[: qc.a.size] = qc.a
        nz = np.flatnonzero(a)
        terms.update(self._linear_terms(nz, a[nz]))
        expr = pyscipopt.Expr(terms)
        self.scip.addCons(pyscipopt.ExprCons(expr, lhs=_side(qc.lo), rhs=_side(qc.hi)), name=name)

    def _add_quadratic_objective(self) -> None:
        """Maximise ``t`` with ``t <= xᵀQx`` (``t`` boxed by interval arithmetic)."""
        Q = self.model.objective_quadratic
        if Q is None or sp.csr_matrix(Q).nnz == 0:
            return
        pyscipopt = _pyscipopt()
        Q = _padded(Q, self.model.num_variables)
        lo, hi = quadratic_range(Q, self.model.lb, self.model.ub)
        self.t = self.scip.addVar(name="objective_quadratic", vtype="C", lb=lo, ub=hi, obj=1.0)
        terms = _quadratic_terms(Q, self.x)
        terms[pyscipopt.scip.Term(self.t)] = -1.0
        self.scip.addCons(pyscipopt.ExprCons(pyscipopt.Expr(terms), lhs=0.0), name="objective_quadratic")

    def quadratic_part(self, x: np.ndarray) -> float:
        Q = _padded(self.model.objective_quadratic, self.model.num_variables).tocsr()
        return float(x @ (Q @ x))

    def add_warm_start(self, x0: np.ndarray) -> bool:
        """Offer ``x0`` as a solution: stored when feasible (checked here, as SCIP
        cannot check solutions before the solve starts), otherwise given to
        SCIP as a partial solution to repair. True when stored."""
        x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
        if x0.size != self.model.num_variables:
            raise ValueError(f"warm start has {x0.size} values, the model {self.model.num_variables} variables")
        x0 = np.clip(x0, self.model.lb, self.model.ub)
        x0 = np.where(self.model.integer, np.round(x0), x0)
        if self.model.max_violation(x0) <= float(self.scip.getParam("numerics/feastol")):
            sol = self.scip.createSol()
            self._set_values(sol, x0)
            if self.scip.addSol(sol):
                return True
        partial = self.scip.createPartialSol()
        self._set_values(partial, x0, with_t=False)
        self.scip.addSol(partial)
        return False

    def _set_values(self, sol: Any, x0: np.ndarray, *, with_t: bool = True) -> None:
        for var, value in zip(self.x, x0.tolist()):
            self.scip.setSolVal(sol, var, value)
        if with_t and self.t is not None:
            t_value = min(max(self.quadratic_part(x0), self.t.getLbOriginal()), self.t.getUbOriginal())
            self.scip.setSolVal(sol, self.t, t_value)


#: Tolerances tighter than SCIP's (feastol 1e-6, dualfeastol 1e-7, epsilon
#: 1e-9): the certified upper bound is the solver's bound widened by its
#: tolerances propagated through the backward pass
#: (:func:`~lipmip.formulate.lipschitz.certified_upper`); with SCIP's defaults
#: that widening is 1e-3 relative on the demo network, with 1e-10 1e-7.
#: But not 1e-10: SoPlex (no GMP) cannot go below 1e-10 for the LP
#: tolerances SCIP derives from feastol, and at feastol 1e-10 SCIP reported a
#: wrong "optimal" value (18% low) on a small Lipschitz MILP with large
#: weights (tests/test_mip_oracle.py::test_regression_scip_wrong_optimum_at_tight_tolerance),
#: and ended with "error in LP solver" more often; at 1e-9 it is right, and faster.
#: Weak dual reductions are off: with a warm start and any feastol below 1e-6,
#: SCIP (pyscipopt 6.3) declared the warm start of a small Lipschitz MIQCP
#: optimal at the root, 1.8% below the true optimum (any of 20 warm starts, any
#: seed; tests/test_mip_oracle.py::test_regression_scip_warm_start_declared_optimal).
#: Without weak dual reductions it solves that model right every time.
DEFAULT_PARAMS: dict[str, float | bool] = {"numerics/epsilon": 1e-11, "numerics/feastol": 1e-9,
                                           "numerics/dualfeastol": 1e-9, "misc/allowweakdualreds": False}


_SOPLEX_NOTE = b"without GMP - using"  # "Cannot set feasibility tolerance to small value 1e-13 without GMP - using 1e-10."


@contextlib.contextmanager
def _without_soplex_tolerance_notes() -> Iterator[None]:
    """Hold back SoPlex's notes about tolerances it cannot honour.

    With feastol 1e-10, SCIP asks its LP solver for 1e-13 when it re-solves
    an LP with tightened tolerances; SoPlex (built without GMP) uses 1e-10
    and says so on file descriptor 2, outside SCIP's message handler, so
    ``hideOutput`` does not silence it. During the solve, descriptor 2 goes
    to a temporary file; afterwards every other line written there is
    passed on to stderr, so genuine messages are delayed, never lost.
    (A process-wide redirection: :class:`lipmip.progress.SolveProgress`
    writes to its own duplicate of the terminal, unaffected.)
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True) if _SOPLEX_NOTE not in line)
            if kept:
                os.write(2, kept)


class ScipSolver(MIPSolver):
    """SCIP via pyscipopt: linear and quadratic (also nonconvex) models.

    ``params`` are extra SCIP parameters (e.g. ``{"limits/nodes": 1}``) set
    after the ones derived from :class:`SolveOptions` and lipmip's defaults
    (:data:`DEFAULT_PARAMS`), so they win. SCIP runs on one thread, so
    ``SolveOptions.threads`` is ignored.
    """

    name = "scip"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})

    @classmethod
    def available(cls) -> bool:
        try:
            _pyscipopt()
        except ImportError:
            return False
        return True

    def supports(self, model: MIPModel) -> bool:
        return True

    def solve(self, model: MIPModel, options: SolveOptions) -> MIPResult:
        start = time.perf_counter()
        try:
            return self._solve(model, options, start)
        except Exception as exc:  # noqa: BLE001 - no solver failure escapes
            return MIPResult.error("scip", f"{type(exc).__name__}: {exc}", start)

    def _solve(self, model: MIPModel, options: SolveOptions, start: float) -> MIPResult:
        built = _Built(model)
        scip = built.scip
        self._set_parameters(scip, options)
        warm_message = ""
        if options.warm_start is not None:
            if not built.add_warm_start(options.warm_start):
                warm_message = "warm start was not feasible as given; passed to SCIP as a partial solution"
        reporter = None
        if options.progress is not None:
            reporter = _ProgressReporter(options.progress)
            scip.includeEventhdlr(reporter.handler(), "lipmip_progress", "reports progress to lipmip")
        with _without_soplex_tolerance_notes():
            scip.optimize()
        if reporter is not None:
            reporter.report(scip, False, final=True)
        if reporter is not None and reporter.error is not None:
            return MIPResult.error("scip", f"progress callback raised {type(reporter.error).__name__}: {reporter.error}", start)
        return _result(built, start, warm_message)

    def _set_parameters(self, scip: Any, options: SolveOptions) -> None:
        if options.time_limit is not None:
            scip.setParam("limits/time", max(0.0, float(options.time_limit)))
        scip.setParam("limits/gap", max(0.0, float(options.mip_gap)))
        scip.setParam("randomization/randomseedshift", int(options.seed) % (2**31 - 1))
        for key, value in {**DEFAULT_PARAMS, **self.params}.items():
            scip.setParam(key, value)


def _tolerances(scip: Any) -> dict[str, float]:
    feastol = float(scip.getParam("numerics/feastol"))
    return {
        "feasibility": feastol,
        "integrality": feastol,  # SCIP checks integrality with the feasibility tolerance
        "optimality": float(scip.getParam("numerics/dualfeastol")),
        "epsilon": float(scip.getParam("numerics/epsilon")),
        "relative_gap": float(scip.getParam("limits/gap")),
    }


def _status(scip_status: str) -> str:
    if scip_status in ("optimal", "gaplimit"):
        return "optimal"
    if scip_status in _LIMIT_STATUSES:
        return "time_limit"
    if scip_status == "infeasible":
        return "infeasible"
    return "error"


def _result(built: _Built, start: float, message: str) -> MIPResult:
    scip = built.scip
    scip_status = scip.getStatus()
    status = _status(scip_status)
    x = incumbent = None
    if scip.getNSols() > 0:
        best = scip.getBestSol()
        x = np.array([scip.getSolVal(best, v) for v in built.x], dtype=np.float64)
        incumbent = float(scip.getSolObjVal(best))
    bound = _bound(scip, status, incumbent)
    notes = [message] if message else []
    if status != "optimal" and scip_status not in ("infeasible", "timelimit"):
        notes.append(f"SCIP stopped with status {scip_status!r}")
    return MIPResult(
        solver="scip",
        status=status,
        best_bound=bound,
        incumbent=incumbent,
        x=x,
        seconds=time.perf_counter() - start,
        nodes=int(scip.getNTotalNodes()),
        tolerances=_tolerances(scip),
        message="; ".join(notes),
    )


def _bound(scip: Any, status: str, incumbent: float | None) -> float:
    """The proven upper bound: SCIP's dual bound (``-inf`` for an infeasible
    model, ``+inf`` when nothing was proven)."""
    if status == "infeasible":
        return -math.inf
    bound = scip.getDualbound()
    if scip.isInfinity(bound):
        return math.inf
    if scip.isInfinity(-bound):
        return -math.inf if incumbent is None else float(incumbent)
    bound = float(bound)
    return bound if incumbent is None else max(bound, incumbent)

