"""method="auto": which stage answers, and that every stage's answer is sound."""

from __future__ import annotations

import numpy as np
import pytest

import lipmip


def test_an_affine_network_is_answered_by_the_cheap_bounds():
    rng = np.random.default_rng(0)
    net = lipmip.Network.from_params([(rng.standard_normal((3, 4)), rng.standard_normal(3))], ["identity"])
    result = lipmip.lipschitz(net, lipmip.Ball(np.zeros(4), 0.5, "inf"), c=[1.0, -1.0, 0.0])
    exact = float(np.abs(net.layers[0].W[0] - net.layers[0].W[1]).sum())
    assert result.details["stage"] == "cheap" and result.status == "optimal"
    assert result.lower <= exact <= result.upper and result.upper - result.lower <= 1e-6 * exact


def test_the_demo_is_answered_exactly_by_the_branch_and_bound():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    result = lipmip.lipschitz(net, lipmip.Ball(X[0], 0.05, "inf"), c=lipmip.Query.margin(7, 9, 10).c)
    assert result.details["stage"] == "bab" and result.status == "optimal"
    assert result.lower == pytest.approx(313.4630539, rel=1e-9) and result.upper - result.lower <= 1e-6 * result.upper


def test_a_branch_and_bound_cut_short_hands_over_to_the_mip():
    """With almost no time the branch and bound stops early; the MIP gets the
    rest, and whatever is left open stays a sound bracket."""
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[3], 0.08, "inf")
    query = lipmip.Query.margin(7, 3, 10)
    result = lipmip.lipschitz(net, region, query, time_limit=0.5)
    assert result.details["stage"] in ("bab", "mip")
    assert result.lower <= 278.6890214 <= result.upper  # the exact value (bab, enumeration: 23,074 regions)
    if result.details["stage"] == "mip":
        assert "mip" in result.details and "bab" in result.details


def test_auto_can_stop_after_the_branch_and_bound():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    result = lipmip.lipschitz(net, lipmip.Ball(X[3], 0.08, "inf"), lipmip.Query.margin(7, 3, 10),
                              time_limit=0.2, mip=False)
    assert result.details["stage"] == "bab" and "mip" not in result.details
    assert result.lower <= 278.6890214 <= result.upper
