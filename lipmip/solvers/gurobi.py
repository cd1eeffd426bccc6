"""The Gurobi backend (via gurobipy, the optional extra ``lipmip[gurobi]``).

gurobipy is imported only when this backend is used. The licence that ships
with the pip package is size-limited: Gurobi refuses (error 10010, "Model too
large for size-limited license") models with more than 2000 variables or 2000
linear constraints, and, once any quadratic term is present, more than 200
variables. That refusal is raised as :class:`LicenceSizeLimitError` (a
:class:`~lipmip.errors.SolverUnavailableError`) so that callers can fall back
to another solver with a one-line message.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lipmip.dependencies import optional_import
from lipmip.errors import MissingDependencyError, SolverUnavailableError
from lipmip.formulate.model import MIPModel
from lipmip.solvers.base import MIPResult, MIPSolver, Progress, SolveOptions

__all__ = [
    "GurobiSolver",
    "LicenceSizeLimitError",
    "SIZE_LIMITED_LICENCE",
    "gurobi_size",
]

# Gurobi's error code for "Model too large for size-limited license"
SIZE_LIMIT_ERROR_CODE = 10010
# seconds between progress reports from the MIP callback (new solutions always report)
_PROGRESS_INTERVAL = 1.0


@dataclass(frozen=True)
class SizeLimits:
    """The limits of Gurobi's size-limited (pip) licence."""

    variables: int = 2000
    linear_constraints: int = 2000
    quadratic_variables: int = 200   # the variable limit once any quadratic term is present


SIZE_LIMITED_LICENCE = SizeLimits()


class LicenceSizeLimitError(SolverUnavailableError):
    """Gurobi's size-limited licence refuses the model."""

    def __init__(self, num_variables: int, num_constraints: int, quadratic: bool) -> None:
        self.num_variables = num_variables
        self.num_constraints = num_constraints
        self.quadratic = quadratic
        limits = SIZE_LIMITED_LICENCE
        var_limit = limits.quadratic_variables if quadratic else limits.variables
        kind = "quadratic model" if quadratic else "model"
        super().__init__(
            f"gurobi: size-limited licence (at most {var_limit} variables and {limits.linear_constraints} "
            f"linear constraints), {kind} has {num_variables} variables and {num_constraints} linear constraints"
        )


@dataclass(frozen=True)
class GurobiSize:
    """How big a :class:`MIPModel` is once given to Gurobi."""

    variables: int
    linear_constraints: int
    quadratic: bool

    def within(self, limits: SizeLimits) -> bool:
        var_limit = limits.quadratic_variables if self.quadratic else limits.variables
        return self.variables <= var_limit and self.linear_constraints <= limits.linear_constraints


def gurobi_size(model: MIPModel) -> GurobiSize:
    """The model's size as Gurobi counts it (a ranged row becomes two constraints,
    a free row none)."""
    lo, hi = model.row_lo, model.row_hi
    finite_lo, finite_hi = np.isfinite(lo), np.isfinite(hi)
    ranged = finite_lo & finite_hi & (lo != hi)
    rows = int(np.count_nonzero(finite_lo | finite_hi) + np.count_nonzero(ranged))
    return GurobiSize(model.num_variables, rows, not model.is_linear)


def _gurobipy() -> Any:
    return optional_import("gurobipy", "the Gurobi solver")


@functools.cache
def _licence_probe() -> tuple[str | None, bool]:
    """``(reason Gurobi cannot be used or None, whether the licence is size-limited)``,
    found once per process by optimising two tiny models."""
    try:
        gp = _gurobipy()
    except MissingDependencyError as exc:
        return str(exc), False
    try:
        with gp.Env(params={"OutputFlag": 0}) as env:
            _optimise_probe(gp, env, 1)
            try:
                _optimise_probe(gp, env, SIZE_LIMITED_LICENCE.variables + 1)
            except gp.GurobiError as exc:
                if getattr(exc, "errno", None) == SIZE_LIMIT_ERROR_CODE:
                    return None, True
                raise
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        return f"gurobipy is installed but cannot solve (no valid licence?): {exc}", False
    return None, False


def _optimise_probe(gp: Any, env: Any, n: int) -> None:
    with gp.Model(env=env) as m:
        x = m.addMVar(n, lb=0.0, ub=1.0)
        m.setObjective(x.sum(), gp.GRB.MAXIMIZE)
        m.optimize()


