"""The MIQCQP reformulations (lipmip.formulate.miqcqp) against the exact enumeration oracle.

* the upper version's certified bound is >= the exact value, and meets it
  when SCIP proves optimality (random networks are in general position);
* the lower version's verified witness is <= the exact value, its solver
  points lie strictly inside their activation regions, and it meets the
  exact value whenever an optimal region clears the margin;
* the checks can fail: too-tight forward or gradient bounds (the model's only
  constants) make them fail on a network built for it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lipmip
import lipmip.formulate.miqcqp as miqcqp_module
from lipmip.bounds import Bounds, compute
from lipmip.errors import InvalidQueryError, SolverUnavailableError
from lipmip.formulate.miqcqp import (
    build_miqcqp,
    certified_upper_bound,
    pattern_is_realised,
    realise_pattern,
    verified_witness,
)
from lipmip.regions import enumerate_regions
from lipmip.regions.enumerate import pre_activations_with_error
from lipmip.solvers.base import SolveOptions
from lipmip.solvers.registry import solve_with_fallback
from lipmip.witness import free_coordinates

pytest.importorskip("pyscipopt")

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = SolveOptions(time_limit=20)
# SCIP's feasibility tolerance in lipmip (solvers.scip.DEFAULT_PARAMS); margins far above it are reliable
SCIP_FEASTOL = 1e-10


@st.composite
def cases(draw):
    """Random networks whose hidden neurons pass near their kinks inside the
    region (biases drawn around the negated pre-activation at the centre, at
    the scale of the radius), so most of them are unstable; still in general
    position with probability 1."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n_in = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=2))  # depth 1 to 3
    n_out = draw(st.integers(1, 3))
    widths = [n_in, *hidden, n_out]
    acts = ["relu"] * (len(widths) - 2) + [draw(st.sampled_from(["relu", "identity"]))]
    radius = float(draw(st.sampled_from([1e-3, 0.1, 0.5, 1.0])))
    center = rng.standard_normal(n_in)
    params, h = [], center
    for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        W = rng.standard_normal((o, i))
        near_kink = k < len(widths) - 2 or acts[-1] == "relu"
        b = -(W @ h) + radius * rng.standard_normal(o) if near_kink else rng.standard_normal(o)
        params.append((W, b))
        h = np.maximum(W @ h + b, 0.0)
    net = lipmip.Network.from_params(params, acts)
    kind = draw(st.sampled_from(["box", "1", "2", "inf"]))
    region = lipmip.Box(center - radius, center + radius) if kind == "box" else lipmip.Ball(center, radius, kind)
    norm = draw(st.sampled_from([1, 2, "inf"]))
    if draw(st.booleans()) or n_out == 1:
        query = lipmip.Query.scalar(rng.standard_normal(n_out), norm)
    else:
        query = lipmip.Query.margin(0, 1, n_out, norm)
    return net, region, query


def optimal_region_clears_margin(mip, exact_value: float) -> bool:
    """Whether some activation region attaining the exact value has a point
    (the enumeration's certified interior point) where every neuron with a
    binary in the lower model is on its side by its margin plus the rounding
    of the forward pass: then the lower model's optimum is the exact value."""
    free = free_coordinates(mip.region)
    for r in enumerate_regions(mip.net, mip.region):
        value = float(mip.query.local_value(r.jacobian * free))
        if not r.certified_interior or value < exact_value * (1 - 1e-9) - 1e-12:
            continue
        z, err = pre_activations_with_error(mip.net, r.point)
        start, ok = 0, True
        for k, enc in enumerate(mip.layers):
            n = enc.z.size
            has = np.flatnonzero(enc.a >= 0)
            sign = np.where(r.pattern[k][has], 1.0, -1.0)
            ok &= bool(np.all(sign * z[start + has] - err[start + has] >= mip.margins[k][has] + 10 * SCIP_FEASTOL))
            start += n
        if ok:
            return True
    return False


