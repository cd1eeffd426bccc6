"""LP-based bound tightening (``lipmip.bounds.lp``): soundness against sampled
points, nesting inside the linear and interval bounds, agreement with an
independent LP solve, the ℓ2 cutting planes, the MILP option, the rounding
safety of the computed constraints (checked in exact rationals), and a real
MNIST network."""

from __future__ import annotations

import math
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import lipmip
from lipmip import Ball, Box, Network
from lipmip.bounds import compute
from lipmip.bounds.interval import interval_bounds
from lipmip.bounds.linear import linear_bounds
from lipmip.bounds.lp import _chord, _L2Cuts, lp_bounds
from lipmip.errors import InvalidQueryError

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TOL = 1e-9


# ============================================================================ helpers
def random_net(rng: np.random.Generator, widths: list[int], output_relu: bool, identity_p: float = 0.0,
               scale: float = 1.0) -> Network:
    """ReLU hidden layers (each an identity with probability ``identity_p``)."""
    acts = ["identity" if rng.random() < identity_p else "relu" for _ in widths[2:]]
    acts.append("relu" if output_relu else "identity")
    params = [
        (scale * rng.standard_normal((o, i)) / math.sqrt(i), 0.5 * rng.standard_normal(o))
        for i, o in zip(widths[:-1], widths[1:])
    ]
    return Network.from_params(params, acts)


def random_region(rng: np.random.Generator, kind: str, n: int, radius: float):
    center = rng.standard_normal(n)
    if kind == "box":
        return Box(center - radius * rng.random(n), center + radius * rng.random(n))
    return Ball(center, radius, kind)


def points(region, rng: np.random.Generator, n: int = 1000) -> np.ndarray:
    """``n`` uniform samples plus the extreme points the bounds are most
    likely to be wrong at: box corners, ℓ1 vertices, ℓ2 axis points."""
    pts = [region.sample(n, rng)]
    d = region.dim
    if isinstance(region, Box):
        pts.append(np.where(rng.random((64, d)) < 0.5, region.lo, region.hi))
    elif region.p == math.inf:
        pts.append(region.center + region.radius * np.where(rng.random((64, d)) < 0.5, -1.0, 1.0))
    else:
        eye = np.eye(d) * region.radius
        pts.append(np.vstack([region.center + eye, region.center - eye]))
    return np.vstack(pts)


def assert_contains(bounds, pts: np.ndarray, tol: float = TOL) -> None:
    for k, z in enumerate(bounds.net.pre_activations(pts)):
        assert np.all(z >= bounds.lower[k] - tol), (bounds.method, k, float((bounds.lower[k] - z).max()))
        assert np.all(z <= bounds.upper[k] + tol), (bounds.method, k, float((z - bounds.upper[k]).max()))


def assert_nested(inner, outer) -> None:
    for k in range(len(inner.lower)):
        assert np.all(inner.lower[k] >= outer.lower[k]), (inner.method, outer.method, k)
        assert np.all(inner.upper[k] <= outer.upper[k]), (inner.method, outer.method, k)


def relu_unstable(bounds) -> list[np.ndarray]:
    return list(bounds.unstable)


def assert_tighter_where_open(tight, loose, tol: float = 1e-7) -> None:
    """``tight`` at least as tight as ``loose`` up to ``tol`` (relative) on the
    ReLU neurons still unstable in ``tight`` (both of their sides were
    solved), and no neuron unstable in ``tight`` but stable in ``loose``."""
    for k in range(1, len(tight.lower)):
        u = tight.unstable[k]
        assert not np.any(u & ~loose.unstable[k]), k
        lo, hi = tight.lower[k][u], tight.upper[k][u]
        slack = tol * (1.0 + np.abs(loose.lower[k][u]) + np.abs(loose.upper[k][u]))
        assert np.all(lo >= loose.lower[k][u] - slack), k
        assert np.all(hi <= loose.upper[k][u] + slack), k