class _Callback:
    """The gurobipy callback: reports ``(seconds, incumbent, bound)`` on new
    solutions and, at most once a second, during the MIP search; :meth:`final`
    reports once more when the solve has ended."""

    def __init__(self, gp: Any, progress: Progress) -> None:
        self.gp = gp
        self.progress = progress
        self.error: BaseException | None = None
        self._last = -math.inf

    def __call__(self, model: Any, where: int) -> None:
        GRB = self.gp.GRB
        if self.error is not None or where not in (GRB.Callback.MIP, GRB.Callback.MIPSOL):
            return
        try:
            now = model.cbGet(GRB.Callback.RUNTIME)
            if where == GRB.Callback.MIP:
                if now - self._last < _PROGRESS_INTERVAL:
                    return
                best, bound = model.cbGet(GRB.Callback.MIP_OBJBST), model.cbGet(GRB.Callback.MIP_OBJBND)
            else:
                best = max(model.cbGet(GRB.Callback.MIPSOL_OBJBST), model.cbGet(GRB.Callback.MIPSOL_OBJ))
                bound = model.cbGet(GRB.Callback.MIPSOL_OBJBND)
            self._last = now
            self.progress(float(now), _finite(best), _finite(bound))
        except Exception as exc:  # noqa: BLE001 - reported as the solve's error
            self.error = exc
            model.terminate()


    def final(self, model: Any) -> None:
        """The last report, once the solve has ended."""
        if self.error is not None:
            return
        try:
            best = _attr(model, "ObjVal") if model.SolCount > 0 else None
            bound = _attr(model, "ObjBound")
            self.progress(float(model.Runtime), best, None if bound is None else _finite(bound))
        except Exception as exc:  # noqa: BLE001 - reported as the solve's error
            self.error = exc


def _finite(value: float) -> float | None:
    return None if abs(value) >= 1e100 else float(value)


#: Gurobi's tightest tolerances (its defaults: feasibility and optimality
#: 1e-6, integrality 1e-5): the certified upper bound is the solver's bound
#: widened by its tolerances (:func:`~lipmip.formulate.lipschitz.certified_upper`).
DEFAULT_PARAMS: dict[str, float] = {"FeasibilityTol": 1e-9, "IntFeasTol": 1e-9, "OptimalityTol": 1e-9}