def check_against_oracle(net, region, query, forward=None) -> None:
    """Every claim of the module docstring, checked against enumeration."""
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    forward = compute(net, region, "linear") if forward is None else forward
    tol = 1e-6 * max(1.0, exact.upper)

    upper_mip = build_miqcqp(net, region, query, forward, version="upper")
    result = solve_with_fallback(upper_mip.model, "scip", OPTIONS)
    upper = certified_upper_bound(result, upper_mip)
    assert upper >= exact.lower, f"upper version: certified {upper} below the exact value {exact.lower}"
    witness = verified_witness(result, upper_mip)
    assert witness is None or witness.value <= exact.upper
    if result.status == "optimal":
        # general position: the solver's optimum is the exact value ...
        best = upper_mip.value_from_objective(result.best_bound)
        assert exact.lower - tol <= best <= exact.upper + tol
        # ... and the certificate widens it by the tolerances only (in objective units: squared for ℓ2)
        power = 2 if upper_mip.squared else 1
        assert upper**power - best**power <= 1e-5 * max(1.0, exact.upper**power)

    lower_mip = build_miqcqp(net, region, query, forward, version="lower")
    result = solve_with_fallback(lower_mip.model, "scip", OPTIONS)
    witness = verified_witness(result, lower_mip)
    lower = 0.0 if witness is None else witness.value
    assert lower <= exact.upper
    # the paper's promise: a feasible point of the lower version is strictly inside its region
    smallest = min((float(m[enc.a >= 0].min()) for m, enc in zip(lower_mip.margins, lower_mip.layers)
                    if np.any(enc.a >= 0)), default=math.inf)
    if result.x is not None and smallest > 1e3 * SCIP_FEASTOL:
        assert pattern_is_realised(lower_mip, result.x)
    if result.status == "optimal" and lower < exact.lower - tol:
        assert not optimal_region_clears_margin(lower_mip, exact.lower), (
            f"lower version stopped at {lower} below the exact {exact.lower} though an optimal region clears the margin"
        )


@SETTINGS
@given(cases())
def test_both_versions_against_enumeration(case):
    check_against_oracle(*case)


# ------------------------------------------------------------------ the checks can fail


def _two_kinks():
    """f(x) = relu(x) + 10 relu(x - 0.5) on [-1, 1]: L = 11, attained for x > 0.5 only."""
    net = lipmip.Network.from_params([(np.array([[1.0], [1.0]]), np.array([0.0, -0.5])),
                                      (np.array([[1.0, 10.0]]), np.array([0.0]))], ["relu", "identity"])
    return net, lipmip.Box([-1.0], [1.0]), lipmip.Query.output(0, 1, "inf")


def test_the_demo_case_passes_with_true_bounds():
    net, region, query = _two_kinks()
    assert lipmip.lipschitz(net, region, query, method="enumerate").lower == pytest.approx(11.0)
    check_against_oracle(net, region, query)


def test_too_tight_forward_bounds_are_caught():
    """Hidden-layer bounds shrunk to 40 %: the neurons stay unstable but x > 0.4
    is cut off, so the second kink is never passed and the upper version's
    certified bound (about 1) falls below L = 11. The oracle check fails."""
    net, region, query = _two_kinks()
    true = compute(net, region, "linear")
    shrunk = Bounds(net, true.region, (true.lower[0] * 0.4, true.lower[1]), (true.upper[0] * 0.4, true.upper[1]),
                    "shrunk", 0.0)
    assert np.array_equal(shrunk.unstable[0], true.unstable[0])
    mip = build_miqcqp(net, region, query, shrunk, version="upper")
    upper = certified_upper_bound(solve_with_fallback(mip.model, "scip", OPTIONS), mip)
    assert upper < 2.0
    with pytest.raises(AssertionError, match="upper version"):
        check_against_oracle(net, region, query, forward=shrunk)


def test_too_tight_gradient_bounds_are_caught(monkeypatch):
    """Input-gradient bounds shrunk to 30 % ([0, 3.3] instead of [0, 11]): the
    pattern with both neurons on becomes infeasible and the check fails."""
    net, region, query = _two_kinks()
    real = miqcqp_module._gradient_bounds

    def shrunk(q, forward):
        gb, lower, upper = real(q, forward)
        lower[0], upper[0] = lower[0] * 0.3, upper[0] * 0.3
        return gb, lower, upper

    monkeypatch.setattr(miqcqp_module, "_gradient_bounds", shrunk)
    with pytest.raises(AssertionError, match="upper version"):
        check_against_oracle(net, region, query)


