"""The Lipschitz MIP (lipmip.formulate) solved by HiGHS, against the exact value.

Activation-region enumeration (tested on its own in test_regions.py) gives the
exact local Lipschitz constant of small networks. The MIP solved to
optimality must reproduce it, whatever the ReLU encoding; a deliberately
undersized big-M must make some case fail (so these tests would catch one).

HiGHS 1.15.1 itself is not always right on these models (a wrong "optimal"
in roughly one of 10,000 solves, in stress runs of these generators): the
HiGHS backend confirms each optimum with a second run; the regression tests
below pin the known cases.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lipmip
import lipmip.formulate.lipschitz as lipschitz_module
from lipmip.bounds import Bounds, compute
from lipmip.bounds.backward import GradientBounds
from lipmip.errors import InvalidQueryError, LipmipError, SolverUnavailableError
from lipmip.formulate.lipschitz import LipschitzMIP, build_lipschitz_mip, certified_upper, objective_margin
from lipmip.formulate.relu import partition_inputs, tidy_bounds
from lipmip.regions import exact_lipschitz_by_enumeration
from lipmip.solvers.base import MIPResult, MIPSolver, SolveOptions
from lipmip.solvers.highs import HighsSolver
from lipmip.witness import free_coordinates, witness_from_point

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FEW = settings(SETTINGS, max_examples=100)

DIGITS_EXACT = 313.4630539  # digits net, l-inf ball r=0.05 around test image 0, margin 7 vs 9 (by enumeration)


# ---------------------------------------------------------------------------------- helpers


def random_net(rng: np.random.Generator, widths: list[int], output_act: str = "identity") -> lipmip.Network:
    acts = ["relu"] * (len(widths) - 2) + [output_act]
    return lipmip.Network.from_params(
        [(rng.standard_normal((o, i)), 0.5 * rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])], acts
    )


def make_region(rng: np.random.Generator, kind: str, n: int, radius: float, fixed: int = 0) -> lipmip.Region:
    center = 0.5 * rng.standard_normal(n)
    if kind == "box":
        lo = center - radius * (0.2 + rng.random(n))
        hi = center + radius * (0.2 + rng.random(n))
        lo[:fixed] = hi[:fixed] = center[:fixed]
        return lipmip.Box(lo, hi)
    return lipmip.Ball(center, radius, kind)


def make_query(rng: np.random.Generator, kind: str, norm, n_out: int) -> lipmip.Query:
    if kind == "vector":
        return lipmip.Query.vector(norm)
    if kind == "margin" and n_out >= 2:
        i, j = rng.choice(n_out, 2, replace=False)
        return lipmip.Query.margin(int(i), int(j), n_out, norm)
    return lipmip.Query.scalar(rng.standard_normal(n_out), norm)


def case_from_seed(seed: int, kinds=("box", "inf", "1"), norms=("inf", 1), queries=("scalar", "margin", "vector")):
    """A random small network (depth 1-3, width <= 6, 1-4 inputs, 1-3
    outputs, identity or ReLU output), region (box with some fixed
    coordinates, or ball) and query, all drawn uniformly from ``seed``."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    hidden = [int(w) for w in rng.integers(1, 7, size=rng.integers(0, 3))]
    n_out = int(rng.integers(1, 4))
    net = random_net(rng, [n_in, *hidden, n_out], str(rng.choice(["identity", "relu"])))
    kind = str(rng.choice(kinds))
    radius = float(rng.choice([1e-3, 1e-2, 0.1, 0.3, 0.6, 1.0]))
    fixed = int(rng.integers(0, n_in)) if kind == "box" else 0
    region = make_region(rng, kind, n_in, radius, fixed)
    norm = norms[int(rng.integers(len(norms)))]
    query = make_query(rng, str(rng.choice(queries)), norm, n_out)
    return net, region, query


@st.composite
def cases(draw, **kinds):
    """:func:`case_from_seed` of a drawn seed (Hypothesis's own draws would
    favour the smallest sizes, which leaves most ReLUs stable)."""
    return case_from_seed(draw(st.integers(0, 2**31 - 1)), **kinds)


def solve(mip: LipschitzMIP, **options) -> MIPResult:
    return HighsSolver().solve(mip.model, SolveOptions(**options))


