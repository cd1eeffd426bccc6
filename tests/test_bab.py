"""Region branch and bound (``lipmip.regions.bab.bab_lipschitz``) against the enumeration oracle.

The oracle is ``lipmip.lipschitz(..., method="enumerate")``: every activation region is listed and
the largest local value taken, certified on both sides. Branch and bound must

* agree with it to 1e-9 relative whenever it says ``optimal`` (hypothesis-generated networks of
  1–3 hidden layers of width <= 8, boxes and ℓ1/ℓ2/ℓ∞ balls, logit margins and single outputs in
  every input norm, operator norms 1→1, 2→2, ∞→∞; Gaussian and small-integer weights, the latter
  with coinciding and vanishing hyperplanes);
* bracket the exact value when a node or time limit stops it;
* carry a witness pair that is genuine: inside the region, its float64 difference quotient (an
  independent forward-pass check) and the float64 Jacobian between its points reproduce ``lower``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import random_net

import lipmip
from lipmip import Ball, Box, Network, Query
from lipmip.errors import InvalidQueryError, InvalidRegionError, LipmipError
from lipmip.regions import bab as bab_module
from lipmip.regions.bab import bab_lipschitz
from lipmip.witness import certified_quotient, free_coordinates

INF = math.inf
NORMS = [1.0, 2.0, INF]
REL = 1e-9

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# =============================================================================
# helpers
# =============================================================================
def exact(net: Network, region, query: Query) -> lipmip.LipschitzBound:
    return lipmip.lipschitz(net, region, query, method="enumerate", max_regions=None)


def assert_brackets(res: lipmip.LipschitzBound, oracle: lipmip.LipschitzBound) -> None:
    """``res`` is a sound interval: it contains the oracle's (the true value lies in both)."""
    assert res.lower is not None and res.upper is not None
    assert 0.0 <= res.lower <= res.upper * (1 + 1e-12) + 1e-300
    assert res.lower <= oracle.upper * (1 + 1e-12) + 1e-300, (res, oracle)
    assert oracle.lower <= res.upper * (1 + 1e-12) + 1e-300, (res, oracle)


def assert_matches_oracle(res: lipmip.LipschitzBound, oracle: lipmip.LipschitzBound) -> None:
    """Both sides of ``res`` equal the oracle's to 1e-9 relative: the upper side its rigorous maximum,
    the lower side the float64 local value of its best region (which its own witness may miss by a
    little more than 1e-9: a difference of two forward passes)."""
    assert_brackets(res, oracle)
    assert res.status == "optimal", res
    assert res.method == "bab"
    assert oracle.details["ambiguous_regions"] == 0 and oracle.details["best_region_certified"]
    target = oracle.details["best_local_value"]
    assert abs(res.upper - oracle.upper) <= REL * oracle.upper, (res, oracle)
    assert abs(res.lower - target) <= REL * target, (res, oracle)


def assert_witness(net: Network, region, query: Query, res: lipmip.LipschitzBound) -> None:
    """The witness is a pair of region points whose difference quotient, re-checked by plain float64
    forward passes, and whose float64 Jacobian at the midpoint both give back ``lower``."""
    if res.lower == 0.0:
        return
    w = res.witness
    assert w is not None and w.value == res.lower
    assert region.contains(w.a) and region.contains(w.b)
    free = free_coordinates(region)
    assert np.all(w.a[~free] == w.b[~free])
    quotient = certified_quotient(net, query, region, w.a, w.b)
    assert quotient >= res.lower * (1 - 1e-6), (quotient, res.lower)
    if res.details["lower_from"] == "bab":
        mid = (w.a + w.b) / 2
        local = float(query.local_value(net.jacobian(mid) * free))
        assert local == pytest.approx(res.lower, rel=1e-7)


