"""The network that ships with lipmip is real and does its job."""

from __future__ import annotations

import numpy as np

import lipmip
from lipmip.examples import digits_network, digits_test_data


def test_bundled_digits_network_is_accurate():
    net = digits_network()
    X, y = digits_test_data()
    assert net.widths == (64, 32, 32, 10)
    assert net.activations == ("relu", "relu", "identity")
    assert X.shape == (360, 64) and X.min() >= 0 and X.max() <= 1
    accuracy = float(np.mean(net(X).argmax(axis=1) == y))
    assert accuracy > 0.95


def test_bundled_network_bounds_bracket_sampled_slopes():
    """The demo's bound: lower <= every sampled local slope... and <= upper."""
    net = digits_network()
    X, _ = digits_test_data()
    region = lipmip.Ball(X[0], 0.05, p="inf")
    query = lipmip.Query.margin(int(net(X[0]).argmax()), 0 if net(X[0]).argmax() else 1, 10)
    result = lipmip.lipschitz(net, region, query, method="auto", samples=500)
    assert result.lower is not None and result.upper is not None
    assert 0 < result.lower <= result.upper
    # any point's local gradient dual norm is a lower bound on L, so it cannot exceed the upper bound
    points = region.sample(300, np.random.default_rng(5))
    g = np.einsum("m,bmn->bn", query.c, net.jacobian(points))
    assert np.abs(g).sum(axis=1).max() <= result.upper