@st.composite
def cases(draw, kinds=("box", 1.0, 2.0, math.inf)):
    """A random network (depth 1-4, width 1-12, input 1-4), a region, an rng.

    Hypothesis draws only the seed, the region kind and the scales; the sizes
    come from the seeded generator, so that the (derandomised) examples cover
    the sizes evenly instead of favouring the smallest networks."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    depth = int(rng.integers(1, 5))
    widths = [int(rng.integers(1, 5))] + [int(rng.integers(1, 13)) for _ in range(depth - 1)] + [int(rng.integers(1, 4))]
    net = random_net(rng, widths, draw(st.booleans()), identity_p=0.2, scale=draw(st.sampled_from([0.5, 1.0, 3.0])))
    kind = draw(st.sampled_from(kinds))
    region = random_region(rng, kind, widths[0], float(draw(st.sampled_from([0.05, 0.3, 1.0, 3.0]))))
    return net, region, rng


# ============================================================================ soundness and nesting
@SETTINGS
@given(cases())
def test_lp_bounds_hold_at_sampled_points_and_nest(case):
    net, region, rng = case
    ibp = interval_bounds(net, region)
    lin = linear_bounds(net, region)
    lp = lp_bounds(net, region)
    assert lp.method == "lp"
    assert_contains(lp, points(region, rng))
    assert_nested(lp, lin)
    assert_nested(lin, ibp)
    assert lp.num_unstable <= lin.num_unstable <= ibp.num_unstable
    assert lp.details["timed_out"] is False
    assert lp.details["unstable_before"] == lin.num_unstable
    # layer 0 is exact already and never re-solved
    assert np.array_equal(lp.lower[0], lin.lower[0]) and np.array_equal(lp.upper[0], lin.upper[0])


def test_identity_layers_and_stable_neurons_keep_their_bounds(rng):
    net = random_net(rng, [3, 8, 8, 8, 2], output_relu=False, identity_p=0.5)
    region = Box(-np.ones(3), np.ones(3))
    lin = linear_bounds(net, region)
    lp = lp_bounds(net, region)
    for k, layer in enumerate(net.layers):
        keep = ~lin.unstable[k]
        assert np.array_equal(lp.lower[k][keep], lin.lower[k][keep]), k
        assert np.array_equal(lp.upper[k][keep], lin.upper[k][keep]), k
        if layer.activation.name == "identity":
            assert np.array_equal(lp.lower[k], lin.lower[k])


def test_compute_dispatches_to_lp_with_options(rng):
    net = random_net(rng, [2, 6, 6, 1], output_relu=True)
    region = Ball(np.zeros(2), 1.0, 1)
    via_compute = compute(net, region, "lp", time_limit=60.0)
    direct = lp_bounds(net, region)
    assert via_compute.method == "lp"
    for a, b in zip(via_compute.lower + via_compute.upper, direct.lower + direct.upper):
        np.testing.assert_array_equal(a, b)


def test_base_bounds_are_only_tightened(rng):
    net = random_net(rng, [3, 10, 10, 10, 2], output_relu=True, scale=2.0)
    region = Box(-np.ones(3), np.ones(3))
    ibp = interval_bounds(net, region)
    from_ibp = lp_bounds(net, region, base=ibp)
    assert from_ibp.details["base"] == "interval"
    assert_nested(from_ibp, ibp)
    assert_contains(from_ibp, points(region, rng))


# ============================================================================ tightness
def _triangle_lp_range(W0, b0, W1_row, b1, region: Box, lo0, hi0) -> tuple[float, float]:
    """min and max of ``W1_row · relu~(W0 x + b0) + b1`` over the triangle
    relaxation, built independently and solved by scipy's linprog."""
    n, m = W0.shape[1], W0.shape[0]
    nv = n + 2 * m  # x, z, h
    X, Z, H = np.arange(n), n + np.arange(m), n + m + np.arange(m)
    A_eq, b_eq, A_ub, b_ub = [], [], [], []
    bounds = [(region.lo[i], region.hi[i]) for i in range(n)] + [(lo0[j], hi0[j]) for j in range(m)]
    h_bounds = []
    for j in range(m):
        row = np.zeros(nv)
        row[Z[j]], row[X] = 1.0, -W0[j]
        A_eq.append(row)
        b_eq.append(b0[j])
        row = np.zeros(nv)
        row[H[j]], row[Z[j]] = 1.0, -1.0
        if lo0[j] >= 0:  # h = z
            A_eq.append(row)
            b_eq.append(0.0)
            h_bounds.append((None, None))
        elif hi0[j] <= 0:  # h = 0
            h_bounds.append((0.0, 0.0))
        else:
            A_ub.append(-row)  # z - h <= 0
            b_ub.append(0.0)
            s = hi0[j] / (hi0[j] - lo0[j])
            row = np.zeros(nv)
            row[H[j]], row[Z[j]] = 1.0, -s  # h - s z <= -s l
            A_ub.append(row)
            b_ub.append(-s * lo0[j])
            h_bounds.append((0.0, None))
    c = np.zeros(nv)
    c[H] = W1_row
    out = []
    for sign in (1.0, -1.0):
        res = linprog(sign * c, A_ub=np.array(A_ub) if A_ub else None, b_ub=b_ub if A_ub else None,
                      A_eq=np.array(A_eq), b_eq=b_eq, bounds=bounds + h_bounds, method="highs")
        assert res.status == 0
        out.append(sign * res.fun + b1)
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(6))
def test_one_hidden_layer_matches_an_independent_lp(seed):
    """Layer-1 bounds are exactly the triangle LP's optimum (to 1e-7) on the
    neurons the LP left unstable, and never beyond it on the others."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, [3, 10, 6], output_relu=True, scale=2.0)
    region = Box(-np.ones(3), np.ones(3))
    lp = lp_bounds(net, region)
    lin = linear_bounds(net, region)
    W0, b0 = net.layers[0].W, net.layers[0].b
    compared = 0
    for i in np.flatnonzero(lin.unstable[1]):
        lo, hi = _triangle_lp_range(W0, b0, net.layers[1].W[i], net.layers[1].b[i], region, lp.lower[0], lp.upper[0])
        assert lp.lower[1][i] <= lo + 1e-9 and lp.upper[1][i] >= hi - 1e-9  # sound w.r.t. the relaxation
        if lp.unstable[1][i]:  # both sides solved
            assert abs(lp.lower[1][i] - lo) <= 1e-7 * (1 + abs(lo))
            assert abs(lp.upper[1][i] - hi) <= 1e-7 * (1 + abs(hi))
            compared += 1
    assert compared > 0


def _exact_pre_activations(net: Network, x: np.ndarray) -> list[list[Fr]]:
    h = [Fr(float(v)) for v in x]
    out = []
    for layer in net.layers:
        z = [sum((Fr(float(w)) * v for w, v in zip(row, h)), Fr(0)) + Fr(float(b)) for row, b in zip(layer.W, layer.b)]
        out.append(z)
        h = [max(v, Fr(0)) for v in z] if layer.activation.name == "relu" else z
    return out


@pytest.mark.parametrize("seed", range(8))
def test_bounds_hold_exactly_where_the_lp_is_exact(seed):
    """Layers below the tightened one all stably active: the LP is then exact
    over the box and its optimum sits at a corner. The bounds must contain
    the exact (rational) value at every corner, with no tolerance, and be
    within 1e-9 of the extreme one (so rounding is covered but not wasted)."""
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 5))
    depth_below = int(rng.integers(1, 3))
    widths = [n] + [int(rng.integers(2, 8)) for _ in range(depth_below)] + [int(rng.integers(2, 8))]
    params = []
    for j, (i, o) in enumerate(zip(widths[:-2], widths[1:-1])):  # stably active: positive all the way
        params.append((rng.standard_normal((o, i)) if j == 0 else rng.random((o, i)), 20.0 + rng.random(o)))
    scale = 10.0 ** rng.uniform(-3, 0)
    region = Box(scale * -rng.random(n), scale * rng.random(n))
    below = Network.from_params(params, ["relu"] * len(params))
    W_top = rng.standard_normal((widths[-1], widths[-2]))
    params.append((W_top, -W_top @ below(region.center)))  # zero at the centre: unstable
    net = Network.from_params(params, ["relu"] * len(params))
    base = interval_bounds(net, region)  # loose on purpose: the LP must do the work
    lp = lp_bounds(net, region, base=base)
    k = net.depth - 1
    assert all(np.all(lp.lower[j] > 0) for j in range(k))
    corners = [np.where(bits, region.hi, region.lo) for bits in np.ndindex(*([2] * n))]
    values = [_exact_pre_activations(net, np.array(c))[k] for c in corners]
    solved = 0
    for i in range(widths[-1]):
        lo, hi = min(v[i] for v in values), max(v[i] for v in values)
        assert Fr(float(lp.lower[k][i])) <= lo and Fr(float(lp.upper[k][i])) >= hi, i
        if lp.unstable[k][i]:  # both sides solved
            assert lp.upper[k][i] - float(hi) <= 1e-9 * (1 + abs(float(hi))), i
            assert float(lo) - lp.lower[k][i] <= 1e-9 * (1 + abs(float(lo))), i
            solved += 1
    assert solved > 0


def test_lp_is_strictly_tighter_than_linear_on_deeper_nets():
    tighter = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        net = random_net(rng, [3, 12, 12, 12, 3], output_relu=True, scale=2.0)
        region = random_region(rng, "box", 3, 1.0)
        lin, lp = linear_bounds(net, region), lp_bounds(net, region)
        gain = max(float(np.max(lp.lower[k] - lin.lower[k])) for k in range(net.depth))
        gain = max(gain, max(float(np.max(lin.upper[k] - lp.upper[k])) for k in range(net.depth)))
        tighter += gain > 1e-6
        assert lp.num_unstable <= lin.num_unstable
    assert tighter > 0


# ============================================================================ ℓ2 cutting planes
@settings(SETTINGS, max_examples=50)
@given(cases(kinds=(2.0,)))
def test_l2_cuts_are_sound_and_not_looser_than_the_bounding_box_lp(case):
    net, region, rng = case
    box = region.bounding_box()
    start = linear_bounds(net, box)  # valid for the ball as well: the ball lies in its box
    ball_lp = lp_bounds(net, region, base=start)
    box_lp = lp_bounds(net, box, base=start)
    assert_contains(ball_lp, points(region, rng))
    assert_nested(ball_lp, start)
    assert_tighter_where_open(ball_lp, box_lp)
    assert ball_lp.num_unstable <= box_lp.num_unstable


def test_l2_cuts_tighten_a_two_dimensional_ball():
    """In 2-D the ball is far from its box; the cuts must show it."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(6):
        net = random_net(rng, [2, 12, 12, 2], output_relu=True, scale=2.0)
        region = Ball(rng.standard_normal(2), 1.0, 2)
        box = region.bounding_box()
        start = linear_bounds(net, box)
        ball_lp, box_lp = lp_bounds(net, region, base=start), lp_bounds(net, box, base=start)
        assert ball_lp.details["l2_cuts"] > 0
        hits += any(np.any(ball_lp.upper[k] < box_lp.upper[k] - 1e-6) for k in range(1, net.depth))
        assert_contains(ball_lp, points(region, rng))
    assert hits > 0