@st.composite
def instances(draw):
    """A network, region and query; every choice lists an interesting case first (derandomized
    hypothesis starts from, and shrinks towards, the first entries)."""
    n_in = draw(st.sampled_from([2, 3, 1]))
    hidden = draw(st.lists(st.sampled_from([6, 8, 3, 1, 5]), min_size=1, max_size=3))
    n_out = draw(st.sampled_from([3, 2, 1, 4]))
    style = draw(st.sampled_from(["gauss", "int"]))
    output_relu = draw(st.booleans()) and style == "gauss"
    seed = draw(st.integers(0, 2**32 - 1))
    net = random_net(seed, [n_in, *hidden, n_out], style=style, output_relu=output_relu)
    rng = np.random.default_rng(seed + 1)
    c = rng.uniform(-0.5, 0.5, size=n_in)
    kind = draw(st.sampled_from([2.0, "box", INF, 1.0]))
    size = draw(st.sampled_from([0.6, 0.2, 1.2]))
    if kind == "box":
        region = Box(c - size * rng.uniform(0.5, 1.0, n_in), c + size * rng.uniform(0.5, 1.0, n_in))
    else:
        region = Ball(c, size, kind)
    p = draw(st.sampled_from([2.0, INF, 1.0]))
    shape = draw(st.sampled_from(["margin", "vector", "output"]))
    if shape == "margin" and n_out >= 2:
        i, j = draw(st.permutations(range(n_out)))[:2]
        query = Query.margin(i, j, n_out, p)
    elif shape == "vector":
        query = Query.vector(p)
    else:
        query = Query.output(draw(st.integers(0, n_out - 1)), n_out, p)
    vertices = draw(st.sampled_from([None, 0, 2]))
    branching = draw(st.sampled_from(["gradient", "order"]))
    return net, region, query, vertices, branching


# =============================================================================
# agreement with the enumeration
# =============================================================================
@PROPERTY
@given(instances())
def test_bab_equals_enumeration(instance):
    net, region, query, vertices, branching = instance
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, vertices=vertices, branching=branching, samples=0)
    if oracle.details["ambiguous_regions"] == 0:
        assert_matches_oracle(res, oracle)
    else:  # a cell too thin to certify: both sides still bracket
        assert_brackets(res, oracle)
    assert res.details["nodes"] <= 2 ** res.details["unstable_neurons"]
    assert_witness(net, region, query, res)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_bab_mip_and_auto_agree(instance):
    """The three exact routes give one value: bab and the MIP (HiGHS
    cross-checked by SCIP for MILPs, SCIP for the quadratic ℓ2 kinds) each
    bracket the other's interval, and auto's interval lies in both."""
    net, region, query, _, _ = instance
    bab = bab_lipschitz(net, region, query, samples=100)
    solver = "scip" if query.input_norm == 2.0 or isinstance(region, Ball) and region.p == 2.0 else "highs"
    mip = lipmip.lipschitz(net, region, query, method="mip", solver=solver, samples=100, time_limit=20)
    auto = lipmip.lipschitz(net, region, query, samples=100, time_limit=20)
    for a, b in ((bab, mip), (bab, auto), (mip, auto)):
        assert a.lower <= b.upper and b.lower <= a.upper
    if bab.status == "optimal" and mip.status == "optimal":
        assert mip.lower == pytest.approx(bab.lower, rel=1e-6, abs=1e-9)


REGIONS = {
    "box": Box([-0.4, -0.9, 0.1], [0.6, 0.2, 0.9]),
    "l1": Ball([0.1, -0.2, 0.3], 1.0, 1),
    "l2": Ball([0.1, -0.2, 0.3], 0.7, 2),
    "linf": Ball([0.1, -0.2, 0.3], 0.5, INF),
}


@pytest.mark.parametrize("region", list(REGIONS), ids=list(REGIONS))
@pytest.mark.parametrize("p", NORMS, ids=["1", "2", "inf"])
@pytest.mark.parametrize("kind", ["margin", "vector"])
def test_every_region_and_norm(region, p, kind):
    net = random_net(11, [3, 8, 6, 3])
    region = REGIONS[region]
    query = Query.margin(2, 0, 3, p) if kind == "margin" else Query.vector(p)
    oracle = exact(net, region, query)
    assert oracle.details["regions"] > 5
    res = bab_lipschitz(net, region, query, samples=0)
    assert_matches_oracle(res, oracle)
    assert res.details["nodes"] > 0 and res.details["lower_from"] == "bab"
    assert_witness(net, region, query, res)


@settings(PROPERTY, max_examples=25)
@given(instances(), st.integers(0, 4))
def test_node_limited_run_brackets_the_exact_value(instance, limit):
    net, region, query, vertices, branching = instance
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, node_limit=limit, vertices=vertices, branching=branching, samples=20)
    assert_brackets(res, oracle)
    assert res.status in ("optimal", "bounded", "node_limit")
    assert res.details["nodes"] <= limit
    if res.status == "node_limit":
        assert res.details["open_nodes"] > 0
    assert_witness(net, region, query, res)