def exact_value(net, region, query):
    exact = exact_lipschitz_by_enumeration(net, region, query)
    assume(exact.upper - exact.lower <= 1e-9 * max(1.0, exact.upper))  # the best region was certified
    return exact


def into_region(region: lipmip.Region, x: np.ndarray) -> np.ndarray:
    """``x`` moved into the region (solver points may sit a tolerance outside)."""
    if isinstance(region, lipmip.Box):
        return np.clip(x, region.lo, region.hi)
    d = x - region.center
    norm = float(np.linalg.norm(d, ord=region.p))
    return region.center + d * min(1.0, region.radius / norm * (1 - 1e-12)) if norm > 0 else x


def check_against_exact(net, region, query, mip: LipschitzMIP, res: MIPResult, exact) -> None:
    """Every claim an optimal HiGHS solve makes, checked against the exact value."""
    assert res.status == "optimal", res.message
    scale = max(1.0, exact.upper)
    value = mip.value_from_objective(res.incumbent)
    bound = mip.value_from_objective(res.best_bound)
    assert abs(value - exact.upper) <= 1e-6 * scale, (value, exact.upper)
    assert abs(bound - exact.upper) <= 1e-6 * scale, (bound, exact.upper)
    assert certified_upper(res, mip) >= exact.lower
    # the pattern the MIP chose has the value it reports ...
    assert abs(float(query.local_value(mip.jacobian_of_solution(res.x))) - value) <= 1e-6 * scale
    # ... and its input point reproduces no more than the exact value
    x = into_region(region, mip.input_point(res.x))
    assert region.contains(x, tol=1e-12)
    free = free_coordinates(region)
    local = float(query.local_value(net.jacobian(x) * free[None, :]))
    assert local <= exact.upper * (1 + 1e-6) + 1e-9, (local, exact.upper)
    w = witness_from_point(net, query, region, x)
    assert w is None or w.value <= exact.upper
    # the binaries agree with the forward pass wherever a neuron is clearly on one side
    zs = net.pre_activations(x)
    for z, enc, s in zip(zs, mip.layers, mip.slopes(res.x)):
        clear = (enc.a >= 0) & (np.abs(z) > 1e-5 * max(1.0, float(np.abs(z).max())))
        assert np.array_equal(s[clear], (z[clear] > 0).astype(float))


# ---------------------------------------------------------------------------------- against the exact value


@SETTINGS
@given(cases(), st.sampled_from(["linear", "interval", "lp"]))
def test_mip_matches_exact_value(case, bound_method):
    net, region, query = case
    exact = exact_value(net, region, query)
    mip = build_lipschitz_mip(net, region, query, compute(net, region, bound_method))
    check_against_exact(net, region, query, mip, solve(mip), exact)


@FEW
@given(cases())
def test_encodings_give_the_same_optimum(case):
    net, region, query = case
    forward = compute(net, region, "linear")
    values = []
    for encoding, parts, strategy in [("bigm", 2, "equal_size"), ("partition", 1, "equal_size"),
                                      ("partition", 2, "equal_size"), ("partition", 2, "sorted"),
                                      ("partition", "fan_in", "equal_size")]:
        mip = build_lipschitz_mip(net, region, query, forward, encoding=encoding, partitions=parts,
                                  partition_strategy=strategy)
        assert_no_tiny_coefficients(mip)
        res = solve(mip)
        assert res.status == "optimal"
        values.append(mip.value_from_objective(res.best_bound))
    assert max(values) - min(values) <= 1e-6 * max(1.0, max(values)), values


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("query_kind", ["scalar", "vector"])
def test_output_relu_networks(seed, query_kind):
    rng = np.random.default_rng(100 + seed)
    net = random_net(rng, [3, 5, 4, 3], output_act="relu")
    region = make_region(rng, "inf", 3, 0.5)
    for norm in ("inf", 1):
        query = make_query(rng, query_kind, norm, 3)
        exact = exact_lipschitz_by_enumeration(net, region, query)
        for encoding in ("bigm", "partition"):
            mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"), encoding=encoding)
            check_against_exact(net, region, query, mip, solve(mip), exact)


