"""The protocol every MIP backend implements, and its result."""

from __future__ import annotations

import abc
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from lipmip.errors import InvalidQueryError
from lipmip.formulate.model import MIPModel

__all__ = ["MIPResult", "MIPSolver", "SolveOptions", "Progress", "keep_larger_bound"]

BOUNDS_AGREE = 1e-5  # relative difference of two solvers' bounds on one model taken as tolerance noise

# progress callback: (seconds, incumbent or None, best bound or None)
Progress = Callable[[float, float | None, float | None], None]


@dataclass(frozen=True)
class SolveOptions:
    time_limit: float | None = None
    threads: int = 1
    mip_gap: float = 1e-9          # relative gap at which the solver may stop
    seed: int = 0
    warm_start: np.ndarray | None = None   # a full assignment of the model's variables
    progress: Progress | None = None

    def __post_init__(self) -> None:
        """Refuse values a backend would misread (HiGHS rejects a negative gap and
        the solve ends in status ``error``; ``int()`` would truncate 1.5 threads)."""
        if self.time_limit is not None and not _number(self.time_limit, minimum=0.0, finite=False):
            raise InvalidQueryError(f"time_limit must be None or a number of seconds >= 0, got {self.time_limit!r}")
        if not _integer(self.threads, minimum=0):
            raise InvalidQueryError(f"threads must be an integer >= 0 (0: the solver's choice), got {self.threads!r}")
        if not _number(self.mip_gap, minimum=0.0, finite=True):
            raise InvalidQueryError(f"mip_gap must be a finite number >= 0, got {self.mip_gap!r}")
        if not _integer(self.seed, minimum=None):
            raise InvalidQueryError(f"seed must be an integer, got {self.seed!r}")


def _number(value: object, *, minimum: float, finite: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    v = float(value)
    return not math.isnan(v) and v >= minimum and (math.isfinite(v) or not finite)


def _integer(value: object, *, minimum: int | None) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return minimum is None or int(value) >= minimum


@dataclass(frozen=True, eq=False)
class MIPResult:
    """What a backend found, in the model's own terms (a maximisation).

    ``best_bound`` is the solver's proven bound on the optimum (its "dual
    bound"), ``incumbent`` its best feasible objective value and ``x`` that
    point (``None`` when none was found). ``status`` is one of ``optimal``,
    ``time_limit``, ``infeasible``, ``error``. ``tolerances`` records the
    feasibility / integrality tolerances the solver ran with, so callers can
    widen the bound by them.
    """

    solver: str
    status: str
    best_bound: float
    incumbent: float | None
    x: np.ndarray | None
    seconds: float
    nodes: int = 0
    tolerances: dict = field(default_factory=dict)
    message: str = ""

    @classmethod
    def error(cls, solver: str, message: str, start: float) -> "MIPResult":
        """A failed solve begun at ``start`` (``time.perf_counter()``): status
        ``error``, no incumbent, an infinite (useless) bound."""
        return cls(solver=solver, status="error", best_bound=float("inf"), incumbent=None, x=None,
                   seconds=time.perf_counter() - start, message=message)

    @property
    def gap(self) -> float:
        if self.incumbent is None:
            return float("inf")
        return (self.best_bound - self.incumbent) / max(1.0, abs(self.best_bound))


def keep_larger_bound(first: MIPResult, second: MIPResult, *, check: str, solver: str | None = None) -> MIPResult:
    """``first``, an optimal result, checked by ``second``, a solve of the
    same model by another solver or with other settings (``check`` names it
    in the message). A wrong bound is too small, so the larger of the two
    bounds is kept, with the better incumbent. The status is ``first``'s when
    the bounds agree to ``BOUNDS_AGREE·max(1, |bound|)`` (tolerance noise),
    otherwise that of the run with the larger bound. A failed check leaves
    ``first``'s bound and says so. Seconds and nodes are the totals;
    tolerances the larger of each. ``solver`` names the result (default
    ``first.solver``)."""
    seconds, nodes = first.seconds + second.seconds, first.nodes + second.nodes
    if second.status not in ("optimal", "time_limit") or not math.isfinite(second.best_bound):
        return replace(first, seconds=seconds, nodes=nodes,
                       message=f"{first.message}; {check} failed ({second.status}: {second.message})")
    agree = abs(first.best_bound - second.best_bound) <= BOUNDS_AGREE * max(1.0, abs(first.best_bound))
    larger = first if first.best_bound >= second.best_bound else second
    best = max((r for r in (first, second) if r.incumbent is not None), key=lambda r: r.incumbent, default=first)
    tolerances = {k: max(float(first.tolerances.get(k, 0.0)), float(second.tolerances.get(k, 0.0)))
                  for k in {**first.tolerances, **second.tolerances}}
    note = "agrees" if agree else "disagrees; the larger bound is kept"
    return MIPResult(solver=solver or first.solver, status=first.status if agree else larger.status,
                     best_bound=larger.best_bound, incumbent=best.incumbent, x=best.x, seconds=seconds, nodes=nodes,
                     tolerances=tolerances,
                     message=f"{first.message}; {check} {note} (bound {second.best_bound!r}, {second.status})")


class MIPSolver(abc.ABC):
    """A backend: ``available()`` says whether it can run here (installed,
    licensed); ``solve`` solves a :class:`MIPModel`."""

    name: str

    @classmethod
    @abc.abstractmethod
    def available(cls) -> bool:
        """True when the backend's package imports (and, for Gurobi, is licensed)."""

    @abc.abstractmethod
    def supports(self, model: MIPModel) -> bool:
        """Whether this backend can solve the model (e.g. HiGHS: linear only)."""

    @abc.abstractmethod
    def solve(self, model: MIPModel, options: SolveOptions) -> MIPResult:
        """Solve; never raises for solver-side failures (they give status ``error``
        with a message), only :class:`~lipmip.errors.SolverUnavailableError`
        when the backend cannot be used at all."""
