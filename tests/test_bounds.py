"""Forward (interval, linear) and backward (gradient) neuron bounds: soundness
against sampled points, nesting, and the interval-Jacobian Lipschitz bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lipmip
from lipmip.bounds import compute
from lipmip.bounds.backward import gradient_bounds
from lipmip.bounds.stability import format_stability, stability_table
from lipmip.errors import InvalidQueryError, InvalidRegionError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    """A random network (depth 1-4, width 1-12), a random region and a seed."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_in = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 12), min_size=0, max_size=3))
    n_out = draw(st.integers(1, 3))
    widths = [n_in, *hidden, n_out]
    output_relu = draw(st.booleans())
    acts = ["relu"] * (len(widths) - 2) + ["relu" if output_relu else "identity"]
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    params = [(scale * rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])]
    net = lipmip.Network.from_params(params, acts)
    kind = draw(st.sampled_from(["box", "1", "2", "inf"]))
    center = rng.standard_normal(n_in)
    radius = float(draw(st.sampled_from([0.01, 0.1, 0.5, 2.0])))
    if kind == "box":
        region = lipmip.Box(center - radius * rng.random(n_in), center + radius * rng.random(n_in))
    else:
        region = lipmip.Ball(center, radius, kind)
    return net, region, rng


def _sample(region, rng, n=1000):
    pts = region.sample(n, rng)
    if isinstance(region, lipmip.Box):
        corners = np.where(rng.random((64, region.dim)) < 0.5, region.lo, region.hi)
        pts = np.vstack([pts, corners])
    return pts


@SETTINGS
@given(cases())
def test_forward_bounds_hold_at_sampled_points_and_nest(case):
    net, region, rng = case
    pts = _sample(region, rng)
    zs = net.pre_activations(pts)
    ibp = compute(net, region, "interval")
    lin = compute(net, region, "linear")
    for k, z in enumerate(zs):
        for b in (ibp, lin):
            assert np.all(z >= b.lower[k] - 1e-9), (b.method, k)
            assert np.all(z <= b.upper[k] + 1e-9), (b.method, k)
        assert np.all(lin.lower[k] >= ibp.lower[k]) and np.all(lin.upper[k] <= ibp.upper[k])
        assert np.all(ibp.lower[k] <= ibp.upper[k])


@SETTINGS
@given(cases())
def test_gradient_bounds_hold_at_sampled_points(case):
    net, region, rng = case
    forward = compute(net, region, "linear")
    C = rng.standard_normal((2, net.output_dim))
    grads = gradient_bounds(forward, C)
    top_only = gradient_bounds(forward, C, bottom_up=False)
    for x in _sample(region, rng, 300):
        slopes = [layer.activation.slope(z) for layer, z in zip(net.layers, net.pre_activations(x))]
        G = C.copy()
        for k in range(net.depth, 0, -1):
            G = (G * slopes[k - 1]) @ net.layers[k - 1].W
            assert np.all(G >= grads.lower[k - 1] - 1e-9) and np.all(G <= grads.upper[k - 1] + 1e-9)
        np.testing.assert_allclose(G, C @ net.jacobian(x), rtol=1e-9, atol=1e-12)
    for k in range(net.depth + 1):
        assert np.all(grads.lower[k] >= top_only.lower[k]) and np.all(grads.upper[k] <= top_only.upper[k])


def test_first_layer_interval_bounds_are_exact_for_balls(rng):
    """Layer 1 of a ball is W c + b ± r ‖W_i‖_{p*}: attained, not just valid."""
    W = rng.standard_normal((5, 3))
    net = lipmip.Network.from_params([(W, np.zeros(5)), (np.ones((1, 5)), np.zeros(1))])
    c = rng.standard_normal(3)
    for p, q in ((1, np.inf), (2, 2), (np.inf, 1)):
        b = compute(net, lipmip.Ball(c, 0.3, p), "interval")
        expected = W @ c + 0.3 * np.linalg.norm(W, ord=q, axis=1)
        np.testing.assert_allclose(b.upper[0], expected, rtol=1e-12)


