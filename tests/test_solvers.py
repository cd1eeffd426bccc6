"""The MIP backends (SCIP, Gurobi when licensed, HiGHS when present) on small
hand-made models with known optima, and the solver registry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from lipmip.errors import SolverUnavailableError
from lipmip.formulate.model import MIPModel, QuadraticConstraint
from lipmip.solvers import registry
from lipmip.solvers.base import MIPResult, MIPSolver, SolveOptions
from lipmip.solvers.gurobi import GurobiSolver, LicenceSizeLimitError, gurobi_size
from lipmip.solvers.scip import ScipSolver, quadratic_range

TOL = 1e-5


# ---------------------------------------------------------------------- models
def knapsack() -> tuple[MIPModel, float]:
    """Binary knapsack plus a constant; optimum found by enumeration."""
    values = np.array([10.0, 7.0, 5.0, 3.0, 8.0, 4.0])
    weights = np.array([5.0, 4.0, 3.0, 2.0, 6.0, 1.0])
    m = MIPModel()
    m.add_binaries(6)
    m.add_rows(weights[None, :], -np.inf, 12.0)
    m.add_rows(np.array([[1.0, 0, 0, 0, 1.0, 0]]), -np.inf, 1.0)   # items 0 and 4 exclude each other
    m.objective = values
    m.objective_constant = 1.5
    best = max(
        values @ np.array(pick)
        for pick in itertools.product([0, 1], repeat=6)
        if weights @ np.array(pick) <= 12 and pick[0] + pick[4] <= 1
    )
    return m, float(best) + 1.5


def equality_milp() -> tuple[MIPModel, float]:
    """Integers with negative bounds, an equality row and a ranged row.

    x2 = x0 + x1 - 0.5, so the objective 2 x0 + 3 x1 - x2 is x0 + 2 x1 + 0.5;
    the best is x0 = 1, x1 = 2, x2 = 2.5 with value 5.5."""
    m = MIPModel()
    m.add_variables([-3.0, -2.0], [2.0, 4.0], integer=True)
    m.add_variables(-1.5, 2.5)
    m.add_rows(np.array([[1.0, 1.0, -1.0]]), 0.5, 0.5)
    m.add_rows(np.array([[1.0, -1.0, 0.0]]), -2.0, 1.0)
    m.objective = np.array([2.0, 3.0, -1.0])
    return m, 5.5


def infeasible_milp() -> MIPModel:
    """x0 + x1 >= 3 with two binaries."""
    m = MIPModel()
    m.add_binaries(2)
    m.add_rows(np.array([[1.0, 1.0]]), 3.0, np.inf)
    m.objective = np.array([1.0, 1.0])
    return m


def nonconvex_quadratic() -> tuple[MIPModel, float]:
    """max x² - y² + 0.5 z, x in [-3, 2], y in [-2, 1], z in {0..3}, x - z >= -4.5.

    The local maximum at x = 2 is not the global one: x = -3 needs z <= 1,
    and x = -3, y = 0, z = 1 gives 9.5. ``Q`` also carries a cancelling,
    non-symmetric x·y pair."""
    m = MIPModel()
    m.add_variables([-3.0, -2.0], [2.0, 1.0])
    m.add_variables(0.0, 3.0, integer=True)
    m.add_rows(np.array([[1.0, 0.0, -1.0]]), -4.5, np.inf)
    m.objective = np.array([0.0, 0.0, 0.5])
    m.objective_quadratic = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [-2.0, -1.0, 0.0], [0.0, 0.0, 0.0]]))
    return m, 9.5


def quadratic_constraints() -> tuple[MIPModel, float]:
    """max -x - y s.t. 1 <= x² + y² <= 4 (a nonconvex ring), x, y in [0, 2]: -1."""
    m = MIPModel()
    m.add_variables([0.0, 0.0], [2.0, 2.0])
    m.objective = np.array([-1.0, -1.0])
    m.quadratic_constraints.append(QuadraticConstraint(sp.identity(2, format="csr"), np.zeros(2), 1.0, 4.0))
    return m, -1.0


def random_milp(n: int = 60, k: int = 30, seed: int = 0) -> MIPModel:
    """A general-integer packing problem that takes SCIP more than a second."""
    rng = np.random.default_rng(seed)
    m = MIPModel()
    m.add_variables(np.zeros(n), np.full(n, 5.0), integer=True)
    A = rng.integers(1, 30, size=(k, n)).astype(np.float64)
    m.add_rows(A, -np.inf, 0.8 * A.sum(axis=1))
    m.objective = rng.integers(1, 40, size=n).astype(np.float64)
    return m


KNOWN = {
    "knapsack": knapsack,
    "equality": equality_milp,
    "nonconvex": nonconvex_quadratic,
    "quadratic_constraints": quadratic_constraints,
}
LINEAR = ["knapsack", "equality"]


def check_optimal(result: MIPResult, model: MIPModel, optimum: float) -> None:
    assert result.status == "optimal", result.message
    assert result.incumbent == pytest.approx(optimum, rel=TOL, abs=TOL)
    assert result.best_bound == pytest.approx(optimum, rel=TOL, abs=TOL)
    assert result.best_bound >= result.incumbent
    assert result.x is not None and result.x.shape == (model.num_variables,)
    assert model.max_violation(result.x) <= TOL
    assert model.evaluate(result.x) == pytest.approx(optimum, rel=TOL, abs=TOL)


# ---------------------------------------------------------------------- SCIP
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_scip_finds_known_optimum(name: str) -> None:
    model, optimum = KNOWN[name]()
    result = ScipSolver().solve(model, SolveOptions())
    assert result.solver == "scip"
    check_optimal(result, model, optimum)
    assert set(result.tolerances) >= {"feasibility", "integrality"}


def test_scip_infeasible() -> None:
    result = ScipSolver().solve(infeasible_milp(), SolveOptions())
    assert result.status == "infeasible"
    assert result.incumbent is None and result.x is None
    assert result.best_bound == -math.inf


def test_scip_time_limit_keeps_a_valid_bound() -> None:
    model = random_milp()
    result = ScipSolver().solve(model, SolveOptions(time_limit=0.5, seed=3))
    assert result.status in ("time_limit", "optimal")
    assert result.seconds < 10
    assert result.incumbent is not None
    assert math.isfinite(result.best_bound) and result.best_bound >= result.incumbent
    assert model.max_violation(result.x) <= TOL


def test_scip_warm_start_becomes_the_incumbent() -> None:
    model = random_milp()
    start = np.zeros(model.num_variables)
    start[0] = 1.0
    # stop at the first solution: the start, offered before the search begins
    result = ScipSolver(params={"limits/solutions": 1}).solve(model, SolveOptions(warm_start=start))
    assert result.status == "time_limit"
    assert result.incumbent == pytest.approx(model.evaluate(start))
    np.testing.assert_allclose(result.x, start)


def test_scip_infeasible_warm_start_is_repaired_not_fatal() -> None:
    model, optimum = knapsack()
    start = np.ones(model.num_variables)          # over the capacity
    result = ScipSolver().solve(model, SolveOptions(warm_start=start))
    check_optimal(result, model, optimum)
    assert "partial solution" in result.message


def test_scip_reports_progress() -> None:
    model, optimum = knapsack()
    seen: list[tuple] = []
    result = ScipSolver().solve(model, SolveOptions(progress=lambda *report: seen.append(report)))
    check_optimal(result, model, optimum)
    assert seen and all(len(report) == 3 and report[0] >= 0 for report in seen)
    incumbents = [inc for _, inc, _ in seen if inc is not None]
    assert incumbents and max(incumbents) == pytest.approx(optimum)


def test_scip_failing_progress_callback_gives_error_status() -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("callback exploded")

    result = ScipSolver().solve(knapsack()[0], SolveOptions(progress=explode))
    assert result.status == "error"
    assert "callback exploded" in result.message


def test_scip_never_raises_for_solver_failures() -> None:
    result = ScipSolver(params={"no/such/parameter": 1}).solve(knapsack()[0], SolveOptions())
    assert result.status == "error" and result.message
    assert result.best_bound == math.inf


def test_quadratic_range_encloses_samples(rng: np.random.Generator) -> None:
    Q = sp.csr_matrix(rng.normal(size=(4, 4)))
    lb, ub = np.array([-1.0, 0.5, -2.0, -0.5]), np.array([2.0, 1.0, -1.0, 0.5])
    lo, hi = quadratic_range(Q, lb, ub)
    xs = rng.uniform(lb, ub, size=(2000, 4))
    values = np.einsum("ni,ij,nj->n", xs, Q.toarray(), xs)
    assert lo <= values.min() and values.max() <= hi


# ---------------------------------------------------------------------- HiGHS cross-check
@pytest.mark.parametrize("name", LINEAR)
def test_highs_agrees_with_scip(name: str) -> None:
    try:
        highs_cls = registry.solver_class("highs")
    except SolverUnavailableError as exc:
        pytest.skip(f"HiGHS backend not present: {exc}")
    if not highs_cls.available():
        pytest.skip("highspy is not usable here")
    model, optimum = KNOWN[name]()
    highs = highs_cls().solve(model, SolveOptions())
    scip = ScipSolver().solve(model, SolveOptions())
    check_optimal(highs, model, optimum)
    assert highs.best_bound == pytest.approx(scip.best_bound, rel=TOL, abs=TOL)


# ---------------------------------------------------------------------- Gurobi
@pytest.fixture
def gurobi() -> GurobiSolver:
    pytest.importorskip("gurobipy", reason="gurobipy is not installed (optional extra lipmip[gurobi])")
    if not GurobiSolver.available():
        pytest.skip(f"Gurobi is not usable here: {GurobiSolver.unavailable_reason()}")
    return GurobiSolver()


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_gurobi_finds_known_optimum(gurobi: GurobiSolver, name: str) -> None:
    model, optimum = KNOWN[name]()
    result = gurobi.solve(model, SolveOptions())
    assert result.solver == "gurobi"
    check_optimal(result, model, optimum)


def test_gurobi_infeasible_and_time_limit(gurobi: GurobiSolver) -> None:
    assert gurobi.solve(infeasible_milp(), SolveOptions()).status == "infeasible"
    result = gurobi.solve(random_milp(), SolveOptions(time_limit=0.5))
    assert result.status in ("time_limit", "optimal")
    assert result.incumbent is not None and result.best_bound >= result.incumbent


def test_gurobi_warm_start(gurobi: GurobiSolver) -> None:
    model = random_milp()
    start = np.zeros(model.num_variables)
    start[0] = 1.0
    result = GurobiSolver(params={"SolutionLimit": 1}).solve(model, SolveOptions(warm_start=start))
    assert result.incumbent is not None and result.incumbent >= model.evaluate(start) - TOL


def test_gurobi_size_limited_licence_refuses_big_models(gurobi: GurobiSolver) -> None:
    if not GurobiSolver.size_limited():
        pytest.skip("this Gurobi licence is not size-limited")
    model = MIPModel()
    model.add_variables(np.zeros(2001), np.ones(2001))
    model.objective = np.ones(2001)
    with pytest.raises(LicenceSizeLimitError, match="size-limited licence.*2001 variables"):
        gurobi.solve(model, SolveOptions())


def test_gurobi_size_counts_ranged_rows_twice() -> None:
    model, _ = equality_milp()              # one equality row, one ranged row
    size = gurobi_size(model)
    assert (size.variables, size.linear_constraints, size.quadratic) == (3, 3, False)
    assert gurobi_size(nonconvex_quadratic()[0]).quadratic


# ---------------------------------------------------------------------- registry
class FakeSizeLimitedGurobi(MIPSolver):
    """Stands in for Gurobi with a size-limited licence that refuses every model."""

    name = "gurobi"
    calls = 0

    @classmethod
    def available(cls) -> bool:
        return True

    def supports(self, model: MIPModel) -> bool:
        return True

    @classmethod
    def check_licence(cls, model: MIPModel) -> None:
        raise LicenceSizeLimitError(2001, 0, quadratic=False)

    def solve(self, model: MIPModel, options: SolveOptions) -> MIPResult:
        type(self).calls += 1
        self.check_licence(model)
        raise AssertionError("unreachable")


class FakeLinearOnly(ScipSolver):
    """A linear-only backend (like HiGHS) built on SCIP."""

    name = "highs"

    def supports(self, model: MIPModel) -> bool:
        return model.is_linear


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch):
    real = registry.solver_class
    fakes = {"gurobi": FakeSizeLimitedGurobi, "highs": FakeLinearOnly}
    monkeypatch.setattr(registry, "solver_class", lambda name: fakes.get(name) or real(name))
    FakeSizeLimitedGurobi.calls = 0


def test_unknown_solver_lists_the_names() -> None:
    with pytest.raises(SolverUnavailableError, match="unknown solver 'cplex'.*highs.*scip.*gurobi"):
        registry.get_solver("cplex")


def test_missing_gurobi_names_the_extra(no_gurobi: None) -> None:
    assert not GurobiSolver.available()
    with pytest.raises(SolverUnavailableError, match=r"lipmip\[gurobi\]"):
        registry.get_solver("gurobi")
    with pytest.raises(SolverUnavailableError, match=r"lipmip\[gurobi\]"):
        GurobiSolver().solve(knapsack()[0], SolveOptions())
    assert "gurobi" not in registry.available_solvers()


def test_auto_without_gurobi_picks_open_source(no_gurobi: None) -> None:
    assert registry.get_solver("auto", nonconvex_quadratic()[0]).name == "scip"
    assert registry.get_solver("auto", knapsack()[0]).name in ("highs", "scip")
    assert registry.get_solver("scip").name == "scip"


def test_linear_only_backend_refuses_quadratic_model_naming_scip(fake_backends: None) -> None:
    model, _ = nonconvex_quadratic()
    with pytest.raises(SolverUnavailableError, match="'highs' cannot solve a model with a quadratic objective; use 'scip'"):
        registry.get_solver("highs", model)
    assert registry.get_solver("highs", knapsack()[0]).name == "highs"


def test_real_highs_refuses_quadratic_model() -> None:
    if "highs" not in registry.available_solvers():
        pytest.skip("HiGHS backend not present")
    with pytest.raises(SolverUnavailableError, match="scip"):
        registry.get_solver("highs", nonconvex_quadratic()[0])


def test_auto_skips_gurobi_when_its_licence_refuses_the_model(fake_backends: None) -> None:
    assert registry.get_solver("auto", knapsack()[0]).name == "highs"
    assert registry.get_solver("auto", nonconvex_quadratic()[0]).name == "scip"
    assert registry.get_solver("auto").name == "gurobi"      # no model: nothing to refuse


def test_size_limit_falls_back_with_one_line(fake_backends: None) -> None:
    model, optimum = knapsack()
    lines: list[str] = []
    result = registry.solve_with_fallback(model, "auto", SolveOptions(), notify=lines.append)
    assert FakeSizeLimitedGurobi.calls == 1
    check_optimal(result, model, optimum)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("gurobi: size-limited licence")
    assert "2001 variables" in lines[0] and lines[0].endswith("; using highs")


def test_size_limit_fallback_for_quadratic_model_uses_scip(fake_backends: None, capsys: pytest.CaptureFixture) -> None:
    model, optimum = nonconvex_quadratic()
    result = registry.solve_with_fallback(model)
    check_optimal(result, model, optimum)
    assert result.solver == "scip"
    assert capsys.readouterr().err.strip().endswith("; using scip")


def test_named_gurobi_is_never_replaced(fake_backends: None) -> None:
    with pytest.raises(LicenceSizeLimitError):
        registry.solve_with_fallback(knapsack()[0], "gurobi", notify=pytest.fail)


def test_named_solver_through_fallback_entry_point() -> None:
    model, optimum = equality_milp()
    check_optimal(registry.solve_with_fallback(model, "scip", notify=pytest.fail), model, optimum)


def test_gurobi_progress_and_failing_callback(gurobi: GurobiSolver) -> None:
    model, optimum = knapsack()
    seen: list[tuple] = []
    check_optimal(gurobi.solve(model, SolveOptions(progress=lambda *r: seen.append(r))), model, optimum)
    assert seen and seen[-1][1] == pytest.approx(optimum)

    def explode(*_: object) -> None:
        raise RuntimeError("callback exploded")

    result = gurobi.solve(random_milp(), SolveOptions(progress=explode, time_limit=2.0))
    assert result.status == "error" and "callback exploded" in result.message


def test_soplex_tolerance_notes_are_held_back_and_other_output_kept(capfd):
    import os

    from lipmip.solvers.scip import _without_soplex_tolerance_notes

    with _without_soplex_tolerance_notes():
        os.write(2, b"Cannot set feasibility tolerance to small value 1e-13 without GMP - using 1e-10.\n")
        os.write(2, b"a genuine solver message\n")
    err = capfd.readouterr().err
    assert "a genuine solver message" in err and "without GMP" not in err
