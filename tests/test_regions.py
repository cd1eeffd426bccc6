"""Activation-region enumeration and the exact Lipschitz constant it gives.

Oracles, independent of lipmip.regions:

* 1-D inputs: every breakpoint of the network on an interval, computed layer
  by layer in exact rational arithmetic (``fractions.Fraction`` of the float64
  weights); the activation pattern at each piece's midpoint. An activation
  region is the set of inputs with one pattern, which is convex (with the
  earlier layers' pattern fixed, each neuron's sign condition is a half-space),
  so a pattern cannot occur on two separate intervals: the number of regions
  is the number of distinct patterns.
* 2-D inputs: the patterns on a dense grid must all be enumerated, and every
  enumerated region's point must carry the pattern it claims.
* Any dimension: sampled local values can only under-estimate the constant;
  folding fixed box coordinates into the bias must change nothing; the
  published LipBaB values (shared networks) must lie in [lower, upper].
"""

from __future__ import annotations

import inspect
import math
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import random_net

import lipmip
import lipmip.bounds
from lipmip import Ball, Box, Network, Query
from lipmip.errors import InvalidQueryError, InvalidRegionError, RegionLimitError
from lipmip.regions import (
    AmbiguousRegionsError,
    RegionEnumerator,
    count_regions,
    enumerate_regions,
    exact_lipschitz_by_enumeration,
)

INF = math.inf
NORMS = [1.0, 2.0, INF]
REL = 1e-9

PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# =============================================================================
# helpers
# =============================================================================
def key(pattern) -> bytes:
    return np.concatenate([np.asarray(p, dtype=bool) for p in pattern]).tobytes()


def float_patterns(net: Network, X: np.ndarray) -> np.ndarray:
    """Activation pattern of each row of X (identity layers all True)."""
    cols = []
    for z, layer in zip(net.pre_activations(X), net.layers):
        cols.append(z > 0 if layer.activation.name == "relu" else np.ones_like(z, dtype=bool))
    return np.concatenate(cols, axis=-1)