def test_degenerate_box_drops_fixed_coordinates():
    rng = np.random.default_rng(7)
    net = random_net(rng, [3, 6, 6, 2])
    lo, hi = -np.ones(3), np.ones(3)
    lo[1] = hi[1] = 0.3
    region = lipmip.Box(lo, hi)
    for query in (lipmip.Query.margin(0, 1, 2), lipmip.Query.vector("inf"), lipmip.Query.vector(1),
                  lipmip.Query.scalar([1.0, 2.0], 1)):
        exact = exact_lipschitz_by_enumeration(net, region, query)
        mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"))
        res = solve(mip)
        check_against_exact(net, region, query, mip, res, exact)
        assert mip.jacobian_of_solution(res.x)[:, 1].tolist() == [0.0, 0.0]


def test_fully_stable_region_is_a_plain_lp():
    rng = np.random.default_rng(3)
    net = random_net(rng, [2, 4, 1])
    region = lipmip.Ball(rng.standard_normal(2), 1e-6, "inf")
    query = lipmip.Query.output(0, 1)
    forward = compute(net, region, "linear")
    assert forward.num_unstable == 0
    mip = build_lipschitz_mip(net, region, query, forward)
    assert not mip.model.integer.any()
    res = solve(mip)
    exact = exact_lipschitz_by_enumeration(net, region, query)
    check_against_exact(net, region, query, mip, res, exact)


# ---------------------------------------------------------------------------------- time limits and warm starts


@pytest.fixture(scope="module")
def digits():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[0], 0.05, "inf")
    query = lipmip.Query.margin(7, 9, 10)
    return net, region, query, compute(net, region, "linear")


def test_short_time_limit_still_bounds_the_exact_value(digits):
    net, region, query, forward = digits
    mip = build_lipschitz_mip(net, region, query, forward)
    for limit in (1e-3, 0.2):
        res = solve(mip, time_limit=limit)
        assert res.status in ("time_limit", "optimal")
        assert mip.value_from_objective(res.best_bound) >= DIGITS_EXACT * (1 - 1e-9)
        assert certified_upper(res, mip) >= DIGITS_EXACT
        if res.incumbent is not None:
            assert mip.value_from_objective(res.incumbent) <= DIGITS_EXACT * (1 + 1e-6)


def test_warm_start_and_progress(digits):
    net, region, query, forward = digits
    mip = build_lipschitz_mip(net, region, query, forward)
    start = mip.assignment(region.center)
    assert mip.model.max_violation(start) <= 1e-9
    start_value = mip.model.evaluate(start)
    reports = []
    res = solve(mip, warm_start=start, time_limit=0.3, progress=lambda *r: reports.append(r))
    assert res.incumbent is not None and res.incumbent >= start_value - 1e-6
    times = [r[0] for r in reports]
    assert times and times[0] >= 0 and times == sorted(times)  # one clock across the confirmation run
    with pytest.raises(ValueError):
        solve(mip, warm_start=np.zeros(3))

    def boom(*_):
        raise KeyError("from progress")

    with pytest.raises(KeyError):
        solve(mip, progress=boom)


def test_time_limited_random_network_bounds_exact():
    rng = np.random.default_rng(11)
    net = random_net(rng, [3, 8, 8, 3])
    region = make_region(rng, "inf", 3, 1.0)
    query = lipmip.Query.vector("inf")
    exact = exact_lipschitz_by_enumeration(net, region, query)
    mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"))
    for limit in (1e-3, 0.01, None):
        res = solve(mip, time_limit=limit)
        assert mip.value_from_objective(res.best_bound) >= exact.lower * (1 - 1e-9)
        assert certified_upper(res, mip) >= exact.lower
    check_against_exact(net, region, query, mip, res, exact)


