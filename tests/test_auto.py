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


def test_points_are_sampled_once_and_each_stage_starts_from_the_best_witness(monkeypatch):
    """The branch and bound starts from auto's sampled witness and the MIP from
    the better of that and the branch and bound's: the sampler runs once."""
    import lipmip.auto
    import lipmip.mip
    import lipmip.regions.bab

    calls = []
    real = lipmip.auto.sample_lower_bound

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    for module in (lipmip.auto, lipmip.mip, lipmip.regions.bab):
        monkeypatch.setattr(module, "sample_lower_bound", counted)
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    result = lipmip.lipschitz(net, lipmip.Ball(X[3], 0.08, "inf"), lipmip.Query.margin(7, 3, 10), time_limit=0.5)
    assert result.details["stage"] == "mip" and len(calls) == 1
    assert result.lower <= 278.6890214 <= result.upper


def test_a_given_incumbent_is_recertified_not_trusted():
    """A witness handed to bab or mip is re-evaluated: an inflated value is
    replaced by the pair's certified quotient, a pair outside the region is
    dropped."""
    from lipmip.mip import mip_lipschitz
    from lipmip.regions.bab import bab_lipschitz
    from lipmip.result import Witness
    from lipmip.witness import certified_quotient

    rng = np.random.default_rng(3)
    net = lipmip.Network.from_params([(rng.standard_normal((5, 2)), rng.standard_normal(5)),
                                      (rng.standard_normal((1, 5)), np.zeros(1))])
    region = lipmip.Ball(np.zeros(2), 0.5, "inf")
    query = lipmip.Query.output(0, 1)
    exact = lipmip.lipschitz(net, region, query, method="enumerate").lower
    a, b = np.array([-0.4, 0.1]), np.array([0.3, -0.2])
    honest = certified_quotient(net, query, region, a, b)
    inflated = Witness(a=a, b=b, value=10 * exact)
    outside = Witness(a=np.array([0.9, 0.0]), b=b, value=10 * exact)
    for method in (bab_lipschitz, mip_lipschitz):
        res = method(net, region, query, incumbent=inflated, node_limit=0) if method is bab_lipschitz \
            else method(net, region, query, incumbent=inflated, time_limit=0.0)
        assert honest <= res.lower <= exact, method.__name__
        res = method(net, region, query, incumbent=outside, node_limit=0) if method is bab_lipschitz \
            else method(net, region, query, incumbent=outside, time_limit=0.0)
        assert res.lower <= exact, method.__name__


def test_racing_the_engines_gives_the_exact_value():
    """race=True: the MIP in a second process beside the branch and bound;
    whichever closes the interval first answers, and the result is exact."""
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    result = lipmip.lipschitz(net, lipmip.Ball(X[0], 0.05, "inf"), lipmip.Query.margin(7, 9, 10), race=True)
    assert result.details["stage"] == "race" and result.details["winner"] in ("bab", "mip")
    assert result.status == "optimal" and result.lower == pytest.approx(313.4630539, rel=1e-9)
    assert result.upper - result.lower <= 1e-6 * result.upper


def test_a_stopped_branch_and_bound_still_brackets():
    """The stop request auto's race uses ends the search with a sound bracket."""
    from lipmip.regions.bab import bab_lipschitz

    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    calls = []

    def stop_after_five():
        calls.append(1)
        return len(calls) > 5

    result = bab_lipschitz(net, lipmip.Ball(X[3], 0.08, "inf"), lipmip.Query.margin(7, 3, 10), stop=stop_after_five)
    assert result.status == "stopped" and len(calls) == 6
    assert result.lower <= 278.68902134 <= result.upper