def test_time_limited_run_brackets_the_exact_value():
    net = random_net(3, [3, 8, 8, 2])
    region = Ball(np.zeros(3), 0.6, INF)
    query = Query.margin(0, 1, 2)
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, time_limit=1e-9, samples=10)
    assert res.status == "time_limit"
    assert res.details["nodes"] == 0 and res.upper == res.details["root_bound"]
    assert_brackets(res, oracle)
    full = bab_lipschitz(net, region, query, samples=10)
    assert_matches_oracle(full, oracle)
    assert full.details["nodes"] > 0


WORKER_CASES = [  # (seed, sizes, region, query): searches that open more than 16 nodes at once
    (7, [2, 8, 8, 1], Box(-np.ones(2), np.ones(2)), Query.output(0, 1, INF)),
    (5, [3, 10, 10, 2], Ball(np.zeros(3), 1.0, 2), Query.margin(0, 1, 2, 2)),
    (4, [3, 8, 8, 2], Ball(np.zeros(3), 1.0, 2), Query.vector(2)),
    (2, [4, 8, 8, 3], Ball(np.zeros(4), 1.5, INF), Query.vector(INF)),
    (2, [4, 8, 8, 3], Ball(np.zeros(4), 1.5, 1), Query.vector(1)),
]


def test_one_or_two_workers_give_the_same_value():
    """The value does not depend on the number of worker processes: both
    equal the enumeration oracle, and the tree really was handed out."""
    handed_out = 0
    for seed, sizes, region, query in WORKER_CASES:
        net = random_net(seed, sizes)
        oracle = exact(net, region, query)
        one = bab_lipschitz(net, region, query, samples=0)
        two = bab_lipschitz(net, region, query, samples=0, workers=2)
        for res in (one, two):
            assert_matches_oracle(res, oracle)
        assert two.lower == pytest.approx(one.lower, rel=REL, abs=0) and two.details["workers"] == 2
        handed_out += two.details["chunks"] > 0
    assert handed_out == len(WORKER_CASES)


def test_two_workers_at_a_limit_still_bracket():
    seed, sizes, region, query = WORKER_CASES[0]
    net = random_net(seed, sizes)
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, samples=0, workers=2, node_limit=20)
    assert res.status == "node_limit" and res.details["chunks"] > 0
    assert_brackets(res, oracle)


def test_depth_first_when_the_queue_is_full():
    net = random_net(5, [2, 8, 8, 1])
    region = Box(-np.ones(2), np.ones(2))
    query = Query.output(0, 1, INF)
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, max_queue=1, samples=0)
    assert_matches_oracle(res, oracle)
    assert res.details["depth_first_pops"] > 0
    assert res.details["max_queue_size"] <= 1 + 2 * res.details["unstable_neurons"]
    assert res.details["lower_from"] == "bab"


def test_ambiguous_cells_count_for_the_upper_bound_only(monkeypatch):
    net = random_net(1, [2, 6, 1])
    box = Box(-np.ones(2), np.ones(2))
    query = Query.output(0, 1, 2)
    oracle = exact(net, box, query)
    from lipmip.regions import geometry

    # no child can be certified: every LP child becomes ambiguous
    monkeypatch.setattr(geometry.RegionGeometry, "region_slack", lambda self, x: 0.0 if not np.all(x == self.center) else 1.0)
    res = bab_lipschitz(net, box, query, samples=0)
    assert_brackets(res, oracle)
    assert res.details["ambiguous_leaves"] > 0
    assert res.status in ("optimal", "bounded")


# =============================================================================
# edge cases
# =============================================================================
@pytest.mark.parametrize("p", NORMS)
def test_one_affine_layer(p):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4))
    net = Network.from_params([(W, rng.normal(size=3))], ["identity"])
    region = Ball(np.zeros(4), 0.5, p)
    for query in (Query.margin(0, 2, 3, p), Query.vector(p)):
        res = bab_lipschitz(net, region, query)
        expected = float(query.local_value(W))
        assert res.status == "optimal"
        assert res.lower == pytest.approx(expected, rel=REL) and res.upper == pytest.approx(expected, rel=REL)
        assert res.details["nodes"] == 0 and res.details["unstable_neurons"] == 0
        assert_witness(net, region, query, res)


@pytest.mark.parametrize("region", [Box([-1.0, -1.0], [1.0, 1.0]), Ball([0.2, -0.1], 0.8, 1), Ball([0.2, -0.1], 0.8, 2)],
                         ids=["box", "l1", "l2"])
def test_one_hidden_neuron(region):
    net = Network.from_params([(np.array([[1.0, -2.0]]), np.array([0.3])), (np.array([[1.5], [-0.5]]), np.array([0.0, 1.0]))])
    for p in NORMS:
        for query in (Query.margin(0, 1, 2, p), Query.vector(p)):
            oracle = exact(net, region, query)
            res = bab_lipschitz(net, region, query)
            assert_matches_oracle(res, oracle)
            assert res.details["unstable_neurons"] == 1
            assert_witness(net, region, query, res)