def test_highs_thread_counts_do_not_disturb_other_highs_users():
    from lipmip.lp import LinearProgram

    rng = np.random.default_rng(4)
    net = random_net(rng, [3, 6, 2])
    region = make_region(rng, "inf", 3, 0.5)
    mip = build_lipschitz_mip(net, region, lipmip.Query.vector("inf"), compute(net, region, "linear"))
    lp = LinearProgram(np.ones((1, 2)), [0.0], [1.0], [0.0, 0.0], [1.0, 1.0])
    assert HighsSolver.available() and HighsSolver.name == "highs"
    values = []
    for threads in (1, 2, 1, 3):
        res = solve(mip, threads=threads)
        assert res.status == "optimal", res.message
        values.append(res.best_bound)
        assert lp.maximize([1.0, 1.0]).bound == pytest.approx(1.0)
    assert max(values) - min(values) <= 1e-9 * max(1.0, max(values))
    # lipmip's defaults, tighter than HiGHS's (1e-6 integrality, 1e-7 feasibility)
    assert res.tolerances == {"integrality": 1e-9, "feasibility": 1e-10, "optimality": 1e-10}
    loose = HighsSolver(mip_feasibility_tolerance=1e-6).solve(mip.model, SolveOptions())
    assert loose.tolerances["integrality"] == 1e-6
    assert loose.best_bound == pytest.approx(values[0], rel=1e-5)


def test_highs_self_check_retries_then_refuses(monkeypatch):
    """A bound below a feasible point's objective (as HiGHS 1.15 gives when
    an invalid cut removes the optimum) is never passed on as a bound."""
    rng = np.random.default_rng(9)
    net = random_net(rng, [2, 5, 2])
    region = make_region(rng, "inf", 2, 0.5)
    mip = build_lipschitz_mip(net, region, lipmip.Query.margin(0, 1, 2), compute(net, region, "linear"))
    warm = mip.assignment(region.center)
    warm_value = mip.model.evaluate(warm)
    real = HighsSolver._solve_once
    seeds: list[int] = []

    def wrong_once(self, highspy, model, options, seed, extra=None, clock=None):
        seeds.append(seed)
        res = real(self, highspy, model, options, seed, extra, clock)
        return replace(res, best_bound=warm_value - 1.0, incumbent=None) if len(seeds) == 1 else res

    monkeypatch.setattr(HighsSolver, "_solve_once", wrong_once)
    res = HighsSolver(confirm=False).solve(mip.model, SolveOptions(warm_start=warm, seed=5))
    assert seeds == [5, 6] and res.status == "optimal" and res.best_bound >= warm_value
    assert "discarded" in res.message

    def always_wrong(self, highspy, model, options, seed, extra=None, clock=None):
        res = real(self, highspy, model, options, seed, extra, clock)
        return replace(res, best_bound=res.incumbent - 1.0)

    monkeypatch.setattr(HighsSolver, "_solve_once", always_wrong)
    res = solve(mip)  # HiGHS's own incumbent contradicts the bound
    assert res.status == "error" and res.best_bound == math.inf and "contradicted" in res.message
    assert certified_upper(res, mip) == math.inf


def test_highs_confirmation_keeps_the_larger_bound(monkeypatch):
    """A wrong "optimal" with a consistent (too small) incumbent is caught by
    the confirmation run (presolve off, another seed)."""
    rng = np.random.default_rng(9)
    net = random_net(rng, [2, 5, 2])
    region = make_region(rng, "inf", 2, 0.5)
    mip = build_lipschitz_mip(net, region, lipmip.Query.margin(0, 1, 2), compute(net, region, "linear"))
    right = solve(mip)
    assert right.status == "optimal" and "confirmation run (presolve off) agrees" in right.message
    real = HighsSolver._solve_once
    calls: list[dict] = []

    def first_wrong(self, highspy, model, options, seed, extra=None, clock=None):
        calls.append(dict(extra or {}))
        res = real(self, highspy, model, options, seed, extra, clock)
        if len(calls) == 1:  # a wrong optimum: a worse pattern, claimed optimal
            x = mip.assignment(region.center)
            return replace(res, best_bound=model.evaluate(x), incumbent=model.evaluate(x), x=x)
        return res

    monkeypatch.setattr(HighsSolver, "_solve_once", first_wrong)
    res = solve(mip)
    assert calls == [{}, {"presolve": "off"}]
    assert res.status == "optimal" and res.best_bound == pytest.approx(right.best_bound, rel=1e-6)
    assert "disagrees" in res.message
    calls.clear()
    res = HighsSolver(confirm=False).solve(mip.model, SolveOptions())
    assert len(calls) == 1 and res.best_bound < right.best_bound  # what confirm=False would have passed on


