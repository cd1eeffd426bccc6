"""method="mip" end to end: certified sides bracket the exact (enumerated) value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lipmip
from lipmip.errors import SolverUnavailableError

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n_in = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 6), min_size=1, max_size=2))
    n_out = draw(st.integers(1, 3))
    widths = [n_in, *hidden, n_out]
    acts = ["relu"] * (len(widths) - 2) + [draw(st.sampled_from(["relu", "identity"]))]
    net = lipmip.Network.from_params(
        [(rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])], acts
    )
    radius = float(draw(st.sampled_from([1e-3, 0.1, 0.5, 1.0])))
    kind = draw(st.sampled_from(["box", "1", "inf"]))
    center = rng.standard_normal(n_in)
    region = lipmip.Box(center - radius, center + radius) if kind == "box" else lipmip.Ball(center, radius, kind)
    norm = draw(st.sampled_from([1, "inf"]))
    if draw(st.booleans()) or n_out == 1:
        query = lipmip.Query.scalar(rng.standard_normal(n_out), norm)
    else:
        query = lipmip.Query.margin(0, 1, n_out, norm)
    return net, region, query


@SETTINGS
@given(cases())
def test_mip_brackets_the_exact_value(case):
    net, region, query = case
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    result = lipmip.lipschitz(net, region, query, method="mip", solver="highs", samples=100)
    assert result.lower <= exact.upper
    assert result.upper >= exact.lower
    if result.status == "optimal":
        assert result.upper - result.lower <= 1e-6 * max(1.0, exact.upper)
    # the solver's own optimum agrees with the exact value (it is never reported as a bound)
    if result.details["solver_status"] == "optimal":
        assert result.details["solver_best_bound"] == pytest.approx(exact.upper, rel=1e-5, abs=1e-6)


def test_mip_on_the_demo_network_matches_enumeration():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[0], 0.05, "inf")
    query = lipmip.Query.margin(7, 9, 10)
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    for solver in ("highs", "scip"):
        r = lipmip.lipschitz(net, region, query, method="mip", solver=solver, time_limit=120)
        assert r.lower <= exact.upper and r.upper >= exact.lower
        assert r.lower == pytest.approx(exact.lower, rel=1e-9)
        assert r.upper <= exact.upper * 1.01


def test_unknown_solver_is_a_clear_error():
    net = lipmip.examples.digits_network()
    region = lipmip.Ball(np.full(64, 0.5), 0.01)
    with pytest.raises(SolverUnavailableError, match="cplex"):
        lipmip.lipschitz(net, region, lipmip.Query.output(0, 10), method="mip", solver="cplex")


def _deep_small_gradient_network(seed: int, scale: float) -> lipmip.Network:
    """Six hidden layers of 12 with weights of norm ~3 per row and an output
    scaled by ``scale``: large hidden values and weight products, a small
    Lipschitz constant (the shape of ACAS Xu, whose margins have constants
    ~1e-3 behind hidden values ~300)."""
    rng = np.random.default_rng(seed)
    widths = [4, 12, 12, 12, 12, 12, 12, 3]
    params = [(rng.standard_normal((o, i)) * 3 / np.sqrt(i), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])]
    params[-1] = (params[-1][0] * scale, params[-1][1] * scale)
    return lipmip.Network.from_params(params)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_constants_are_certified_tightly(seed):
    """Lipschitz constants of 0.02-0.12 must close to 1e-5 relative (with
    HiGHS alone 1e-6; the SCIP cross-check brings SCIP's feasibility
    tolerance 1e-9 into the widening): the
    solver's absolute tolerances would swamp them without the output scaling
    and the gradient-error bound through the partial products (on ACAS Xu
    the widening was 10-20x the value before)."""
    net = _deep_small_gradient_network(seed, 1e-4)
    center = np.random.default_rng(seed + 10).standard_normal(4)
    region = lipmip.Ball(center, 0.05, "inf")
    query = lipmip.Query.margin(0, 1, 3)
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    result = lipmip.lipschitz(net, region, query, method="mip", solver="highs", samples=200)
    assert result.lower <= exact.upper and result.upper >= exact.lower
    assert result.status == "optimal", result.details
    assert result.details["output_scale"] > 1
    assert result.upper - result.lower <= 1e-5 * exact.upper


def test_scale_output_is_exact():
    from lipmip.rescale import scale_output

    net = _deep_small_gradient_network(0, 1.0)
    x = np.random.default_rng(3).standard_normal((5, 4))
    assert np.array_equal(scale_output(net, 2.0**17)(x), net(x) * 2.0**17)
    with pytest.raises(lipmip.errors.InvalidQueryError, match="power of two"):
        scale_output(net, 3.0)


def test_quotient_of_close_points_is_evaluated_exactly():
    """Points 1e-9 apart on a network with hidden values ~1e4: float64
    rounding alone would eat most of the quotient; the exact evaluation
    recovers the slope (checked against a rational computation here)."""
    from fractions import Fraction

    from lipmip.witness import certified_quotient

    W1, b1 = np.array([[1e4], [-1e4 + 0.5]]), np.array([3e4, 4e4])
    W2, b2 = np.array([[1.0, 1.0]]), np.array([0.0])
    net = lipmip.Network.from_params([(W1, b1), (W2, b2)], ["relu", "identity"])
    region = lipmip.Box(np.array([-1.0]), np.array([1.0]))
    query = lipmip.Query.output(0, 1, "inf")
    a, b = np.array([0.25]), np.array([0.25 + 1e-9])

    def exact_f(x: float) -> Fraction:
        h = [max(Fraction(float(w)) * Fraction(x) + Fraction(float(c)), Fraction(0)) for w, c in zip(W1[:, 0], b1)]
        return sum(h, Fraction(0))

    true = abs(exact_f(float(a[0])) - exact_f(float(b[0]))) / abs(Fraction(float(b[0])) - Fraction(float(a[0])))
    value = certified_quotient(net, query, region, a, b)
    assert Fraction(value) <= true
    assert value >= float(true) * (1 - 1e-12)  # the slope 0.5, to rounding


def test_the_three_formulations_bracket_the_exact_value():
    rng = np.random.default_rng(5)
    net = lipmip.Network.from_params([(rng.standard_normal((6, 3)), rng.standard_normal(6)),
                                      (rng.standard_normal((5, 6)), rng.standard_normal(5)),
                                      (rng.standard_normal((3, 5)), rng.standard_normal(3))])
    region = lipmip.Ball(rng.standard_normal(3), 0.8, 2)
    query = lipmip.Query.margin(0, 2, 3, 2)
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    for formulation in ("lipmip", "miqcqp-upper", "miqcqp-lower"):
        result = lipmip.lipschitz(net, region, query, method="mip", solver="scip", formulation=formulation)
        assert result.lower <= exact.upper and result.upper >= exact.lower, formulation
        assert result.details["formulation"] == formulation
        if formulation != "miqcqp-lower":
            assert result.status == "optimal"
        else:  # its solver bound proves nothing: the upper side is the interval-Jacobian bound
            assert result.details["upper_from"] == "interval"
            assert result.lower == pytest.approx(exact.lower, rel=1e-6)


@pytest.mark.parametrize("options,message", [
    ({"formulation": "miqcqp"}, "unknown formulation"),
    ({"formulation": "miqcqp-upper", "encoding": "partition"}, "own ReLU encoding"),
    ({"margin": 0.1}, "MIQCQP formulations only"),
    ({"formulation": "miqcqp-lower", "margin": 0.9}, "margin"),
])
def test_bad_formulation_options(options, message):
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    with pytest.raises(lipmip.errors.InvalidQueryError, match=message):
        lipmip.lipschitz(net, lipmip.Ball(X[0], 0.01, "inf"), lipmip.Query.margin(7, 9, 10), method="mip", **options)


def test_cross_check_keeps_the_larger_bound():
    """HiGHS 1.15 proved a wrong optimum (3.48095 < exact 3.48385) on a
    random 64-64-64-10 network for 4 seeds of 6; SCIP's bound on the same
    model is the check, and the larger bound wins."""
    from lipmip.solvers.base import MIPResult, keep_larger_bound

    def result(solver, status, bound, incumbent):
        return MIPResult(solver=solver, status=status, best_bound=bound, incumbent=incumbent, x=np.array([incumbent]),
                         seconds=1.0, tolerances={"feasibility": 1e-10, "integrality": 1e-9})

    def _cross_checked(first, check):
        return keep_larger_bound(first, check, check="SCIP cross-check", solver="highs+scip")

    wrong = result("highs", "optimal", 3.48095, 3.48095)
    right = _cross_checked(wrong, result("scip", "optimal", 3.48385, 3.48385))
    assert right.best_bound == 3.48385 and right.incumbent == 3.48385 and right.status == "optimal"
    assert "disagrees" in right.message and right.solver == "highs+scip"
    unfinished = _cross_checked(wrong, result("scip", "time_limit", 4.0, 3.4))
    assert unfinished.best_bound == 4.0 and unfinished.status == "time_limit" and unfinished.incumbent == 3.48095
    agreeing = _cross_checked(wrong, result("scip", "optimal", 3.48095 + 1e-9, 3.48095))
    assert agreeing.status == "optimal" and "agrees" in agreeing.message
    failed = _cross_checked(wrong, MIPResult.error("scip", "boom", 0.0))
    assert failed.best_bound == 3.48095 and "cross-check failed" in failed.message