class GurobiSolver(MIPSolver):
    """Gurobi via gurobipy: linear and quadratic (also nonconvex) models.

    ``params`` are extra Gurobi parameters (e.g. ``{"NodeLimit": 1}``) set after
    the ones derived from :class:`SolveOptions` and lipmip's defaults
    (:data:`DEFAULT_PARAMS`), so they win.
    """

    name = "gurobi"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})

    @classmethod
    def available(cls) -> bool:
        return _licence_probe()[0] is None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why Gurobi cannot be used here (not installed, not licensed), or None."""
        return _licence_probe()[0]

    @classmethod
    def size_limited(cls) -> bool:
        """Whether the licence is the size-limited one of the pip package."""
        return _licence_probe()[1]

    @classmethod
    def fits_licence(cls, model: MIPModel) -> bool:
        """Whether the licence accepts the model (always, unless size-limited)."""
        return not cls.size_limited() or gurobi_size(model).within(SIZE_LIMITED_LICENCE)

    @classmethod
    def check_licence(cls, model: MIPModel) -> None:
        """Raise :class:`LicenceSizeLimitError` when the licence refuses the model."""
        if not cls.fits_licence(model):
            raise _size_error(model)

    def supports(self, model: MIPModel) -> bool:
        return True

    def solve(self, model: MIPModel, options: SolveOptions) -> MIPResult:
        reason = self.unavailable_reason()
        if reason is not None:
            raise SolverUnavailableError(f"gurobi: {reason}")
        self.check_licence(model)
        start = time.perf_counter()
        gp = _gurobipy()
        try:
            return self._solve(gp, model, options, start)
        except gp.GurobiError as exc:
            if getattr(exc, "errno", None) == SIZE_LIMIT_ERROR_CODE:
                raise _size_error(model) from None
            return MIPResult.error("gurobi", f"GurobiError {getattr(exc, 'errno', '')}: {exc}", start)
        except Exception as exc:  # noqa: BLE001 - no solver failure escapes
            return MIPResult.error("gurobi", f"{type(exc).__name__}: {exc}", start)

    def _solve(self, gp: Any, model: MIPModel, options: SolveOptions, start: float) -> MIPResult:
        with gp.Env(params={"OutputFlag": 0}) as env, gp.Model("lipmip", env=env) as m:
            x = _build(gp, m, model)
            self._set_parameters(m, model, options)
            if options.warm_start is not None:
                x.Start = _start_values(model, options.warm_start)
            callback = _Callback(gp, options.progress) if options.progress is not None else None
            m.optimize(callback)
            if callback is not None:
                callback.final(m)
            if callback is not None and callback.error is not None:
                err = callback.error
                return MIPResult.error("gurobi", f"progress callback raised {type(err).__name__}: {err}", start)
            return _result(gp, m, x, start)

    def _set_parameters(self, m: Any, model: MIPModel, options: SolveOptions) -> None:
        if options.time_limit is not None:
            m.Params.TimeLimit = max(0.0, float(options.time_limit))
        m.Params.Threads = max(0, int(options.threads))
        m.Params.MIPGap = max(0.0, float(options.mip_gap))
        m.Params.Seed = int(options.seed) % 2_000_000_000
        if not model.is_linear:
            m.Params.NonConvex = 2
        for key, value in {**DEFAULT_PARAMS, **self.params}.items():
            m.setParam(key, value)


def _size_error(model: MIPModel) -> LicenceSizeLimitError:
    size = gurobi_size(model)
    return LicenceSizeLimitError(size.variables, size.linear_constraints, size.quadratic)


def _padded(Q: sp.spmatrix, n: int) -> sp.csr_matrix:
    Q = sp.coo_matrix(Q)
    return sp.csr_matrix((Q.data, (Q.row, Q.col)), shape=(n, n))


def _build(gp: Any, m: Any, model: MIPModel) -> Any:
    """Variables, rows, quadratic constraints and objective of ``model`` in ``m``;
    returns the MVar of the variables."""
    GRB = gp.GRB
    n = model.num_variables
    vtype = np.where(model.integer, GRB.INTEGER, GRB.CONTINUOUS)
    x = m.addMVar(n, lb=model.lb, ub=model.ub, vtype=vtype)
    _add_rows(GRB, m, x, model)
    for qc in model.quadratic_constraints:
        a = np.zeros(n)
        a[: qc.a.size] = qc.a
        Q = _padded(qc.Q, n)
        for sense, rhs in ((GRB.GREATER_EQUAL, qc.lo), (GRB.LESS_EQUAL, qc.hi)):
            if math.isfinite(rhs):
                m.addMQConstr(Q, a, sense, float(rhs), x, x, x)
    Q = model.objective_quadratic
    Q = _padded(Q, n) if Q is not None else None
    m.setMObjective(Q, model.linear_objective, float(model.objective_constant), x, x, x, GRB.MAXIMIZE)
    return x


def _add_rows(GRB: Any, m: Any, x: Any, model: MIPModel) -> None:
    """``lo <= A x <= hi`` as ``=`` rows, ``>=`` rows and ``<=`` rows."""
    A, lo, hi = model.A, model.row_lo, model.row_hi
    equal = np.isfinite(lo) & (lo == hi)
    for sense, mask, rhs in (
        (GRB.EQUAL, equal, lo),
        (GRB.GREATER_EQUAL, np.isfinite(lo) & ~equal, lo),
        (GRB.LESS_EQUAL, np.isfinite(hi) & ~equal, hi),
    ):
        if np.any(mask):
            m.addMConstr(A[mask], x, sense, rhs[mask])


def _start_values(model: MIPModel, x0: np.ndarray) -> np.ndarray:
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    if x0.size != model.num_variables:
        raise ValueError(f"warm start has {x0.size} values, the model {model.num_variables} variables")
    return np.clip(x0, model.lb, model.ub)


_STATUS = {
    "OPTIMAL": "optimal",
    "TIME_LIMIT": "time_limit",
    "NODE_LIMIT": "time_limit",
    "SOLUTION_LIMIT": "time_limit",
    "ITERATION_LIMIT": "time_limit",
    "WORK_LIMIT": "time_limit",
    "MEM_LIMIT": "time_limit",
    "USER_OBJ_LIMIT": "time_limit",
    "INFEASIBLE": "infeasible",
    "INF_OR_UNBD": "infeasible",   # every variable is bounded, so never unbounded
}


def _status_name(gp: Any, code: int) -> str:
    for name in dir(gp.GRB.Status):
        if not name.startswith("_") and getattr(gp.GRB.Status, name) == code:
            return name
    return str(code)


def _attr(m: Any, name: str) -> float | None:
    """A numeric model attribute, or None where Gurobi has none (e.g. ObjBound of an LP)."""
    try:
        return float(getattr(m, name))
    except Exception:  # noqa: BLE001 - gurobipy raises for unavailable attributes
        return None


def _result(gp: Any, m: Any, x: Any, start: float) -> MIPResult:
    gurobi_status = _status_name(gp, m.Status)
    status = _STATUS.get(gurobi_status, "error")
    values = incumbent = None
    if m.SolCount > 0:
        values = np.asarray(x.X, dtype=np.float64).reshape(-1)
        incumbent = float(m.ObjVal)
    bound = _bound(m, status, incumbent)
    message = "" if status == "optimal" or gurobi_status in ("TIME_LIMIT", "INFEASIBLE") else f"Gurobi status {gurobi_status}"
    return MIPResult(
        solver="gurobi",
        status=status,
        best_bound=bound,
        incumbent=incumbent,
        x=values,
        seconds=time.perf_counter() - start,
        nodes=int(_attr(m, "NodeCount") or 0),
        tolerances={
            "feasibility": float(m.Params.FeasibilityTol),
            "integrality": float(m.Params.IntFeasTol),
            "optimality": float(m.Params.OptimalityTol),
            "relative_gap": float(m.Params.MIPGap),
        },
        message=message,
    )


def _bound(m: Any, status: str, incumbent: float | None) -> float:
    """Gurobi's ObjBound (for an LP, which has none: its optimal value)."""
    if status == "infeasible":
        return -math.inf
    if status == "error":
        return math.inf
    bound = _attr(m, "ObjBound")
    if bound is None:
        bound = incumbent if status == "optimal" else None
    if bound is None or abs(bound) >= 1e100:
        return math.inf
    return bound if incumbent is None else max(bound, incumbent)