# ---------------------------------------------------------------------------------- the model itself


@FEW
@given(cases(kinds=("box", "inf", "1", "2"), norms=("inf", 1, 2), queries=("scalar", "margin", "vector")),
       st.sampled_from(["bigm", "partition"]))
def test_assignment_is_feasible_and_attains_the_local_value(case, encoding):
    """Every point of the region with its own pattern is a feasible MIP point
    whose objective is the local value there: the MIP can only overestimate."""
    net, region, query = case
    for l2_region in ("quadratic", "outer"):
        mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"), encoding=encoding,
                                  l2_region=l2_region)
        free = free_coordinates(region)
        for x in region.sample(5, np.random.default_rng(0)):
            sol = mip.assignment(x)
            scale = max(1.0, float(np.abs(sol).max()))
            assert mip.model.max_violation(sol) <= 1e-9 * scale
            local = float(query.local_value(net.jacobian(x) * free[None, :]))
            assert mip.value_from_objective(mip.model.evaluate(sol)) == pytest.approx(local, rel=1e-9, abs=1e-12)


def test_l2_models_are_quadratic_and_highs_refuses_them():
    rng = np.random.default_rng(5)
    net = random_net(rng, [2, 5, 2])
    ball = lipmip.Ball(rng.standard_normal(2), 0.5, 2)
    forward = compute(net, ball, "linear")
    mip = build_lipschitz_mip(net, ball, lipmip.Query.margin(0, 1, 2), forward)
    assert not mip.model.is_linear and not HighsSolver().supports(mip.model)
    with pytest.raises(SolverUnavailableError):
        solve(mip)
    assert mip.value_from_objective(16.0) == 16.0
    box = lipmip.Box(-np.ones(2), np.ones(2))
    for query in (lipmip.Query.scalar([1.0, -1.0], 2), lipmip.Query.vector(2)):
        mip = build_lipschitz_mip(net, box, query, compute(net, box, "linear"))
        assert mip.model.objective_quadratic is not None and mip.value_from_objective(16.0) == 4.0


def test_l2_outer_approximation_is_an_upper_bound():
    rng = np.random.default_rng(8)
    net = random_net(rng, [3, 6, 6, 2])
    ball = lipmip.Ball(rng.standard_normal(3), 0.7, 2)
    for query in (lipmip.Query.margin(0, 1, 2), lipmip.Query.vector("inf"), lipmip.Query.scalar([1.0, 0.5], 1)):
        exact = exact_lipschitz_by_enumeration(net, ball, query)
        mip = build_lipschitz_mip(net, ball, query, compute(net, ball, "linear"), l2_region="outer")
        assert mip.model.is_linear and not mip.exact
        res = solve(mip)
        assert res.status == "optimal"
        assert mip.value_from_objective(res.best_bound) >= exact.lower * (1 - 1e-9)


def _backend(name: str) -> MIPSolver | None:
    """The other helper's backend (lipmip.solvers.<name>), when present and usable."""
    try:
        module = importlib.import_module(f"lipmip.solvers.{name}")
    except ImportError:
        return None
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, MIPSolver) and getattr(obj, "name", None) == name:
            try:
                return obj() if obj.available() else None
            except Exception:  # noqa: BLE001 - an unusable backend is skipped
                return None
    return None


@pytest.mark.parametrize("query", [lipmip.Query.scalar([1.0, -2.0], 2), lipmip.Query.vector(2)],
                         ids=["scalar-l2", "vector-2to2"])
@pytest.mark.parametrize("kind", ["inf", "2"])
def test_miqcp_on_scip_matches_exact(query, kind):
    solver = _backend("scip")
    if solver is None:
        pytest.skip("the SCIP backend (lipmip.solvers.scip) is not available")
    rng = np.random.default_rng(21)
    net = random_net(rng, [2, 5, 2])
    region = make_region(rng, kind, 2, 0.5)
    exact = exact_lipschitz_by_enumeration(net, region, query)
    mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"))
    res = solver.solve(mip.model, SolveOptions(time_limit=60))
    assert res.status == "optimal"
    assert mip.value_from_objective(res.best_bound) == pytest.approx(exact.upper, rel=1e-5)
    assert certified_upper(res, mip) >= exact.lower


