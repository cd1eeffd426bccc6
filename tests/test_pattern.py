"""interior_point_for_pattern: a point strictly inside a given activation region."""

from __future__ import annotations

import numpy as np
import pytest

import lipmip
from lipmip.regions import enumerate_regions
from lipmip.regions.pattern import interior_point_for_pattern


def _net(rng, widths, output_relu=True):
    acts = ["relu"] * (len(widths) - 2) + ["relu" if output_relu else "identity"]
    return lipmip.Network.from_params(
        [(rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])], acts
    )


@pytest.mark.parametrize("kind", ["box", "1", "2", "inf"])
def test_every_enumerated_region_gets_an_interior_point_with_its_pattern(rng, kind):
    for _ in range(5):
        net = _net(rng, (2, 5, 4, 2))
        region = lipmip.Box(-np.ones(2), np.ones(2)) if kind == "box" else lipmip.Ball(np.zeros(2), 1.0, kind)
        for r in enumerate_regions(net, region):
            if not r.certified_interior:
                continue
            x = interior_point_for_pattern(net, region, r.pattern)
            assert x is not None and region.contains(x)
            for z, on, layer in zip(net.pre_activations(x), r.pattern, net.layers):
                if layer.activation.name == "relu":
                    np.testing.assert_array_equal(z > 0, on)
                    assert np.all(z != 0)


def test_impossible_pattern_gives_none(rng):
    W1 = np.array([[1.0], [1.0]])
    b1 = np.array([0.0, -0.5])  # neuron 2 on implies neuron 1 on, for x in [-1, 1]
    net = lipmip.Network.from_params([(W1, b1), (np.ones((1, 2)), np.zeros(1))])
    region = lipmip.Box(-1.0, 1.0)
    assert interior_point_for_pattern(net, region, [np.array([False, True]), np.array([True])]) is None
    x = interior_point_for_pattern(net, region, [np.array([True, True]), np.array([True])])
    assert x is not None and x[0] > 0.5


def test_interior_point_lies_in_a_high_dimensional_l2_ball():
    """The LP meets an ℓ2 ball by tangent cuts and may stop outside it (in 64
    dimensions it did, at 3.6 radii from the centre); the point returned must
    be in the ball and keep the pattern."""
    net = lipmip.examples.digits_network()
    X, _ = lipmip.examples.digits_test_data()
    region = lipmip.Ball(X[0], 0.2, 2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        d = rng.standard_normal(64)
        x = X[0] + 0.2 * (1 - 1e-9) * d / np.linalg.norm(d)  # on the sphere: the solver's kind of point
        pattern = [z > 0 for z in net.pre_activations(x)]
        p = interior_point_for_pattern(net, region, pattern, x_ref=x)
        assert p is not None and region.contains(p)
        assert all(np.array_equal(a, z > 0) for a, z in zip(pattern[:-1], net.pre_activations(p)[:-1]))