def test_every_relu_stable_is_answered_in_one_node():
    net = random_net(2, [4, 8, 8, 3])
    x = np.random.default_rng(0).normal(size=4)
    region = Ball(x, 1e-4, INF)
    bounds = lipmip.bounds.compute(net, region, "linear")
    assert bounds.num_unstable == 0
    for query in (Query.margin(0, 1, 3), Query.vector(2)):
        res = bab_lipschitz(net, region, query, samples=0)
        assert res.status == "optimal"
        # one node: no split, no LP; its bound is exact, so the sampled centre may already close it
        assert res.details["nodes"] == 0 and res.details["lps"] == 0 and res.details["open_nodes"] == 0
        assert res.details["bound_evaluations"] <= net.depth and res.details["leaves"] <= 1
        expected = float(query.local_value(net.jacobian(x)))
        assert res.lower == pytest.approx(expected, rel=REL) and res.upper == pytest.approx(expected, rel=REL)
        assert_witness(net, region, query, res)


@pytest.mark.parametrize("seed", [0, 1])
def test_fixed_box_coordinate_is_a_constant(seed):
    net = random_net(seed, [3, 6, 5, 2])
    lo, hi = np.array([-1.0, 0.3, -0.5]), np.array([1.0, 0.3, 1.0])
    box = Box(lo, hi)
    # the same function of the two free coordinates, as its own network
    W0, b0 = net.layers[0].W, net.layers[0].b
    folded = Network([(W0[:, [0, 2]], b0 + W0[:, 1] * 0.3)] + [(layer.W, layer.b, layer.activation) for layer in net.layers[1:]])
    small = Box(lo[[0, 2]], hi[[0, 2]])
    for p in NORMS:
        for query in (Query.vector(p), Query.margin(1, 0, 2, p)):
            res = bab_lipschitz(net, box, query)
            assert_matches_oracle(res, exact(folded, small, query))
            assert res.details["fixed_coordinates"] == 1 and "constant" in res.details["note"]
            assert res.witness is None or (res.witness.a[1] == 0.3 and res.witness.b[1] == 0.3)
            assert_witness(net, box, query, res)


def test_every_coordinate_fixed():
    net = random_net(0, [2, 4, 1])
    box = Box([0.5, -0.2], [0.5, -0.2])
    res = bab_lipschitz(net, box, Query.output(0, 1))
    assert res.lower == 0.0 and res.upper < 1e-200
    assert res.details["fixed_coordinates"] == 2


def test_node_limit_zero_gives_the_root_bound():
    net = random_net(4, [3, 8, 8, 2])
    region = Box(-np.ones(3), np.ones(3))
    query = Query.margin(1, 0, 2)
    oracle = exact(net, region, query)
    res = bab_lipschitz(net, region, query, node_limit=0)
    assert res.status == "node_limit"
    assert res.details["nodes"] == 0 and res.details["lps"] == 0
    assert res.upper == res.details["root_bound"]
    assert_brackets(res, oracle)
    # the root bound is at least as tight as the plain interval-Jacobian bound
    interval = lipmip.lipschitz(net, region, query, method="interval", enumerate_unstable=0)
    assert res.upper <= interval.upper * (1 + 1e-9)
    assert res.lower == res.details["sampled_lower"]


def test_digits_demo_value():
    X, _ = lipmip.examples.digits_test_data()
    net = lipmip.examples.digits_network()
    res = bab_lipschitz(net, Ball(X[0], 0.05, "inf"), Query.margin(7, 9, 10))
    assert res.status == "optimal"
    assert res.lower == pytest.approx(313.4630539, abs=1e-7)
    assert res.upper - res.lower <= REL * res.upper
    assert res.details["lower_from"] == "bab"
    assert_witness(net, Ball(X[0], 0.05, "inf"), Query.margin(7, 9, 10), res)


# =============================================================================
# progress and interface
# =============================================================================
def test_progress_reports_sound_numbers(monkeypatch):
    monkeypatch.setattr(bab_module, "PROGRESS_EVERY", 0.0)
    net = random_net(6, [2, 8, 8, 1])
    region = Box(-np.ones(2), np.ones(2))
    query = Query.output(0, 1, 1)
    oracle = exact(net, region, query)
    calls = []
    res = bab_lipschitz(net, region, query, samples=0, progress=lambda *args: calls.append(args))
    assert_matches_oracle(res, oracle)
    assert calls
    times = [t for t, _, _ in calls]
    assert times == sorted(times)
    for _, incumbent, bound in calls:
        assert incumbent is None or incumbent <= oracle.upper * (1 + 1e-12)
        assert bound >= oracle.lower * (1 - 1e-12)