def sampled_local_values(net: Network, query: Query, X: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    J = net.jacobian(X)
    if free is not None:
        J = J * free
    return np.asarray(query.local_value(J))


def queries_for(m: int, rng: np.random.Generator) -> list[Query]:
    out = []
    for p in NORMS:
        out.append(Query.scalar(rng.normal(size=m), p))
        out.append(Query.vector(p))
    return out


def region_of(kind: str, n: int, rng: np.random.Generator):
    c = rng.uniform(-0.5, 0.5, size=n)
    if kind == "box":
        return Box(c - rng.uniform(0.3, 1.5, size=n), c + rng.uniform(0.3, 1.5, size=n))
    return Ball(c, rng.uniform(0.5, 2.0), {"l1": 1, "l2": 2, "linf": INF}[kind])


def assert_exact(result: lipmip.LipschitzBound) -> None:
    assert result.lower is not None and result.upper is not None
    assert 0.0 <= result.lower <= result.upper
    assert result.upper - result.lower <= REL * max(result.upper, 1e-300) + 1e-300, result
    assert result.status == "exact"
    assert result.method == "enumerate"


# =============================================================================
# 1-D oracle: exact breakpoints
# =============================================================================
class ExactNet:
    """The network in rational arithmetic (the float64 weights are exact rationals)."""

    def __init__(self, net: Network):
        self.layers = [
            ([[Fr(float(w)) for w in row] for row in layer.W], [Fr(float(v)) for v in layer.b], layer.activation.name)
            for layer in net.layers
        ]

    def pre_activations(self, x: list[Fr]) -> list[list[Fr]]:
        out, h = [], x
        for W, b, act in self.layers:
            z = [sum((w * v for w, v in zip(row, h)), bi) for row, bi in zip(W, b)]
            out.append(z)
            h = [max(v, Fr(0)) for v in z] if act == "relu" else z
        return out


def oracle_patterns_1d(net: Network, lo: float, hi: float) -> set[bytes]:
    """Distinct activation patterns on [lo, hi] from the exact breakpoints."""
    exact = ExactNet(net)
    pieces = [(Fr(lo), Fr(hi))]
    for k, layer in enumerate(net.layers):
        if layer.activation.name != "relu":
            continue
        split = []
        for a, b in pieces:
            za, zb = exact.pre_activations([a])[k], exact.pre_activations([b])[k]
            # on (a, b) the earlier layers' pattern is fixed, so z_k is affine there
            cuts = sorted({a + (b - a) * u / (u - v) for u, v in zip(za, zb) if u * v < 0})
            ends = [a, *cuts, b]
            split.extend(zip(ends[:-1], ends[1:]))
        pieces = split
    patterns = set()
    for a, b in pieces:
        zs = exact.pre_activations([(a + b) / 2])
        bits = [
            np.array([v > 0 if layer.activation.name == "relu" else True for v in z], dtype=bool)
            for z, layer in zip(zs, net.layers)
        ]
        patterns.add(key(bits))
    return patterns


def test_1d_oracle_hand_computed():
    # f(x) = relu(x) + relu(-x) - relu(x - 1) on [-2, 2]: kinks at 0 and 1, three patterns
    net = Network.from_params(
        [(np.array([[1.0], [-1.0], [1.0]]), np.array([0.0, 0.0, -1.0])), (np.array([[1.0, 1.0, -1.0]]), np.zeros(1))]
    )
    assert len(oracle_patterns_1d(net, -2.0, 2.0)) == 3
    regions = enumerate_regions(net, Box(-2.0, 2.0))
    assert len(regions) == 3 and all(r.certified_interior for r in regions)
    res = exact_lipschitz_by_enumeration(net, Box(-2.0, 2.0), Query.output(0, 1))
    assert res.lower <= 1.0 <= res.upper
    assert_exact(res)


@settings(PROPERTY, max_examples=30)
@given(
    seed=st.integers(0, 10_000),
    sizes=st.sampled_from([(1, 4, 1), (1, 5, 4, 2), (1, 3, 3, 3, 1), (1, 6, 6, 1)]),
    output_relu=st.booleans(),
    style=st.sampled_from(["gauss", "int", "nobias"]),
)
def test_1d_region_count_equals_exact_breakpoint_oracle(seed, sizes, output_relu, style):
    net = random_net(seed, sizes, output_relu=output_relu, style=style)
    lo, hi = (-2.0, 1.5) if seed % 2 else (-1.0, 2.0)  # integer nets: breakpoints at the ends too
    expected = oracle_patterns_1d(net, lo, hi)
    regions = enumerate_regions(net, Box(lo, hi))
    assert all(r.certified_interior for r in regions)
    found = [key(r.pattern) for r in regions]
    assert len(found) == len(set(found)), "a pattern was enumerated twice"
    assert set(found) == expected
    assert count_regions(net, Box(lo, hi)) == len(expected)


def test_1d_identity_hidden_layer_does_not_branch():
    net = random_net(3, (1, 5, 4, 1), identity_hidden=0)
    regions = enumerate_regions(net, Box(-3.0, 3.0))
    assert {key(r.pattern) for r in regions} == oracle_patterns_1d(net, -3.0, 3.0)
    assert all(r.pattern[0].all() for r in regions)


# =============================================================================
# 2-D: dense grid
# =============================================================================
def grid_patterns(net: Network, box: Box, n: int = 400) -> set[bytes]:
    xs = np.linspace(box.lo[0], box.hi[0], n)
    ys = np.linspace(box.lo[1], box.hi[1], n)
    X = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    zs = np.concatenate(net.pre_activations(X), axis=-1)
    clear = np.min(np.abs(zs), axis=1) > 1e-9  # points right on a boundary are left out
    return {row.tobytes() for row in float_patterns(net, X[clear])}


def assert_point_has_pattern(net: Network, region, r) -> None:
    assert region.contains(r.point)
    zs = net.pre_activations(r.point)
    for z, bits, layer in zip(zs, r.pattern, net.layers):
        if layer.activation.name == "relu":
            assert np.all(z[bits] >= 0) and np.all(z[~bits] <= 0)
        else:
            assert bits.all()
    np.testing.assert_allclose(net.jacobian(r.point), r.jacobian, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net(r.point), r.jacobian @ r.point + r.offset, rtol=1e-9, atol=1e-9)


@settings(PROPERTY, max_examples=20)
@given(
    seed=st.integers(0, 10_000),
    sizes=st.sampled_from([(2, 6, 1), (2, 5, 5, 2), (2, 4, 4, 4, 1)]),
    style=st.sampled_from(["gauss", "int", "nobias"]),
)
def test_2d_grid_patterns_are_all_enumerated(seed, sizes, style):
    net = random_net(seed, sizes, output_relu=seed % 3 == 0, style=style)
    box = Box([-1.0, -0.5], [1.5, 1.0])
    regions = enumerate_regions(net, box)
    found = {key(r.pattern) for r in regions}
    assert len(found) == len(regions)
    assert grid_patterns(net, box) <= found
    for r in regions:
        assert r.certified_interior and r.slack > 0
        assert_point_has_pattern(net, box, r)


@pytest.mark.parametrize("p", NORMS)
def test_2d_ball_regions_cover_sampled_patterns(p):
    net = random_net(11, (2, 6, 5, 1))
    ball = Ball([0.2, -0.1], 1.3, p)
    regions = enumerate_regions(net, ball)
    found = {key(r.pattern) for r in regions}
    X = ball.sample(40_000, np.random.default_rng(0))
    assert {row.tobytes() for row in float_patterns(net, X)} <= found
    for r in regions:
        assert r.certified_interior
        assert_point_has_pattern(net, ball, r)


# =============================================================================
# exactness of the Lipschitz constant
# =============================================================================
@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    sizes=st.sampled_from([(2, 5, 1), (3, 5, 4, 2), (2, 4, 4, 3), (4, 6, 3)]),
    kind=st.sampled_from(["box", "l1", "l2", "linf"]),
)
def test_exact_value_on_random_nets(seed, sizes, kind):
    rng = np.random.default_rng(seed)
    net = random_net(seed, sizes, output_relu=seed % 4 == 0)
    region = region_of(kind, sizes[0], rng)
    regions = enumerate_regions(net, region)
    X = np.vstack([region.sample(3000, rng), [r.point for r in regions]])
    for query in queries_for(sizes[-1], rng):
        res = exact_lipschitz_by_enumeration(net, region, query)
        assert_exact(res)
        assert res.upper >= sampled_local_values(net, query, X).max()
        assert res.details["regions"] == len(regions)
        assert res.details["ambiguous_regions"] == 0
        # the maximum is attained at the interior point of some region
        best = max(regions, key=lambda r: float(query.local_value(r.jacobian)))
        at_point = float(query.local_value(net.jacobian(best.point)))
        assert res.lower <= at_point * (1 + 1e-12) and at_point <= res.upper


