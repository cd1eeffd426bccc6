"""The HiGHS backend (highspy): mixed-integer *linear* models only.

The model is handed over with :func:`lipmip.lp.highs_model` and solved as a
maximisation. What comes back is HiGHS's own account: ``best_bound`` is its
MIP dual bound (an upper bound on the optimum up to its tolerances, which
are reported in ``tolerances`` so that callers can widen it, e.g. with
:func:`lipmip.formulate.lipschitz.certified_upper`); ``incumbent``/``x`` its
best feasible point, when it found one.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from lipmip.errors import SolverUnavailableError
from lipmip.formulate.model import MIPModel
from lipmip.lp import highs_model, highspy_module
from lipmip.solvers.base import MIPResult, MIPSolver, SolveOptions, keep_larger_bound

__all__ = ["HighsSolver", "INTEGRALITY_TOLERANCE"]

# lipmip's name for each HiGHS tolerance (the names every backend reports in MIPResult.tolerances)
_TOLERANCES = {"feasibility": "primal_feasibility_tolerance", "integrality": "mip_feasibility_tolerance",
               "optimality": "dual_feasibility_tolerance"}
INTEGRALITY_TOLERANCE = 1e-9  # lipmip's default mip_feasibility_tolerance (HiGHS's is 1e-6)
FEASIBILITY_TOLERANCE = 1e-10  # lipmip's default primal and dual feasibility tolerances (HiGHS's are 1e-7)
_PROGRESS_EVERY = 0.5  # seconds between progress reports from the interrupt callback
_LIMITS = ("kTimeLimit", "kIterationLimit", "kSolutionLimit", "kInterrupt", "kHighsInterrupt", "kMemoryLimit",
           "kObjectiveBound", "kObjectiveTarget")


class HighsSolver(MIPSolver):
    """HiGHS as a :class:`~lipmip.solvers.base.MIPSolver`.

    ``highs_options`` are passed to HiGHS verbatim (e.g.
    ``mip_feasibility_tolerance=1e-6``, ``presolve="off"``) after the ones
    derived from :class:`SolveOptions`, so they win. Defaults that differ
    from HiGHS's: ``output_flag=False``, ``mip_feasibility_tolerance=1e-9``
    (HiGHS's 1e-6 lets a binary sit 1e-6 from 0 or 1, moving the reported
    optimum by 1e-6 times the big-Ms away from the value of the pattern it
    names) and primal and dual feasibility tolerances 1e-10 (HiGHS's 1e-7,
    propagated through the backward pass by
    :func:`~lipmip.formulate.lipschitz.certified_upper`, widens the certified
    upper bound of the demo network by 1e-4 relative; at 1e-10 it is 2e-7,
    at the same speed). ``confirm`` (default True): see :meth:`solve`.
    ``SolveOptions.mip_gap`` sets both ``mip_rel_gap`` and ``mip_abs_gap``,
    so "optimal" means best bound and incumbent within about
    ``mip_gap · max(1, |objective|)``.

    Stress runs on 10,000 random small Lipschitz MIPs (50,000 solves, the
    generators of tests/test_formulate.py) against exact values: HiGHS
    1.15.1 alone gave about one wrong "optimal" per 10,000 solves (off by up
    to a factor 6); with the confirmation run and the 1e-9 integrality
    tolerance, none.
    """

    name = "highs"

    def __init__(self, *, confirm: bool = True, **highs_options: Any):
        self.confirm = bool(confirm)
        self.highs_options = dict(highs_options)

    @classmethod
    def available(cls) -> bool:
        try:
            highspy_module()
        except SolverUnavailableError:
            return False
        return True

    def supports(self, model: MIPModel) -> bool:
        """Linear models only (no quadratic objective or constraints)."""
        return model.is_linear

    def solve(self, model: MIPModel, options: SolveOptions) -> MIPResult:
        """Maximise ``model``. Raises :class:`SolverUnavailableError` when
        highspy is missing or the model is quadratic; any failure inside
        HiGHS gives status ``error``. Exceptions raised by
        ``options.progress`` stop the solve and are re-raised.

        HiGHS 1.15 sometimes reports a wrong "optimal" value on these models
        (invalid cuts or presolve reductions cut the optimum off; in a stress
        run about one small Lipschitz MIP in 10,000, once by a factor of 6;
        see tests/test_formulate.py). Two defences, both heuristics that make
        such an error much less likely, not impossible:

        * self-check: a bound below the objective of a feasible point (the
          warm start, or HiGHS's own incumbent) is an error; the solve is
          repeated once with another seed, and if the contradiction remains
          the result has status ``error`` and an infinite bound;
        * confirmation (``confirm=True``, the default): an optimal MIP result
          is solved again with presolve off and another seed, warm-started
          from the first incumbent, within the time left, and the larger of
          the two bounds is kept (a wrong bound is too small). Costs a second
          solve; ``HighsSolver(confirm=False)`` skips it.
        """
        highspy = highspy_module()
        if not self.supports(model):
            raise SolverUnavailableError(
                "HiGHS solves linear models only; this model has a quadratic objective or quadratic constraints "
                "(an l2 norm): use the SCIP or Gurobi backend, or l2_region='outer' for an l2 ball"
            )
        n = model.num_variables
        if options.warm_start is not None and np.shape(options.warm_start) != (n,):
            raise ValueError(f"warm_start must have one entry per variable ({n}), got shape {np.shape(options.warm_start)}")
        start = time.perf_counter()
        first = self._checked(highspy, model, options, options.seed, {}, start)
        if not self.confirm or first.status != "optimal" or not np.any(model.integer):
            return first
        left = _time_left(options, start)
        if left is not None and left <= 0:
            return replace(first, message=f"{first.message}; not confirmed (no time left)")
        warm = first.x if first.x is not None else options.warm_start
        second_options = replace(options, time_limit=left, warm_start=warm)
        second = self._checked(highspy, model, second_options, options.seed + 1, {"presolve": "off"}, start)
        return keep_larger_bound(first, second, check="confirmation run (presolve off)")

    def _checked(self, highspy: Any, model: MIPModel, options: SolveOptions, seed: int, extra: dict,
                 start: float) -> MIPResult:
        """One solve with the self-check (and its one retry, with seed + 1)."""
        result = self._solve_once(highspy, model, options, seed, extra, start)
        problem = _contradiction(model, options.warm_start, result)
        if problem is None:
            return result
        left = _time_left(options, start)
        if left is None or left > 0:
            second = self._solve_once(highspy, model, replace(options, time_limit=left), seed + 1, extra, start)
            if _contradiction(model, options.warm_start, second) is None:
                return replace(second, seconds=result.seconds + second.seconds,
                               message=f"{second.message}; first solve discarded: {problem}")
        return replace(result, status="error", best_bound=math.inf, message=f"HiGHS contradicted itself: {problem}")

    def _solve_once(self, highspy: Any, model: MIPModel, options: SolveOptions, seed: int,
                    extra: dict | None = None, clock: float | None = None) -> MIPResult:
        """One HiGHS run; progress reports count seconds from ``clock``
        (default: now)."""
        start = time.perf_counter()
        h = highspy.Highs()
        failure: list[BaseException] = []
        try:
            self._configure(h, options, seed, extra or {})
            lp = highs_model(model.A, model.row_lo, model.row_hi, model.lb, model.ub, model.linear_objective,
                             model.integer)
            lp.offset_ = float(model.objective_constant)
            _check(h.passModel(lp), highspy, "passModel")
            h.changeObjectiveSense(highspy.ObjSense.kMaximize)
            if options.warm_start is not None:
                self._warm_start(h, highspy, np.asarray(options.warm_start, dtype=np.float64))
            if options.progress is not None:
                _subscribe_progress(h, options.progress, failure, start if clock is None else clock)
            _run(h, highspy)
        except Exception as exc:  # noqa: BLE001 - a solver-side failure becomes status "error"
            if failure:
                raise failure[0] from None
            return MIPResult.error(self.name, f"HiGHS failed: {exc}", start)
        if failure:
            raise failure[0]
        return self._result(h, highspy, model, time.perf_counter() - start)

    # ------------------------------------------------------------------ internals
    def _configure(self, h: Any, options: SolveOptions, seed: int, extra: dict) -> None:
        settings: dict[str, Any] = {
            "output_flag": False,
            "mip_rel_gap": float(options.mip_gap),
            "mip_abs_gap": float(options.mip_gap),
            "random_seed": int(seed) % 2147483647,
            "threads": int(options.threads),
            "mip_feasibility_tolerance": INTEGRALITY_TOLERANCE,
            "primal_feasibility_tolerance": FEASIBILITY_TOLERANCE,
            "dual_feasibility_tolerance": FEASIBILITY_TOLERANCE,
        }
        if options.time_limit is not None:
            settings["time_limit"] = max(float(options.time_limit), 1e-3)
        settings.update(self.highs_options)
        settings.update(extra)
        for key, value in settings.items():
            _check(h.setOptionValue(key, value), highspy_module(), f"option {key}={value!r}")

    @staticmethod
    def _warm_start(h: Any, highspy: Any, x: np.ndarray) -> None:
        sol = highspy.HighsSolution()
        sol.col_value = x
        sol.value_valid = True
        h.setSolution(sol)

    def _result(self, h: Any, highspy: Any, model: MIPModel, seconds: float) -> MIPResult:
        info = h.getInfo()
        status_enum = h.getModelStatus()
        status_name = getattr(status_enum, "name", str(status_enum))
        tolerances = {ours: _option(h, theirs) for ours, theirs in _TOLERANCES.items()}
        has_integers = bool(np.any(model.integer))
        feasible = int(info.primal_solution_status) == int(highspy.SolutionStatus.kSolutionStatusFeasible)
        incumbent = float(info.objective_function_value) if feasible else None
        x = np.asarray(h.getSolution().col_value, dtype=np.float64) if feasible else None
        if x is not None and x.shape != (model.num_variables,):
            incumbent, x = None, None
        if status_name == "kOptimal":
            status = "optimal"
        elif status_name in _LIMITS:
            status = "time_limit"
        elif status_name == "kInfeasible":
            status = "infeasible"
        else:
            status = "error"
        if has_integers:
            bound = float(info.mip_dual_bound)
            if math.isnan(bound):
                bound = math.inf
        else:  # a plain LP: its optimal value is the bound
            bound = float(info.objective_function_value) if status == "optimal" else math.inf
        if status == "infeasible":
            bound = -math.inf
        elif status == "error":
            bound = math.inf
        return MIPResult(
            solver=self.name,
            status=status,
            best_bound=bound,
            incumbent=incumbent,
            x=x,
            seconds=seconds,
            nodes=max(0, int(info.mip_node_count)) if has_integers else 0,
            tolerances=tolerances,
            message=f"HiGHS model status {h.modelStatusToString(status_enum)}",
        )


def _subscribe_progress(h: Any, progress, failure: list, clock: float) -> None:
    """Report ``(seconds since clock, incumbent, bound)`` on every improving
    solution and at most every 0.5 s from the MIP interrupt callback (which
    HiGHS calls often); an exception from ``progress`` interrupts the solve
    and is kept."""
    last = [-math.inf]

    def report(event: Any, force: bool) -> None:
        if failure:
            event.interrupt()
            return
        out = event.data_out
        now = time.perf_counter() - clock
        if not force and now - last[0] < _PROGRESS_EVERY:
            return
        last[0] = now
        primal = float(out.mip_primal_bound)
        dual = float(out.mip_dual_bound)
        try:
            progress(now, primal if math.isfinite(primal) else None, dual if math.isfinite(dual) else None)
        except Exception as exc:  # noqa: BLE001 - re-raised by solve()
            failure.append(exc)
            event.interrupt()

    h.cbMipImprovingSolution.subscribe(lambda e: report(e, True))
    h.cbMipInterrupt.subscribe(lambda e: report(e, False))


def _time_left(options: SolveOptions, start: float) -> float | None:
    return None if options.time_limit is None else options.time_limit - (time.perf_counter() - start)


def _contradiction(model: MIPModel, warm_start: np.ndarray | None, result: MIPResult) -> str | None:
    """Why ``result``'s bound cannot be right, or None: a feasible point (the
    warm start, when it satisfies the model to 1e-9 relative, or the
    solver's own incumbent) with an objective above the bound by more than
    1e-6 relative. Statuses error and time-out-without-bound are left alone."""
    if result.status == "error":
        return None
    bound = result.best_bound
    points = []
    if warm_start is not None:
        x = np.asarray(warm_start, dtype=np.float64)
        if model.max_violation(x) <= 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0))):
            points.append(("the warm start", model.evaluate(x)))
    if result.incumbent is not None:
        points.append(("its own incumbent", result.incumbent))
    for what, value in points:
        if value > bound + 1e-6 * max(1.0, abs(value)):
            return f"status {result.status} with bound {bound!r}, but {what} has objective {value!r}"
    return None


def _run(h: Any, highspy: Any) -> None:
    """``h.run()`` with HiGHS's process-wide thread pool reset before and after.

    HiGHS builds one global scheduler on its first run and refuses (model
    status "Not Set") any later run whose ``threads`` option differs; every
    other HiGHS user in lipmip runs with ``threads=1``. Resetting before the
    run lets this solve use its own thread count; resetting after it lets
    the next user start afresh. (Not safe while another thread is running
    HiGHS; lipmip never does that.)
    """
    highspy.Highs.resetGlobalScheduler(True)
    try:
        h.run()
    finally:
        highspy.Highs.resetGlobalScheduler(True)


def _option(h: Any, name: str) -> float:
    value = h.getOptionValue(name)
    return float(value[1] if isinstance(value, tuple) else value)


def _check(status: Any, highspy: Any, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS rejected {what}")