def assert_no_tiny_coefficients(mip: LipschitzMIP) -> None:
    """No matrix entry or big-M bound HiGHS would drop as tiny (<= 1e-9)."""
    A = mip.model.A
    assert not np.any((A.data != 0) & (np.abs(A.data) <= 1e-9))
    for b in (mip.model.lb, mip.model.ub):
        assert not np.any((b != 0) & (np.abs(b) < 1e-9))


def test_regression_tiny_big_m_coefficients():
    """Partition group bounds around exact zeros used to be rounding pads of
    1e-15; HiGHS dropped those coefficients and reported "optimal" at 2.709
    for this case, whose exact value is 3.157. They are now exact zeros or
    widened away from 0 (lipmip.formulate.relu.tidy_bounds)."""
    net, region, query = case_from_seed(12053)
    exact = exact_lipschitz_by_enumeration(net, region, query)
    forward = compute(net, region, "linear")
    for encoding, parts in [("bigm", 2), ("partition", 1), ("partition", 2), ("partition", "fan_in")]:
        mip = build_lipschitz_mip(net, region, query, forward, encoding=encoding, partitions=parts)
        assert_no_tiny_coefficients(mip)
        check_against_exact(net, region, query, mip, solve(mip), exact)


@pytest.mark.parametrize("seed, encoding, parts", [(23592, "partition", 1), (23592, "partition", 2),
                                                   (42755, "partition", "fan_in")])
def test_regression_highs_wrong_optimum(seed, encoding, parts):
    """Cases where one HiGHS 1.15.1 run reports a wrong "optimal" value
    (0.758 and 1.94 instead of 4.692 for 23592; 1.040 instead of 1.572 for
    42755, presolve probing being involved) although SCIP, HiGHS with
    another seed and a feasible point all show the model is right. The
    confirmation run of HighsSolver catches them."""
    net, region, query = case_from_seed(seed)
    exact = exact_lipschitz_by_enumeration(net, region, query)
    mip = build_lipschitz_mip(net, region, query, compute(net, region, "linear"), encoding=encoding, partitions=parts)
    check_against_exact(net, region, query, mip, solve(mip), exact)


def test_tidy_bounds():
    lo = np.array([-1.0, -1e-12, 0.0, 1e-12, 2.0, -1e-7, -1e-5])
    hi = np.array([-1e-12, 1e-12, 0.0, 1e-7, 3.0, 1.0, 2e-9])
    for snap in (False, True):
        new_lo, new_hi = tidy_bounds(lo, hi, snap=snap)
        assert np.array_equal(new_lo >= 0, lo >= 0) or snap  # stability classes kept unless snapping
        nonzero = np.concatenate([new_lo, new_hi])
        assert np.all((nonzero == 0) | (np.abs(nonzero) >= 1e-6))
    new_lo, new_hi = tidy_bounds(lo, hi)
    assert new_lo.tolist() == [-1.0, -1e-4, 0.0, 0.0, 2.0, -1e-4, -1e-5]
    assert new_hi.tolist() == [0.0, 1e-4, 0.0, 1e-4, 3.0, 1.0, 1e-4]
    assert np.all(new_lo <= lo) and np.all(new_hi >= hi)  # only widened
    assert np.array_equal(new_lo >= 0, lo >= 0) and np.array_equal(new_hi <= 0, hi <= 0)
    new_lo, new_hi = tidy_bounds(lo, hi, snap=True)
    assert new_lo.tolist() == [-1.0, 0.0, 0.0, 0.0, 2.0, -1e-4, -1e-5]
    assert new_hi.tolist() == [0.0, 0.0, 0.0, 1e-4, 3.0, 1.0, 1e-4]  # 2e-9 is above SNAP: widened


