"""The .npz exchange format and data files: round trips and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import lipmip
from lipmip.errors import ModelFormatError, NonFiniteError, ShapeError, UnknownActivationError
from lipmip.io.data import load_points


def _random_net(rng, widths, activations=None):
    params = [(rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])]
    return lipmip.Network.from_params(params, activations)


@pytest.mark.parametrize(
    "widths,activations",
    [
        ((5, 8, 8, 3), None),
        ((3, 2), None),  # a single affine layer
        ((1, 4, 1), None),  # one input, one output
        ((4, 1, 2), None),  # one hidden neuron
        ((6, 5, 4), ["relu", "relu"]),  # ReLU on the output
        ((2, 3, 3, 2), ["relu", "identity", "identity"]),
    ],
)
def test_npz_round_trip_is_exact(tmp_path, rng, widths, activations):
    net = _random_net(rng, widths, activations)
    path = tmp_path / "net.npz"
    lipmip.save(net, path)
    back = lipmip.load(path)
    assert back.allclose(net)  # exact equality (rtol = atol = 0)
    assert back.activations == net.activations
    assert back.input_shape == net.input_shape
    x = rng.standard_normal((10, widths[0]))
    np.testing.assert_array_equal(back(x), net(x))


def test_npz_default_activations_are_relu_then_identity(tmp_path, rng):
    W1, b1, W2, b2 = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((2, 4)), rng.standard_normal(2)
    np.savez(tmp_path / "plain.npz", W1=W1, b1=b1, W2=W2, b2=b2)
    net = lipmip.load(tmp_path / "plain.npz")
    assert net.activations == ("relu", "identity")
    x = rng.standard_normal(3)
    np.testing.assert_allclose(net(x), W2 @ np.maximum(W1 @ x + b1, 0) + b2, rtol=1e-14)


def test_npz_activations_override(tmp_path, rng):
    W1, b1, W2, b2 = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((2, 4)), rng.standard_normal(2)
    np.savez(tmp_path / "eran.npz", W1=W1, b1=b1, W2=W2, b2=b2, activations=np.array(["relu", "relu"]))
    net = lipmip.load(tmp_path / "eran.npz")
    assert net.activations == ("relu", "relu")
    assert net.without_output_activation().activations == ("relu", "identity")


def test_npz_missing_bias_is_named(tmp_path, rng):
    np.savez(tmp_path / "bad.npz", W1=rng.standard_normal((4, 3)), b1=np.zeros(4), W2=rng.standard_normal((2, 4)))
    with pytest.raises(ModelFormatError, match="b2"):
        lipmip.load(tmp_path / "bad.npz")


def test_npz_without_weights(tmp_path):
    np.savez(tmp_path / "empty.npz", foo=np.zeros(3))
    with pytest.raises(ModelFormatError, match="no weight arrays"):
        lipmip.load(tmp_path / "empty.npz")


def test_npz_shapes_that_do_not_chain(tmp_path, rng):
    np.savez(tmp_path / "bad.npz", W1=rng.standard_normal((4, 3)), b1=np.zeros(4), W2=rng.standard_normal((2, 5)), b2=np.zeros(2))
    with pytest.raises(ShapeError, match="layer 1 expects 5 inputs"):
        lipmip.load(tmp_path / "bad.npz")


def test_npz_nan_weights(tmp_path):
    W = np.ones((2, 2))
    W[1, 0] = np.nan
    np.savez(tmp_path / "nan.npz", W1=W, b1=np.zeros(2))
    with pytest.raises(NonFiniteError, match="non-finite"):
        lipmip.load(tmp_path / "nan.npz")


def test_npz_unknown_activation(tmp_path):
    np.savez(tmp_path / "act.npz", W1=np.ones((2, 2)), b1=np.zeros(2), activations=np.array(["swish"]))
    with pytest.raises(UnknownActivationError, match="swish"):
        lipmip.load(tmp_path / "act.npz")


def test_truncated_npz(tmp_path, rng):
    net = _random_net(rng, (5, 8, 3))
    lipmip.save(net, tmp_path / "net.npz")
    data = (tmp_path / "net.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="cut.npz"):
        lipmip.load(tmp_path / "cut.npz")


def test_unreadable_and_unknown_paths(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        lipmip.load(tmp_path / "missing.npz")
    with pytest.raises(ModelFormatError, match="not a file"):
        lipmip.load(tmp_path)
    (tmp_path / "model.h5").write_bytes(b"junk")
    with pytest.raises(ModelFormatError, match="unknown model file type"):
        lipmip.load(tmp_path / "model.h5")
    with pytest.raises(ModelFormatError, match="cannot save"):
        lipmip.save(lipmip.Network([(np.ones((1, 1)), np.zeros(1))]), tmp_path / "x.h5")


def test_load_points_formats(tmp_path, rng):
    X = rng.random((4, 3))
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "xy.npz", X=X, y=np.array([0, 1, 2, 1]))
    np.savetxt(tmp_path / "xy.csv", np.column_stack([[3, 1, 4, 1], X * 255]), delimiter=",")
    got, y = load_points(tmp_path / "x.npy")
    np.testing.assert_array_equal(got, X)
    assert y is None
    got, y = load_points(tmp_path / "xy.npz")
    np.testing.assert_array_equal(got, X)
    assert y.tolist() == [0, 1, 2, 1]
    got, y = load_points(tmp_path / "xy.csv")
    np.testing.assert_allclose(got / 255, X, rtol=1e-12)
    assert y.tolist() == [3, 1, 4, 1]


def test_load_points_bad_input(tmp_path):
    (tmp_path / "bad.csv").write_text("1,a,b\n")
    with pytest.raises(ModelFormatError, match="bad.csv"):
        load_points(tmp_path / "bad.csv")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(NonFiniteError):
        load_points(tmp_path / "nan.npy")
    with pytest.raises(ModelFormatError, match="no such data file"):
        load_points(tmp_path / "none.npy")