def test_l2_ball_in_higher_dimension_uses_cutting_planes():
    net = random_net(5, (5, 8, 6, 2))
    ball = Ball(np.full(5, 0.1), 1.0, 2)
    enumerator = RegionEnumerator(net, ball)
    regions = enumerator.run()
    assert all(r.certified_interior and ball.contains(r.point) for r in regions)
    assert enumerator.stats.lp_solves > enumerator.stats.lps  # some LPs needed extra tangent cuts
    X = np.vstack([ball.sample(20_000, np.random.default_rng(1)), [r.point for r in regions]])
    assert {row.tobytes() for row in float_patterns(net, X)} <= {key(r.pattern) for r in regions}
    for p in NORMS:
        res = exact_lipschitz_by_enumeration(net, ball, Query.vector(p))
        assert_exact(res)
        assert res.upper >= sampled_local_values(net, Query.vector(p), X).max()


def test_witness_reproduces_the_value():
    net = random_net(2, (3, 6, 4, 2))
    box = Box(-np.ones(3), np.ones(3))
    res = exact_lipschitz_by_enumeration(net, box, Query.margin(0, 1, 2, 2))
    assert_exact(res)
    w = res.witness
    assert box.contains(w.a) and box.contains(w.b) and w.value == res.lower
    quotient = abs(float(Query.margin(0, 1, 2, 2).apply(net(w.a) - net(w.b)))) / np.linalg.norm(w.a - w.b)
    assert quotient >= res.lower


# =============================================================================
# degenerate regions and neurons
# =============================================================================
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_box_coordinates_match_the_folded_network(seed):
    net = random_net(seed, (3, 6, 5, 2))
    lo, hi = np.array([-1.0, 0.3, -0.5]), np.array([1.0, 0.3, 1.0])
    box = Box(lo, hi)
    # the same function of the two free coordinates, as its own network
    W0, b0 = net.layers[0].W, net.layers[0].b
    folded = Network([(W0[:, [0, 2]], b0 + W0[:, 1] * 0.3)] + [(l.W, l.b, l.activation) for l in net.layers[1:]])
    small = Box(lo[[0, 2]], hi[[0, 2]])
    assert count_regions(net, box) == count_regions(folded, small)
    for r in enumerate_regions(net, box):
        assert r.point[1] == 0.3
    for p in NORMS:
        for q in (Query.vector(p), Query.output(1, 2, p)):
            a = exact_lipschitz_by_enumeration(net, box, q)
            b = exact_lipschitz_by_enumeration(folded, small, q)
            assert_exact(a)
            assert a.upper == pytest.approx(b.upper, rel=1e-9)