def test_partition_groups():
    w = np.array([3.0, -1.0, 0.0, 2.0, -5.0, 0.5])
    for strategy in ("equal_size", "sorted"):
        for parts in (1, 2, 3, 5, 9):
            groups = partition_inputs(w, parts, strategy)
            assert len(groups) == min(parts, 5)
            assert sorted(np.concatenate(groups).tolist()) == [0, 1, 3, 4, 5]
    assert [g.tolist() for g in partition_inputs(w, 2, "equal_size")] == [[1, 4, 5], [0, 3]]
    assert partition_inputs(np.zeros(3), 2) == []


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(0)
    net = random_net(rng, [2, 3, 2])
    region = lipmip.Box(-np.ones(2), np.ones(2))
    forward = compute(net, region, "linear")
    query = lipmip.Query.margin(0, 1, 2)
    for kwargs in ({"encoding": "nope"}, {"partitions": 0}, {"partitions": "all"}, {"l2_region": "cube"},
                   {"encoding": "partition", "partition_strategy": "random"}):
        with pytest.raises(InvalidQueryError):
            build_lipschitz_mip(net, region, query, forward, **kwargs)
    other = random_net(rng, [2, 3, 2])
    with pytest.raises(LipmipError):
        build_lipschitz_mip(net, region, query, compute(other, region, "linear"))
    with pytest.raises(InvalidQueryError):
        build_lipschitz_mip(net, region, lipmip.Query.scalar([1.0, 2.0, 3.0]), forward)


def test_certified_upper_refuses_untrustworthy_results():
    rng = np.random.default_rng(1)
    net = random_net(rng, [2, 4, 2])
    region = lipmip.Box(-np.ones(2), np.ones(2))
    mip = build_lipschitz_mip(net, region, lipmip.Query.vector(1), compute(net, region, "linear"))
    res = solve(mip)
    assert math.isfinite(certified_upper(res, mip))
    assert certified_upper(replace(res, status="error"), mip) == math.inf
    assert certified_upper(replace(res, status="infeasible", best_bound=-math.inf), mip) == math.inf
    assert certified_upper(replace(res, best_bound=res.incumbent - 10.0), mip) == math.inf
    assert objective_margin(mip, 0.0) == 0.0


# ---------------------------------------------------------------------------------- the tests catch bad big-Ms


def _halved(gb: GradientBounds) -> GradientBounds:
    """Gradient bounds shrunk toward 0 (the output row, fixed at c, is kept)."""
    lower = tuple(lo / 2 for lo in gb.lower[:-1]) + (gb.lower[-1],)
    upper = tuple(hi / 2 for hi in gb.upper[:-1]) + (gb.upper[-1],)
    return GradientBounds(gb.forward, gb.C, lower, upper, gb.seconds)


def _fixed_cases(n: int):
    out = []
    for seed in range(n):
        rng = np.random.default_rng(500 + seed)
        net = random_net(rng, [2, 5, 5, 2])
        region = make_region(rng, "inf", 2, 1.0)
        out.append((net, region, lipmip.Query.margin(0, 1, 2)))
    return out


def _failures(cases_, build) -> int:
    failed = 0
    for net, region, query in cases_:
        exact = exact_lipschitz_by_enumeration(net, region, query)
        mip = build(net, region, query)
        res = solve(mip)
        try:
            check_against_exact(net, region, query, mip, res, exact)
        except AssertionError:
            failed += 1
    return failed


def test_halved_gradient_big_m_is_caught(monkeypatch):
    cases_ = _fixed_cases(6)

    def build(net, region, query):
        return build_lipschitz_mip(net, region, query, compute(net, region, "linear"))

    assert _failures(cases_, build) == 0
    real = lipschitz_module.gradient_bounds
    monkeypatch.setattr(lipschitz_module, "gradient_bounds", lambda fw, C: _halved(real(fw, C)))
    assert _failures(cases_, build) >= 1


def test_shrunk_forward_big_m_is_caught():
    cases_ = _fixed_cases(6)

    def shrunk(bounds: Bounds) -> Bounds:
        upper = tuple(np.where(u > 0, u / 4, u) for u in bounds.upper)
        lower = tuple(np.where(lo < 0, lo / 4, lo) for lo in bounds.lower)
        return Bounds(bounds.net, bounds.region, lower, upper, "shrunk", 0.0)

    def build(net, region, query):
        return build_lipschitz_mip(net, region, query, shrunk(compute(net, region, "linear")))

    assert _failures(cases_, build) >= 1