def test_l2_support_is_an_exact_upper_bound():
    """``support(w) >= max over the ball of w·(W x + b)``, checked in rationals:
    the maximum is ``w·(W c + b) + r ‖Wᵀw‖₂``."""
    rng = np.random.default_rng(3)
    for trial in range(20):
        m, n = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        scale = 10.0 ** rng.uniform(-3, 3)
        W = scale * rng.standard_normal((m, n))
        b = rng.standard_normal(m) * scale
        layer = lipmip.Layer(W, b)
        region = Ball(rng.standard_normal(n) * 10.0 ** rng.uniform(-2, 2), float(10.0 ** rng.uniform(-3, 1)), 2)
        cuts = _L2Cuts(layer, region)
        w = rng.standard_normal(m)
        R = Fr(cuts.support(w))
        Wf = [[Fr(float(v)) for v in row] for row in W]
        wf = [Fr(float(v)) for v in w]
        g = [sum((wf[i] * Wf[i][j] for i in range(m)), Fr(0)) for j in range(n)]
        centre = sum((g[j] * Fr(float(region.center[j])) for j in range(n)), Fr(0))
        offset = sum((wf[i] * Fr(float(b[i])) for i in range(m)), Fr(0))
        slack = R - centre - offset  # must be >= r ‖g‖₂
        assert slack >= 0, trial
        assert slack * slack >= Fr(region.radius) ** 2 * sum((v * v for v in g), Fr(0)), trial