def test_box_with_every_coordinate_fixed():
    net = random_net(0, (2, 4, 1))
    box = Box([0.5, -0.2], [0.5, -0.2])
    regions = enumerate_regions(net, box)
    assert len(regions) == 1 and regions[0].certified_interior
    res = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1))
    assert res.lower == 0.0 and res.upper < 1e-200


def test_dead_and_zero_neurons():
    # neuron 0 has zero weights and bias (z ≡ 0), neuron 1 is dead, the rest are generic
    rng = np.random.default_rng(4)
    W1 = rng.normal(size=(5, 2))
    b1 = rng.normal(size=5) * 0.3
    W1[0], b1[0] = 0.0, 0.0
    W1[1], b1[1] = [0.1, 0.1], -5.0
    W2 = rng.normal(size=(3, 5))
    net = Network.from_params([(W1, b1), (W2, np.zeros(3)), (rng.normal(size=(1, 3)), np.zeros(1))])
    reduced = Network.from_params([(W1[2:], b1[2:]), (W2[:, 2:], np.zeros(3)), (net.layers[2].W, np.zeros(1))])
    box = Box([-1.0, -1.0], [1.0, 1.0])
    regions = enumerate_regions(net, box)
    assert len(regions) == count_regions(reduced, box)
    for r in regions:
        assert not r.pattern[0][0] and not r.pattern[0][1]
        assert_point_has_pattern(net, box, r)
    for p in NORMS:
        a = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1, p))
        b = exact_lipschitz_by_enumeration(reduced, box, Query.output(0, 1, p))
        assert_exact(a)
        assert a.upper == pytest.approx(b.upper, rel=1e-12)


def test_hyperplanes_on_the_region_boundary():
    # relu(x) and relu(y) on [0, 1]^2 are 0 only on the boundary: one region, no ambiguity
    net = Network.from_params([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    box = Box([0.0, 0.0], [1.0, 1.0])
    regions = enumerate_regions(net, box)
    assert len(regions) == 1 and regions[0].certified_interior
    assert regions[0].pattern[0].tolist() == [True, True]
    res = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1, INF))
    assert res.lower <= 2.0 <= res.upper
    assert_exact(res)


def test_coincident_hyperplanes_in_a_deeper_layer():
    # layer 2 holds a neuron and its exact negative: their hyperplanes coincide
    rng = np.random.default_rng(9)
    W1, b1 = rng.normal(size=(4, 2)), rng.normal(size=4) * 0.3
    w2 = rng.normal(size=4)
    W2, b2 = np.vstack([w2, -w2, 2 * w2]), np.array([0.25, -0.25, 0.5])
    net = Network.from_params([(W1, b1), (W2, b2), (rng.normal(size=(1, 3)), np.zeros(1))])
    single = Network.from_params([(W1, b1), (W2[:1], b2[:1]), (np.ones((1, 1)), np.zeros(1))])
    box = Box([-1.0, -1.0], [1.0, 1.0])
    regions = enumerate_regions(net, box)
    assert all(r.certified_interior for r in regions)
    assert len(regions) == count_regions(single, box)
    for r in regions:
        assert r.pattern[1][0] == r.pattern[1][2] != r.pattern[1][1]
        assert_point_has_pattern(net, box, r)


@pytest.mark.parametrize("region", [Box([-1.0, -1.0], [1.0, 1.0]), Ball([0.0, 0.0], 1.0, 1), Ball([0.0, 0.0], 1.0, 2),
                                    Ball([0.0, 0.0], 1.0, INF)], ids=["box", "l1", "l2", "linf"])
def test_zero_bias_cones_are_settled_exactly(region):
    # every first-layer hyperplane passes through the centre, where most sign
    # combinations meet in a single point: those cells are proved empty, not kept
    net = random_net(0, (2, 6, 5, 1), style="nobias")
    enumerator = RegionEnumerator(net, region)
    regions = enumerator.run()
    assert enumerator.stats.ambiguous == 0 and enumerator.stats.pruned_exactly > 0
    X = region.sample(50_000, np.random.default_rng(2))
    assert {row.tobytes() for row in float_patterns(net, X)} == {key(r.pattern) for r in regions}
    for p in NORMS:
        assert_exact(exact_lipschitz_by_enumeration(net, region, Query.vector(p)))


