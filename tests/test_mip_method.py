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