def test_linear_is_strictly_tighter_somewhere():
    rng = np.random.default_rng(3)
    tighter = 0
    for _ in range(20):
        params = [(rng.standard_normal((10, 3)), rng.standard_normal(10)),
                  (rng.standard_normal((10, 10)), rng.standard_normal(10)),
                  (rng.standard_normal((2, 10)), rng.standard_normal(2))]
        net = lipmip.Network.from_params(params)
        region = lipmip.Ball(rng.standard_normal(3), 0.5, np.inf)
        ibp, lin = compute(net, region, "interval"), compute(net, region, "linear")
        tighter += int(np.sum(lin.upper[1] < ibp.upper[1] - 1e-9))
    assert tighter > 0


def test_masks_and_counts():
    W1 = np.array([[1.0], [-1.0], [1.0]])
    b1 = np.array([5.0, -5.0, 0.0])  # active, inactive, unstable on [-1, 1]
    net = lipmip.Network.from_params([(W1, b1), (np.ones((1, 3)), np.zeros(1))])
    b = compute(net, lipmip.Box(-1.0, 1.0), "interval")
    assert b.active[0].tolist() == [True, False, False]
    assert b.inactive[0].tolist() == [False, True, False]
    assert b.unstable[0].tolist() == [False, False, True]
    assert b.num_unstable == 1 and b.num_relus == 3
    assert math.isclose(b.stable_fraction, 2 / 3)
    assert b.active[1].tolist() == [True]  # the identity output layer counts as active
    rows = stability_table(b, gradient_bounds(b, np.eye(1)))
    assert rows[0]["unstable"] == 1 and rows[0]["max_forward_big_m"] == pytest.approx(1.0)
    assert "1 of 3 ReLUs unstable" in format_stability(b)


def test_bad_input():
    net = lipmip.examples.digits_network()
    with pytest.raises(InvalidRegionError, match="dimension 3"):
        compute(net, lipmip.Ball(np.zeros(3), 0.1), "linear")
    with pytest.raises(InvalidQueryError, match="unknown bound method 'crown'"):
        compute(net, lipmip.Ball(np.zeros(64), 0.1), "crown")
    with pytest.raises(InvalidQueryError, match="takes no options"):
        compute(net, lipmip.Ball(np.zeros(64), 0.1), "interval", time_limit=3)


# --------------------------------------------------------------------- the interval-Jacobian Lipschitz bound
def _dense_local_max(net, region, query, rng, n=4000):
    pts = _sample(region, rng, n)
    from lipmip.estimate import local_values

    return float(local_values(net, query, pts).max())


@SETTINGS
@given(cases(), st.sampled_from([1, 2, "inf"]), st.booleans())
def test_interval_jacobian_upper_bound_is_above_every_local_slope(case, norm, vector):
    net, region, rng = case
    query = lipmip.Query.vector(norm) if vector else lipmip.Query.scalar(rng.standard_normal(net.output_dim), norm)
    result = lipmip.lipschitz(net, region, query, method="interval")
    assert result.upper >= _dense_local_max(net, region, query, rng) * (1 - 1e-12)
    auto = lipmip.lipschitz(net, region, query, method="auto", samples=200)
    assert auto.lower <= auto.upper <= result.upper


def test_interval_jacobian_is_exact_when_every_relu_is_stable():
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[0], 1e-4, 2)
    assert compute(net, region, "linear").num_unstable == 0
    query = lipmip.Query.margin(7, 9, 10, input_norm=2)
    result = lipmip.lipschitz(net, region, query)
    exact = float(np.linalg.norm(query.c @ net.jacobian(X[0])))
    assert result.lower <= exact <= result.upper
    assert result.upper - result.lower <= 1e-8 * exact
