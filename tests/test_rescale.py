"""Exact network rescaling: same function, better balanced coefficients."""

from __future__ import annotations

import numpy as np
import pytest

import lipmip
from lipmip.bounds import compute
from lipmip.bounds.backward import gradient_bounds
from lipmip.errors import InvalidQueryError, InvalidRegionError
from lipmip.rescale import apply_scaling, rescale


def _unbalanced(rng, widths=(3, 8, 8, 2), scales=(10.0, 0.05, 4.0), acts=None):
    params = [(s * rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o, s in zip(widths[:-1], widths[1:], scales)]
    return lipmip.Network.from_params(params, acts)


@pytest.mark.parametrize("acts", [None, ["relu", "relu", "relu"], ["relu", "identity", "identity"]])
@pytest.mark.parametrize("strategy", ["weights", "big_m"])
def test_power_of_two_rescaling_is_bit_exact(rng, strategy, acts):
    net = _unbalanced(rng, acts=acts)
    region = lipmip.Ball(rng.standard_normal(3), 0.5, 2)
    scaled = rescale(net, strategy, region=region)
    X = np.vstack([region.sample(200, rng), rng.standard_normal((200, 3)) * 5])
    np.testing.assert_array_equal(scaled(X), net(X))
    np.testing.assert_array_equal(scaled.jacobian(X), net.jacobian(X))
    assert scaled.activations == net.activations


def test_real_valued_rescaling_keeps_f_and_jacobian(rng):
    net = _unbalanced(rng)
    scaled = rescale(net, "weights", power_of_two=False)
    X = rng.standard_normal((300, 3))
    np.testing.assert_allclose(scaled(X), net(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaled.jacobian(X), net.jacobian(X), rtol=1e-12, atol=1e-12)


def test_weight_balancing_evens_out_layer_magnitudes(rng):
    net = _unbalanced(rng)
    scaled = rescale(net, "weights", power_of_two=False)
    for k in range(net.depth - 1):
        rows = np.sqrt((scaled.layers[k].W ** 2).sum(1) + scaled.layers[k].b ** 2)
        cols = np.linalg.norm(scaled.layers[k + 1].W, axis=0)
        np.testing.assert_allclose(rows, cols, rtol=1e-6)
    spread = lambda n: max(np.abs(lay.W).max() for lay in n.layers) / min(np.abs(lay.W).max() for lay in n.layers)  # noqa: E731
    assert spread(scaled) < spread(net)


def test_big_m_balancing_equalises_forward_and_gradient_big_m(rng):
    net = _unbalanced(rng)
    region = lipmip.Box(-np.ones(3), np.ones(3))
    scaled = rescale(net, "big_m", region=region, power_of_two=False)
    fwd = compute(scaled, region, "linear")
    grads = gradient_bounds(fwd, np.eye(scaled.output_dim))
    for k in range(net.depth - 1):
        m_fwd = np.maximum(np.abs(fwd.lower[k]), np.abs(fwd.upper[k]))
        np.testing.assert_allclose(m_fwd, grads.big_m(k + 1), rtol=1e-6)
    # rescaling does not change which neurons are stable
    before = compute(net, region, "linear")
    for a, b in zip(before.unstable, fwd.unstable):
        np.testing.assert_array_equal(a, b)


def test_single_layer_and_bad_input(rng):
    single = lipmip.Network.from_params([(rng.standard_normal((2, 3)), np.zeros(2))])
    assert rescale(single) is single
    net = _unbalanced(rng)
    with pytest.raises(InvalidQueryError, match="unknown rescaling strategy"):
        rescale(net, "magic")
    with pytest.raises(InvalidRegionError, match="needs the input region"):
        rescale(net, "big_m")
    with pytest.raises(InvalidQueryError, match="positive"):
        apply_scaling(net, [np.full(8, -1.0), np.ones(8)])