# ============================================================================ rounding safety of the chord
@pytest.mark.parametrize("scale", [1e-300, 1e-8, 1.0, 1e8, 1e150])
def test_chord_rows_hold_exactly_on_the_relu_graph(scale):
    """``max(z, 0) - s z <= R`` at both ends of ``[l, u]`` (where the convex
    left side peaks), in exact rationals, for awkward bound pairs."""
    rng = np.random.default_rng(11)
    lo = -scale * np.concatenate([rng.random(200), [1.0, 1e-12, 1.0, 3.0]])
    hi = scale * np.concatenate([rng.random(200), [1e-12, 1.0, 1.0, 1.0 / 3.0]])
    s, R = _chord(lo, hi)
    for l_, u_, s_, r_ in zip(lo, hi, s, R):
        for z in (Fr(float(l_)), Fr(float(u_))):
            assert max(z, Fr(0)) - Fr(float(s_)) * z <= Fr(float(r_)), (l_, u_)


# ============================================================================ MILP
@settings(SETTINGS, max_examples=30)
@given(cases())
def test_milp_is_sound_and_at_least_as_tight_as_lp(case):
    net, region, rng = case
    if net.num_relus > 24:
        net = Network(net.layers[:2])  # keep the MILPs small
    lp = lp_bounds(net, region)
    milp = lp_bounds(net, region, milp_time_limit=5.0)
    assert milp.method in ("lp", "lp+milp")
    assert (milp.method == "lp+milp") == (milp.details["milp_solves"] > 0)
    assert_contains(milp, points(region, rng))
    assert milp.num_unstable <= lp.num_unstable
    assert_tighter_where_open(milp, lp)
    if net.depth > 1:  # layer 1 sees the same LP in both runs, then the MILP on top
        assert np.all(milp.lower[1] >= lp.lower[1]) and np.all(milp.upper[1] <= lp.upper[1])