def test_gradient_that_cancels_only_in_float64_is_refined():
    # 0.1 * 3 - 0.30000000000000004 * 1 is 0 in float64 but exactly -2**-55:
    # the second layer's neuron is 2**-55 (1.5 - x), with a kink at x = 1.5
    net = Network.from_params(
        [(np.array([[3.0], [1.0]]), np.zeros(2)), (np.array([[0.1, -0.30000000000000004]]), np.array([1.5 * 2.0**-55])),
         (np.ones((1, 1)), np.zeros(1))]
    )
    assert net.layers[1].W @ (net.layers[0].W[:, 0]) == 0.0
    box = Box(1.0, 2.0)
    expected = oracle_patterns_1d(net, 1.0, 2.0)
    assert len(expected) == 2
    regions = enumerate_regions(net, box)
    assert {key(r.pattern) for r in regions} == expected and len(regions) == 2
    assert all(r.certified_interior for r in regions)
    res = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1))
    assert res.lower <= 2.0**-55 <= res.upper


def test_whole_layer_dead_makes_later_neurons_constant():
    W1 = np.array([[1.0, 0.5], [-0.5, 1.0]])
    W2, b2 = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0.5, -0.25])
    net = Network.from_params([(W1, np.array([-10.0, -10.0])), (W2, b2), (np.ones((1, 2)), np.zeros(1))])
    box = Box([-1.0, -1.0], [1.0, 1.0])
    regions = enumerate_regions(net, box)
    assert len(regions) == 1
    assert regions[0].pattern[1].tolist() == [True, False]
    res = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1))
    assert res.lower == 0.0 and res.upper < 1e-200


# =============================================================================
# LipBaB networks (shared, optional)
# =============================================================================
# Values from LipBaB (Bhowmick et al., ICANN 2021) as quoted in tsplittg/ExLipBaB_Code,
# applications/lipbab_comparison.py (commit 83d8d076fe7acddc385699e82f08a30bef95a60b, MIT):
# max over the box of the p→p norm of the logits' Jacobian.
LIPBAB_PUBLISHED = {
    ("iris_4_5_5_3", 1.0): 5.958048912394726,
    ("iris_4_5_5_3", 2.0): 6.771454513402937,
    ("iris_4_5_5_3", INF): 12.605085581416922,
    ("sd_10_15_10_3", 1.0): 10.41286850374477,
    ("sd_10_15_10_3", 2.0): 9.530716922306004,
    ("sd_10_15_10_3", INF): 16.274810805318676,
}


@pytest.mark.parametrize(
    "name,hi,expected_regions", [("iris_4_5_5_3", 1.0, 16), ("sd_10_15_10_3", 0.1, 12)]
)
def test_lipbab_networks_match_published_values(shared_networks, name, hi, expected_regions):
    net = lipmip.load(shared_networks / "lipbab" / f"{name}.npz")
    box = Box(np.zeros(net.input_dim), np.full(net.input_dim, hi))
    assert count_regions(net, box) == expected_regions
    X = box.sample(20_000, np.random.default_rng(0))
    for p in NORMS:
        res = exact_lipschitz_by_enumeration(net, box, Query.vector(p))
        print(f"{name} p={p}: [{res.lower!r}, {res.upper!r}] {res.details['regions']} regions, {res.seconds:.3f} s")
        assert_exact(res)
        published = LIPBAB_PUBLISHED[(name, p)]
        assert res.lower <= published * (1 + REL) and published <= res.upper * (1 + REL)
        assert res.upper >= sampled_local_values(net, Query.vector(p), X).max()


# =============================================================================
# interface
# =============================================================================
def test_enumerator_is_deterministic_and_reusable():
    net = random_net(3, (2, 6, 4, 2))
    box = Box(-np.ones(2), np.ones(2))
    enumerator = RegionEnumerator(net, box)
    first = [r.pattern_key() for r in enumerator]
    stats = enumerator.stats.to_dict()
    assert [r.pattern_key() for r in enumerator] == first
    assert enumerator.stats.to_dict()["regions"] == stats["regions"] == len(first)
    assert [r.pattern_key() for r in enumerate_regions(net, box)] == first