def test_a_large_margin_misses_the_optimum_and_the_theory_says_why():
    """With margin 0.3 each unstable neuron of the two-kink net must be 0.6
    (30 % of its bound width 2) away from 0. The optimal region x > 0.5 has
    z2 = x - 0.5 <= 0.5 and the region 0 < x < 0.5 has min(z1, -z2) <= 0.25,
    so only x <= -0.6 (both off, value 0) clears the margin: the lower version
    is a valid but useless lower bound here, and the margin test says why."""
    net, region, query = _two_kinks()
    forward = compute(net, region, "linear")
    mip = build_miqcqp(net, region, query, forward, version="lower", margin=0.3)
    result = solve_with_fallback(mip.model, "scip", OPTIONS)
    assert result.status == "optimal" and mip.value_from_objective(result.best_bound) == pytest.approx(0.0, abs=1e-9)
    assert verified_witness(result, mip) is None  # a zero gradient certifies nothing positive
    assert pattern_is_realised(mip, result.x)
    assert not optimal_region_clears_margin(mip, 11.0)
    default = build_miqcqp(net, region, query, forward, version="lower")
    assert optimal_region_clears_margin(default, 11.0)


def test_degenerate_network_separates_the_versions():
    """f(x) = relu(x) - relu(-x) = x on [-1, 1] is not in general position (two
    neurons share the hyperplane x = 0): L = 1, but the pattern with both
    neurons on, feasible only at x = 0, has gradient 2. The upper version
    (like LipMIP) returns 2, a valid but loose upper bound; the lower version
    excludes that pattern and its optimum is L itself."""
    net = lipmip.Network.from_params([(np.array([[1.0], [-1.0]]), np.zeros(2)), (np.array([[1.0, -1.0]]), np.zeros(1))],
                                     ["relu", "identity"])
    region, query = lipmip.Box([-1.0], [1.0]), lipmip.Query.output(0, 1, "inf")
    assert lipmip.lipschitz(net, region, query, method="enumerate").upper == pytest.approx(1.0)
    forward = compute(net, region, "linear")
    upper_mip = build_miqcqp(net, region, query, forward, version="upper")
    upper = certified_upper_bound(solve_with_fallback(upper_mip.model, "scip", OPTIONS), upper_mip)
    assert upper == pytest.approx(2.0, rel=1e-6)
    lower_mip = build_miqcqp(net, region, query, forward, version="lower")
    result = solve_with_fallback(lower_mip.model, "scip", OPTIONS)
    assert result.status == "optimal"
    assert lower_mip.value_from_objective(result.best_bound) == pytest.approx(1.0, rel=1e-9)
    assert pattern_is_realised(lower_mip, result.x)
    assert verified_witness(result, lower_mip).value == pytest.approx(1.0, rel=1e-9)


# ------------------------------------------------------------------ the model itself


@settings(max_examples=15, deadline=None, derandomize=True)
@given(cases())
def test_assignment_of_a_point_is_feasible_with_its_local_value(case):
    """At a point of the region with its own pattern, every variable can be set
    so that the upper model is satisfied (to rounding) and its objective is
    the local value there: the model encodes the masked gradient exactly."""
    net, region, query = case
    forward = compute(net, region, "linear")
    mip = build_miqcqp(net, region, query, forward, version="upper")
    x = region.center
    sol = mip.assignment(x)
    scale = 1.0 + float(np.max(np.abs(sol)))
    assert mip.model.max_violation(sol) <= 1e-9 * scale
    J = net.jacobian(x) * free_coordinates(region)[None, :]
    assert mip.value_from_objective(mip.model.evaluate(sol)) == pytest.approx(float(query.local_value(J)),
                                                                                rel=1e-9, abs=1e-12)