def test_progress_counts_open_nodes_when_the_callback_takes_them(monkeypatch):
    """A callback with an ``open_nodes`` keyword (as SolveProgress) gets the
    queue's size; the status line shows it."""
    from lipmip.progress import SolveProgress

    monkeypatch.setattr(bab_module, "PROGRESS_EVERY", 0.0)
    calls = []

    def progress(seconds, incumbent, bound, *, open_nodes=None):
        calls.append(open_nodes)

    bab_lipschitz(random_net(6, [2, 8, 8, 1]), Box(-np.ones(2), np.ones(2)), Query.output(0, 1, 1), samples=0,
                  progress=progress)
    assert calls and all(isinstance(n, int) and n >= 0 for n in calls) and max(calls) > 0
    line = SolveProgress("bab", enabled=False).describe(1.0, 2.0, 3.0, open_nodes=7)
    assert "open 7  incumbent 2  bound 3" in line


def test_progress_is_rate_limited(monkeypatch):
    class Clock:  # every reading of the clock advances it by 0.05 s
        now = 0.0

        def perf_counter(self) -> float:
            self.now += 0.05
            return self.now

    monkeypatch.setattr(bab_module, "time", Clock())
    net = random_net(6, [2, 8, 8, 1])
    calls = []
    bab_lipschitz(net, Box(-np.ones(2), np.ones(2)), Query.output(0, 1, 1), samples=0, progress=lambda *args: calls.append(args))
    times = [t for t, _, _ in calls]
    assert len(times) >= 2
    assert all(b - a >= bab_module.PROGRESS_EVERY for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    "options,match",
    [
        ({"node_limit": -1}, "node_limit"),
        ({"node_limit": 1.5}, "node_limit"),
        ({"time_limit": 0}, "time_limit"),
        ({"time_limit": math.nan}, "time_limit"),
        ({"max_queue": 0}, "max_queue"),
        ({"branching": "random"}, "branching"),
        ({"bounds": "exact"}, "bound method"),
        ({"vertices": 11}, "vertices"),
        ({"vertices": -1}, "vertices"),
        ({"samples": -1}, "samples"),
        ({"progress": 3}, "progress"),
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"workers": True}, "workers"),
        ({"stop": 3}, "stop"),
    ],
)
def test_bad_options(options, match):
    net = random_net(0, [2, 4, 2])
    with pytest.raises(InvalidQueryError, match=match):
        bab_lipschitz(net, Box(-np.ones(2), np.ones(2)), Query.margin(0, 1, 2), **options)


def test_bad_inputs():
    net = random_net(0, [2, 4, 2])
    box = Box(-np.ones(2), np.ones(2))
    with pytest.raises(InvalidQueryError, match="c has 3 entries"):
        bab_lipschitz(net, box, Query.margin(0, 1, 3))
    with pytest.raises(InvalidRegionError):
        bab_lipschitz(net, Box(-np.ones(3), np.ones(3)), Query.margin(0, 1, 2))
    with pytest.raises(LipmipError, match="Network"):
        bab_lipschitz("net", box, Query.margin(0, 1, 2))
    with pytest.raises(InvalidQueryError, match="Query"):
        bab_lipschitz(net, box, "margin")


@pytest.mark.parametrize("name,hi", [("iris_4_5_5_3", 1.0), ("sd_10_15_10_3", 0.1), ("sd_10_20_15_10_3", 0.1)])
def test_lipbab_networks_p_to_p_match_enumeration(shared_networks, name, hi):
    """The LipBaB benchmark networks (trained by their authors) over their
    published boxes: the p→p operator norms by branch and bound equal the
    exact enumeration, for p = 1, 2, ∞."""
    net = lipmip.load(shared_networks / "lipbab" / f"{name}.npz")
    box = lipmip.Box(np.zeros(net.input_dim), np.full(net.input_dim, hi))
    for p in (1, 2, "inf"):
        query = lipmip.Query.vector(p)
        exact = lipmip.lipschitz(net, box, query, method="enumerate")
        result = lipmip.lipschitz(net, box, query, method="bab")
        assert result.status == "optimal"
        assert result.lower <= exact.upper and exact.lower <= result.upper
        assert result.upper - result.lower <= 1e-9 * result.upper