def test_milp_stabilises_what_the_lp_cannot():
    stabilised = 0
    for seed in range(6):
        rng = np.random.default_rng(200 + seed)
        net = random_net(rng, [2, 8, 8, 8, 1], output_relu=True, scale=2.0)
        region = random_region(rng, "box", 2, 1.0)
        lp = lp_bounds(net, region)
        milp = lp_bounds(net, region, milp_time_limit=5.0)
        stabilised += lp.num_unstable - milp.num_unstable
        assert_contains(milp, points(region, rng))
    assert stabilised > 0


# ============================================================================ budget and options
def test_time_limit_keeps_valid_bounds_and_says_so(rng):
    net = random_net(rng, [3, 12, 12, 12, 2], output_relu=True, scale=2.0)
    region = Box(-np.ones(3), np.ones(3))
    lin = linear_bounds(net, region)
    b = lp_bounds(net, region, base=lin, time_limit=1e-9)
    assert b.details["timed_out"] is True
    assert b.details["lp_solves"] == 0
    for k in range(net.depth):
        np.testing.assert_array_equal(b.lower[k], lin.lower[k])
        np.testing.assert_array_equal(b.upper[k], lin.upper[k])


def test_progress_bar_runs(rng, capsys):
    net = random_net(rng, [2, 6, 6, 1], output_relu=True)
    b = lp_bounds(net, Box(-np.ones(2), np.ones(2)), progress=True)
    assert b.method == "lp"


@pytest.mark.parametrize(
    "options",
    [{"milp_time_limit": -1.0}, {"milp_time_limit": math.inf}, {"milp_time_limit": "1"},
     {"time_limit": 0.0}, {"time_limit": -3}, {"time_limit": math.nan}, {"base": "linear"}],
)
def test_bad_options_are_refused(rng, options):
    net = random_net(rng, [2, 4, 1], output_relu=False)
    with pytest.raises(InvalidQueryError):
        lp_bounds(net, Box(-np.ones(2), np.ones(2)), **options)


def test_base_of_another_network_is_refused(rng):
    net = random_net(rng, [2, 4, 1], output_relu=False)
    other = random_net(rng, [2, 5, 1], output_relu=False)
    region = Box(-np.ones(2), np.ones(2))
    with pytest.raises(InvalidQueryError):
        lp_bounds(net, region, base=linear_bounds(other, region))


# ============================================================================ a real network
def test_mnist_relu_3_50(shared_networks):
    net = lipmip.load(shared_networks / "mnist" / "mnist_relu_3_50.onnx")
    x = np.loadtxt(shared_networks / "mnist" / "mnist_test.csv", delimiter=",", max_rows=1)[1:] / 255.0
    region = Box(np.clip(x - 0.02, 0.0, 1.0), np.clip(x + 0.02, 0.0, 1.0))
    lin = linear_bounds(net, region)
    lp = lp_bounds(net, region, base=lin, time_limit=30.0)
    assert lp.num_unstable <= lin.num_unstable
    assert_nested(lp, lin)
    assert_contains(lp, points(region, np.random.default_rng(0)))
