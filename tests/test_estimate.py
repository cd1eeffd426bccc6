"""The fast estimators of ``lipmip.estimate``: sampling (numpy and JAX),
smoothed ascent, the region walk and CLEVER, checked against the exact value
from activation-region enumeration (itself tested against analytic oracles
in test_regions.py), never against their own output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from nets import random_net, small_lipschitz_cases

import lipmip
from lipmip import Ball, Box, Query
from lipmip.cli import main
from lipmip.errors import InvalidQueryError
from lipmip.estimate import ascent_lower_bound, clever_estimate, local_values, sample_lower_bound
from lipmip.estimate.points import search_points
from lipmip.estimate.sampling import ranked_values
from lipmip.estimate.walk import project_into, region_walk
from lipmip.witness import certified_quotient

INF = math.inf
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FAST_ASCENT = {"restarts": 8, "steps": 30, "samples": 200}


def exact(net, region, query) -> float:
    r = lipmip.lipschitz(net, region, query, method="enumerate")
    assert r.upper - r.lower <= 1e-6 * max(1.0, r.upper)
    return r.upper


@SETTINGS
@given(small_lipschitz_cases())
def test_every_estimator_brackets_the_exact_value(case):
    """Certified lower bounds never exceed the exact value, whatever the
    backend; CLEVER fills neither side."""
    net, region, query = case
    value = exact(net, region, query)
    results = [
        sample_lower_bound(net, region, query, samples=300, backend="numpy"),
        sample_lower_bound(net, region, query, samples=300, backend="jax", walk=True),
        ascent_lower_bound(net, region, query, **FAST_ASCENT),
    ]
    for r in results:
        assert r.upper is None
        assert r.lower <= value, (r.method, r.details, r.lower, value)
        if r.lower > 0:
            # the witness alone proves the number, re-checked here from scratch
            assert certified_quotient(net, query, region, r.witness.a, r.witness.b) >= r.lower
    clever = clever_estimate(net, region, query, batches=5, batch_size=20)
    assert clever.lower is None and clever.upper is None and not clever.certified
    assert clever.estimate is not None and math.isfinite(clever.estimate)


# Fixed networks for the ascent's hit rate: three architectures (so JAX
# compiles three kernels per norm), ten seeds each, every norm and both query kinds.
RATE_ARCHITECTURES = ([3, 8, 8, 2], [4, 6, 6, 6, 3], [5, 10, 4])


def rate_cases():
    for sizes in RATE_ARCHITECTURES:
        for seed in range(10):
            rng = np.random.default_rng(seed)
            net = random_net(seed, sizes)
            p = (INF, 2.0, 1.0)[seed % 3]
            region = Ball(rng.normal(size=sizes[0]), 0.5, p)
            query = Query.scalar(rng.normal(size=sizes[-1]), p) if seed % 2 else Query.vector(p)
            yield net, region, query


def test_smoothed_ascent_finds_the_exact_optimum_on_at_least_90_percent():
    """The ascent alone, with its default restarts and steps (no sampling
    beyond its random starts, no walk), reaches the enumerated optimum on
    >= 90% of 30 fixed small cases."""
    hits = []
    for net, region, query in rate_cases():
        value = exact(net, region, query)
        r = ascent_lower_bound(net, region, query, samples=0, walk=False, seed=0)
        assert r.lower <= value
        hits.append(r.lower >= value * (1 - 1e-6))
    assert sum(hits) >= 0.9 * len(hits), f"ascent hit the optimum on {sum(hits)} of {len(hits)} cases"


def test_ascent_and_walk_beat_plain_sampling_on_the_digits_network():
    """On the bundled 64-input network (ℓ∞ ball) uniform sampling stays
    clearly below the exact value; the ascent gets within 2%."""
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = Ball(X[0], 0.05, "inf")
    query = Query.margin(7, 9, 10, "inf")
    value = lipmip.lipschitz(net, region, query, method="bab").upper
    uniform = local_values(net, query, region.sample(2000, np.random.default_rng(0))).max()
    ascent = ascent_lower_bound(net, region, query)
    assert uniform < 0.9 * value
    assert 0.98 * value <= ascent.lower <= value
    assert ascent.details["seconds_by_stage"].keys() == {"sample", "ascent", "walk", "certify"}


def test_jax_ranking_matches_numpy_in_float64():
    net = random_net(3, [5, 7, 6, 3], output_relu=True)
    region = Ball(np.zeros(5), 1.0, 2)
    points = region.sample(100, np.random.default_rng(1))
    free = np.ones(5, dtype=bool)
    for query in (Query.scalar([1.0, -2.0, 0.5], 2), Query.vector(INF), Query.vector(1), Query.vector(2)):
        numpy_values = local_values(net, query, points, free)
        jax_values, used = ranked_values(net, query, points, free, "jax", "float64")
        assert used == "jax-float64"
        np.testing.assert_allclose(jax_values, numpy_values, rtol=1e-12, atol=1e-12)


def test_jax_ranking_in_chunks_matches_one_call(monkeypatch):
    from lipmip.estimate import jax_values

    net = random_net(4, [4, 5, 2])
    query = Query.scalar([1.0, 1.0], INF)
    points = Box(-np.ones(4), np.ones(4)).sample(37, np.random.default_rng(2))
    free = np.ones(4, dtype=bool)
    whole, _ = ranked_values(net, query, points, free, "jax", "float64")
    monkeypatch.setattr(jax_values, "_CHUNK_FLOATS", 40)  # 10 points per chunk, the last one padded
    chunked, _ = ranked_values(net, query, points, free, "jax", "float64")
    np.testing.assert_array_equal(whole, chunked)


@pytest.mark.parametrize("region", [
    Box([0.0, -1.0, 2.0], [0.5, 1.0, 2.0]),
    Ball([1.0, 2.0, 3.0], 0.3, INF),
    Ball([1.0, 2.0, 3.0], 0.3, 2),
    Ball([1.0, 2.0, 3.0], 0.3, 1),
])
def test_search_points_lie_in_the_region_and_reach_its_boundary(region):
    points = search_points(region, 500, np.random.default_rng(0))
    assert points.shape == (501, 3)
    assert np.all(region.contains(points))
    np.testing.assert_array_equal(points[0], region.center)
    if isinstance(region, Box):
        assert np.all(points[:, 2] == 2.0)  # the fixed coordinate stays fixed
        at_corner = np.all((points[:, :2] == region.lo[:2]) | (points[:, :2] == region.hi[:2]), axis=1)
    else:
        distance = np.linalg.norm(points - region.center, ord=region.p, axis=1)
        at_corner = distance >= region.radius * (1 - 1e-9)
    assert at_corner.sum() >= 100


@pytest.mark.parametrize("p", [INF, 2.0, 1.0])
def test_project_into_lands_inside_and_keeps_inside_points(p):
    region = Ball(np.array([0.5, -1.0, 2.0, 0.0]), 0.7, p)
    rng = np.random.default_rng(5)
    outside = region.center + rng.normal(size=(200, 4)) * 3
    projected = project_into(region, outside)
    assert np.all(region.contains(projected))
    inside = region.sample(50, rng)
    np.testing.assert_array_equal(project_into(region, inside), inside)


def test_region_walk_climbs_to_the_steepest_piece():
    """f(x) = relu(x) + 2 relu(x - 1) + 4 relu(x - 2) on [-1, 3]: the slope
    grows from region to region; a walk from the left end reaches slope 7."""
    net = lipmip.Network.from_params([(np.ones((3, 1)), np.array([0.0, -1.0, -2.0])), (np.array([[1.0, 2.0, 4.0]]), [0.0])])
    region = Box([-1.0], [3.0])
    query = Query.output(0, 1, INF)
    walk = region_walk(net, query, region, np.array([[-0.5]]))
    assert walk.values[0] == 7.0 and walk.moves >= 1  # every hyperplane is a candidate: it may jump straight there
    assert walk.start_values[0] == 0.0
    assert np.all(region.contains(walk.points))
    assert list(walk.values) == sorted(walk.values, reverse=True) and len(set(walk.values)) == len(walk.values)


def test_sample_walk_never_lowers_the_bound():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    for i in range(3):
        region = Ball(X[i], 0.05, INF)
        query = Query.margin(int(np.argmax(net(X[i]))), (int(np.argmax(net(X[i]))) + 1) % 10, 10, INF)
        plain = sample_lower_bound(net, region, query, samples=500)
        walked = sample_lower_bound(net, region, query, samples=500, walk=True)
        assert walked.lower >= plain.lower
        assert walked.details["walk"]["best_value"] >= walked.details["walk"]["best_start_value"]


@pytest.mark.parametrize("sizes", [[1, 1], [1, 1, 1], [3, 1, 1], [1, 4, 1], [2, 1, 3, 1]])
def test_edge_shapes(sizes):
    """A single affine layer, one input, one hidden neuron, one output."""
    net = random_net(7, sizes)
    region = Ball(np.full(sizes[0], 0.3), 0.5, INF)
    query = Query.vector(INF) if sizes[-1] > 1 else Query.output(0, 1, INF)
    value = exact(net, region, query)
    for r in (sample_lower_bound(net, region, query, backend="jax"), ascent_lower_bound(net, region, query, **FAST_ASCENT)):
        assert r.lower <= value
        assert r.lower >= value * (1 - 1e-9) - 1e-290  # these are tiny: every piece is found
    assert clever_estimate(net, region, query, batches=4, batch_size=10).estimate >= 0


def test_single_affine_layer_is_exact():
    W = np.array([[1.0, -2.0, 3.0]])
    net = lipmip.Network.from_params([(W, [0.5])])
    region = Box(-np.ones(3), np.ones(3))
    r = ascent_lower_bound(net, region, Query.output(0, 1, INF), **FAST_ASCENT)
    assert r.lower <= 6.0 and r.lower >= 6.0 * (1 - 1e-12)


def test_estimators_are_deterministic_for_a_seed():
    net = random_net(11, [4, 8, 8, 3])
    region = Ball(np.zeros(4), 0.5, 2)
    query = Query.vector(2)
    for method in (sample_lower_bound, ascent_lower_bound, clever_estimate):
        options = FAST_ASCENT if method is ascent_lower_bound else {}
        a = method(net, region, query, seed=3, **options)
        b = method(net, region, query, seed=3, **options)
        assert (a.lower, a.estimate) == (b.lower, b.estimate)


def test_clever_is_never_a_bound_and_says_so(capsys):
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = Ball(X[0], 0.05, INF)
    query = Query.margin(7, 9, 10, INF)
    r = lipmip.lipschitz(net, region, query, method="clever")
    assert r.status == "estimate_only" and not r.certified
    assert r.to_dict()["certified"] is False and r.to_dict()["lower"] is None and r.to_dict()["upper"] is None
    assert "not a bound" in r.details["note"]
    # the reverse Weibull location is at least the largest sampled value
    assert r.estimate >= r.details["largest_sampled_value"]
    code = main(["bound", "lipmip/data/digits_mlp.npz", "--center", "lipmip/data/digits_test.npz", "--index", "0",
                 "--radius", "0.05", "--margin", "7,9", "--method", "clever", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["certified"] is False and out["lower"] is None and out["upper"] is None


def test_cli_ascent(capsys):
    code = main(["bound", "lipmip/data/digits_mlp.npz", "--center", "lipmip/data/digits_test.npz", "--index", "0",
                 "--radius", "0.05", "--margin", "7,9", "--method", "ascent", "--restarts", "8", "--steps", "20",
                 "--json", "--witness"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "ascent" and out["certified"] is True and out["upper"] is None
    assert out["details"]["restarts"] == 8 and out["details"]["steps"] == 20
    net = lipmip.examples.digits_network()
    region = Ball(lipmip.examples.digits_test_data()[0][0], 0.05, INF)
    w = out["witness"]
    assert certified_quotient(net, Query.margin(7, 9, 10, INF), region, np.array(w["a"]), np.array(w["b"])) >= out["lower"]


@pytest.mark.parametrize("method, options, needle", [
    (ascent_lower_bound, {"restarts": 0}, "restarts"),
    (ascent_lower_bound, {"steps": 1.5}, "steps"),
    (ascent_lower_bound, {"dtype": "float16"}, "dtype"),
    (sample_lower_bound, {"backend": "gpu"}, "backend"),
    (sample_lower_bound, {"samples": -1}, "samples"),
    (sample_lower_bound, {"backend": "jax", "dtype": "bfloat16"}, "dtype"),
    (clever_estimate, {"batches": 1}, "batches"),
    (clever_estimate, {"batch_size": 0}, "batch_size"),
])
def test_bad_options_are_refused(method, options, needle):
    net = random_net(1, [2, 3, 1])
    with pytest.raises(InvalidQueryError, match=needle):
        method(net, Ball(np.zeros(2), 0.1, INF), Query.output(0, 1, INF), **options)


@SETTINGS
@given(small_lipschitz_cases())
def test_enumerating_unstable_slopes_stays_sound_and_only_tightens(case):
    net, region, query = case
    value = exact(net, region, query)
    plain = lipmip.lipschitz(net, region, query, method="interval", enumerate_unstable=0).upper
    for k in (1, 3, 12):
        r = lipmip.lipschitz(net, region, query, method="interval", enumerate_unstable=k)
        assert value <= r.upper <= plain
        assert r.details["enumerated"] <= min(k, r.details["unstable_relus"])


def test_enumerated_interval_bound_on_acas_xu_boxes(shared_networks):
    """ACAS Xu: the plain interval bound is 9 to 43 times the exact value on
    ±0.02 boxes; enumerating the slopes of the weightiest unstable neurons
    brings it within 3 times."""
    lo = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
    hi = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])
    for name in ("ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_3_3_batch_2000.onnx"):
        net = lipmip.load(shared_networks / "acasxu" / name)
        for point in (0, 1):
            x = lo + (hi - lo) * np.random.default_rng(point).random(5)
            region = Box(np.maximum(x - 0.02, lo), np.minimum(x + 0.02, hi))
            order = np.argsort(net(x))
            query = Query.margin(int(order[0]), int(order[1]), 5, INF)
            value = lipmip.lipschitz(net, region, query, method="bab").upper
            upper = lipmip.lipschitz(net, region, query, method="interval").upper
            assert value <= upper <= 3 * value


def test_enumerate_unstable_is_checked():
    net = random_net(1, [2, 3, 1])
    for bad in (-1, 15, 2.0, True):
        with pytest.raises(InvalidQueryError, match="enumerate_unstable"):
            lipmip.lipschitz(net, Ball(np.zeros(2), 0.1, INF), Query.output(0, 1, INF), method="interval",
                             enumerate_unstable=bad)