def test_given_bounds_are_used():
    net = random_net(4, (2, 6, 4, 1))
    box = Box(-np.ones(2), np.ones(2))
    loose = lipmip.bounds.compute(net, box, "interval")
    with_loose = RegionEnumerator(net, box, bounds=loose)
    assert with_loose.stats.unstable_neurons == loose.num_unstable
    assert {r.pattern_key() for r in with_loose} == {r.pattern_key() for r in enumerate_regions(net, box)}
    with pytest.raises(InvalidQueryError, match="bounds"):
        enumerate_regions(net, box, bounds=lipmip.bounds.compute(random_net(4, (2, 5, 1)), box, "interval"))


def test_options_are_keyword_only_for_the_api():
    params = inspect.signature(exact_lipschitz_by_enumeration).parameters
    keyword_only = [name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only == ["max_regions", "time_limit"]


# =============================================================================
# bad input and limits
# =============================================================================
def test_region_of_wrong_dimension():
    net = random_net(0, (2, 4, 1))
    with pytest.raises(InvalidRegionError, match="dimension 3"):
        enumerate_regions(net, Box(np.zeros(3), np.ones(3)))
    with pytest.raises(InvalidRegionError):
        exact_lipschitz_by_enumeration(net, Ball(np.zeros(1), 1.0), Query.output(0, 1))
    with pytest.raises(InvalidRegionError):
        enumerate_regions(net, "not a region")


def test_query_that_does_not_fit():
    net = random_net(0, (2, 4, 1))
    with pytest.raises(InvalidQueryError):
        exact_lipschitz_by_enumeration(net, Box(-np.ones(2), np.ones(2)), Query.scalar([1.0, 2.0]))
    with pytest.raises(InvalidQueryError):
        exact_lipschitz_by_enumeration(net, Box(-np.ones(2), np.ones(2)), "inf")


def test_region_limit():
    net = random_net(7, (2, 8, 8, 1))
    box = Box(-np.ones(2), np.ones(2))
    total = count_regions(net, box)
    assert total > 3
    assert len(enumerate_regions(net, box, max_regions=total)) == total
    with pytest.raises(RegionLimitError, match=r"more than max_regions=3 regions \(4 so far.*exponential"):
        enumerate_regions(net, box, max_regions=3)
    with pytest.raises(RegionLimitError, match="max_regions=1"):
        exact_lipschitz_by_enumeration(net, box, Query.output(0, 1), max_regions=1)


def test_time_limit():
    net = random_net(8, (6, 16, 16, 1))
    box = Box(-np.ones(6), np.ones(6))
    with pytest.raises(RegionLimitError, match=r"time_limit of 0\.01 s.*regions found so far.*exponential"):
        enumerate_regions(net, box, time_limit=0.01)
    with pytest.raises(RegionLimitError, match="time_limit"):
        exact_lipschitz_by_enumeration(net, box, Query.output(0, 1), time_limit=0.01)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", float("nan")])
def test_bad_max_regions(bad):
    net = random_net(0, (2, 4, 1))
    with pytest.raises(InvalidQueryError, match="max_regions"):
        enumerate_regions(net, Box(-np.ones(2), np.ones(2)), max_regions=bad)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "1", True])
def test_bad_time_limit(bad):
    net = random_net(0, (2, 4, 1))
    with pytest.raises(InvalidQueryError, match="time_limit"):
        enumerate_regions(net, Box(-np.ones(2), np.ones(2)), time_limit=bad)


def test_count_regions_refuses_when_a_cell_is_ambiguous(monkeypatch):
    net = random_net(1, (2, 6, 1))
    box = Box(-np.ones(2), np.ones(2))
    total = count_regions(net, box)
    # make certification impossible: every LP child becomes ambiguous
    from lipmip.regions import geometry

    monkeypatch.setattr(geometry.RegionGeometry, "region_slack", lambda self, x: 0.0 if not np.all(x == self.center) else 1.0)
    with pytest.raises(AmbiguousRegionsError, match="between"):
        count_regions(net, box)
    certified = count_regions(net, box, strict=False)
    assert certified < total <= len(enumerate_regions(net, box))
    res = exact_lipschitz_by_enumeration(net, box, Query.output(0, 1))
    assert res.details["ambiguous_regions"] > 0
    assert res.lower <= res.upper