def test_one_product_per_unstable_neuron_and_pass():
    """On the demo network: one binary per unstable ReLU, and the network part's
    products are quadratic equalities, h = a z and δ = a g per unstable neuron
    (δ = a g is a linear row where g is a fixed number); the upper version with
    margin 0 is exact, the lower one and negative margins are not."""
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[0], 0.05, "inf")
    query = lipmip.Query.margin(7, 9, 10, "inf")
    forward = compute(net, region, "linear")
    mip = build_miqcqp(net, region, query, forward)
    unstable = forward.num_unstable
    binaries_in_net = sum(int(np.count_nonzero(enc.a >= 0)) for enc in mip.layers)
    assert binaries_in_net == unstable
    products = len(mip.model.quadratic_constraints)
    fixed_g = sum(int(np.count_nonzero(mip.grad_lower[k + 1][0, enc.a >= 0] == mip.grad_upper[k + 1][0, enc.a >= 0]))
                  for k, enc in enumerate(mip.layers))
    assert products == 2 * unstable - fixed_g
    assert mip.exact and mip.optimum_side == "upper"
    assert not build_miqcqp(net, region, query, forward, version="lower").exact
    assert not build_miqcqp(net, region, query, forward, version="upper", margin=-1e-3).exact


def test_negative_margin_relaxes_the_upper_version():
    net, region, query = _two_kinks()
    forward = compute(net, region, "linear")
    values = []
    for margin in (0.0, -0.3):
        mip = build_miqcqp(net, region, query, forward, version="upper", margin=margin)
        values.append(certified_upper_bound(solve_with_fallback(mip.model, "scip", OPTIONS), mip))
    assert values[0] == pytest.approx(11.0, rel=1e-6)
    assert values[1] >= values[0] * (1 - 1e-9)


def test_lower_version_gives_no_upper_bound():
    net, region, query = _two_kinks()
    forward = compute(net, region, "linear")
    mip = build_miqcqp(net, region, query, forward, version="lower")
    result = solve_with_fallback(mip.model, "scip", OPTIONS)
    assert certified_upper_bound(result, mip) == math.inf
    assert mip.optimum_side == "lower"


def test_realise_pattern_finds_a_point_clearing_the_margin_or_none():
    net, region, query = _two_kinks()
    mip = build_miqcqp(net, region, query, compute(net, region, "linear"))
    on = [np.array([True, True]), np.array([True])]
    x = realise_pattern(mip, on)
    assert x is not None and 0.5 < x[0] <= 1.0
    assert net.jacobian(x)[0, 0] == pytest.approx(11.0)
    assert realise_pattern(mip, [np.array([False, True]), np.array([True])]) is None  # x < 0 and x > 0.5
    # with the solver fallback the witness reproduces the optimum
    result = solve_with_fallback(mip.model, "scip", OPTIONS)
    assert verified_witness(result, mip, solver="scip").value == pytest.approx(11.0, rel=1e-9)
    with pytest.raises(SolverUnavailableError):
        realise_pattern(mip, on, solver="highs")
    assert verified_witness(result, mip, solver="highs").value == pytest.approx(11.0, rel=1e-9)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "middle"}, "unknown MIQCQP version"),
        ({"version": "lower", "margin": 0.0}, r"margin in \(0, 0.5\)"),
        ({"version": "lower", "margin": 0.7}, r"margin in \(0, 0.5\)"),
        ({"version": "upper", "margin": 1e-3}, r"margin in \[-0.5, 0\]"),
        ({"margin": float("nan")}, "finite"),
        ({"margin": True}, "a number"),
        ({"margin": "small"}, "a number"),
    ],
)
def test_bad_version_or_margin_is_a_clear_error(kwargs, message):
    net, region, query = _two_kinks()
    with pytest.raises(InvalidQueryError, match=message):
        build_miqcqp(net, region, query, compute(net, region, "linear"), **kwargs)


def test_vector_queries_are_refused():
    net, region, _ = _two_kinks()
    with pytest.raises(InvalidQueryError, match="scalar queries"):
        build_miqcqp(net, region, lipmip.Query.vector("inf"), compute(net, region, "linear"))


def test_highs_cannot_take_the_model():
    net, region, query = _two_kinks()
    mip = build_miqcqp(net, region, query, compute(net, region, "linear"))
    with pytest.raises(SolverUnavailableError, match="quadratic constraints"):
        solve_with_fallback(mip.model, "highs", OPTIONS)
