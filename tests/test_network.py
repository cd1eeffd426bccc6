"""The Network class: validation, immutability, evaluation, Jacobians, derived networks."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipmip import (
    Layer,
    LipmipError,
    Network,
    NonFiniteError,
    ShapeError,
    UnknownActivationError,
)

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)


def make_net(rng, sizes, acts=None, input_shape=None, name=None) -> Network:
    params = [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in itertools.pairwise(sizes)]
    return Network.from_params(params, acts, input_shape=input_shape, name=name)


def ref_forward(net: Network, x: np.ndarray) -> np.ndarray:
    """Plain float64 reference of f(x) for one vector."""
    h = np.asarray(x, dtype=np.float64)
    for layer in net.layers:
        z = layer.W @ h + layer.b
        h = np.maximum(z, 0.0) if layer.activation.name == "relu" else z
    return h


def min_abs_relu_preactivation(net: Network, x) -> float:
    zs = net.pre_activations(x)
    vals = [np.abs(z).min() for z, layer in zip(zs, net.layers) if layer.activation.name == "relu"]
    return float(min(vals)) if vals else math.inf


# =============================================================================
# construction and validation
# =============================================================================
class TestConstruction:
    def test_from_params_default_activations(self, rng):
        net = make_net(rng, [3, 4, 5, 2])
        assert net.activations == ("relu", "relu", "identity")
        assert net.depth == 3
        assert net.widths == (3, 4, 5, 2)
        assert net.input_dim == 3 and net.output_dim == 2
        assert not net.has_output_activation
        assert net.num_parameters == 3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2
        assert net.num_relus == 9
        assert net.input_shape == (3,)

    def test_layer_tuples_and_layer_objects(self, rng):
        W1, b1 = rng.normal(size=(4, 2)), rng.normal(size=4)
        W2, b2 = rng.normal(size=(1, 4)), rng.normal(size=1)
        a = Network([(W1, b1), (W2, b2, "identity")])
        b = Network([Layer(W1, b1), Layer(W2, b2, "identity")])
        c = Network([[W1, b1, "relu"], Layer(W2, b2, "linear")])
        assert a.allclose(b) and b.allclose(c)
        assert a.activations == ("relu", "identity")

    def test_missing_bias_is_zero(self):
        layer = Layer([[1.0, 2.0]])
        assert layer.b.shape == (1,) and layer.b[0] == 0.0

    def test_activation_aliases_and_case(self):
        for name in ("identity", "Identity", " linear ", "NONE", "affine"):
            assert Layer([[1.0]], [0.0], name).activation.name == "identity"
        assert Layer([[1.0]], [0.0], "ReLU").activation.name == "relu"

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_weights(self, bad):
        W = np.ones((2, 3))
        W[1, 2] = bad
        with pytest.raises(NonFiniteError, match="non-finite"):
            Network.from_params([(W, np.zeros(2))])
        with pytest.raises(NonFiniteError, match="bias"):
            Network.from_params([(np.ones((2, 3)), np.array([0.0, bad]))])
        with pytest.raises(NonFiniteError, match="layer 1"):
            Network.from_params([(np.ones((2, 3)), np.zeros(2)), (np.array([[1.0, bad]]), np.zeros(1))])

    def test_mismatched_chain_names_both_shapes(self):
        with pytest.raises(ShapeError) as info:
            Network.from_params([(np.ones((4, 3)), np.zeros(4)), (np.ones((2, 5)), np.zeros(2))])
        msg = str(info.value)
        assert "(4, 3)" in msg and "(2, 5)" in msg
        assert "layer 1" in msg

    def test_transposed_weight_is_caught(self):
        # a (in, out) matrix by mistake: 3 -> 4 -> 2 written as W2 of shape (4, 2)
        with pytest.raises(ShapeError, match=r"\(out, in\)"):
            Network.from_params([(np.ones((4, 3)), np.zeros(4)), (np.ones((4, 2)), np.zeros(4))])

    def test_empty_layer_list(self):
        with pytest.raises(ShapeError, match="empty"):
            Network([])
        with pytest.raises(ShapeError):
            Network.from_params([])
        with pytest.raises(ShapeError):
            Network(iter([]))

    @pytest.mark.parametrize("W", [np.ones(3), np.ones((2, 2, 2)), 1.0, np.ones((0, 3)), np.ones((3, 0))])
    def test_weight_not_2d_or_empty(self, W):
        with pytest.raises(ShapeError, match="W"):
            Layer(W, None)

    def test_non_numeric_weight(self):
        with pytest.raises(ShapeError, match="numeric"):
            Layer([["a", "b"]], [0.0])
        with pytest.raises(ShapeError):
            Layer(object(), [0.0])

    @pytest.mark.parametrize("b", [np.zeros(3), np.zeros((2, 1)), np.zeros(1), 0.0, np.zeros((1, 2))])
    def test_bias_wrong_length(self, b):
        with pytest.raises(ShapeError, match="bias"):
            Layer(np.ones((2, 4)), b)

    @pytest.mark.parametrize("act", ["tanh", "sigmoid", "leaky_relu", "", 3, None])
    def test_unknown_activation(self, act):
        with pytest.raises(UnknownActivationError):
            Layer(np.ones((1, 1)), np.zeros(1), act)
        if isinstance(act, str):
            with pytest.raises(UnknownActivationError, match="known: identity, relu"):
                Network.from_params([(np.ones((1, 1)), np.zeros(1))], [act])

    def test_activation_count_must_match(self):
        with pytest.raises(ShapeError, match="2 layers but 1 activation"):
            Network.from_params([(np.ones((2, 1)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))], ["relu"])

    @pytest.mark.parametrize(
        "entry", [np.ones((2, 2)), (np.ones((2, 2)),), "W", (np.ones((1, 1)), np.zeros(1), "relu", 4)]
    )
    def test_bad_layer_entries(self, entry):
        with pytest.raises(ShapeError):
            Network([entry])
        with pytest.raises(ShapeError):
            Network.from_params([entry])

    def test_input_shape_must_match(self):
        with pytest.raises(ShapeError, match="input shape"):
            Network.from_params([(np.ones((2, 6)), np.zeros(2))], input_shape=(2, 4))
        net = Network.from_params([(np.ones((2, 6)), np.zeros(2))], input_shape=(1, 2, 3))
        assert net.input_shape == (1, 2, 3) and net.input_dim == 6

    def test_all_errors_are_lipmip_errors(self):
        for bad in (lambda: Network([]), lambda: Layer([[np.nan]]), lambda: Layer([[1.0]], [0.0], "gelu")):
            with pytest.raises(LipmipError):
                bad()


# =============================================================================
# immutability and storage
# =============================================================================
class TestImmutability:
    def test_float64_storage_from_other_dtypes(self):
        W32 = np.ones((2, 3), dtype=np.float32)
        Wint = [[1, 2, 3], [4, 5, 6]]
        for W in (W32, Wint, np.ones((2, 3), dtype=np.int8), np.ones((2, 3), dtype=bool)):
            layer = Layer(W, np.zeros(2, dtype=np.float16))
            assert layer.W.dtype == np.float64 and layer.b.dtype == np.float64

    def test_float64_exact_copy_of_float32(self):
        W = np.array([[0.1]], dtype=np.float32)
        assert Layer(W).W[0, 0] == float(np.float32(0.1))

    def test_arrays_are_read_only(self, rng):
        net = make_net(rng, [2, 3, 1])
        for W, b in net.params:
            assert not W.flags.writeable and not b.flags.writeable
            with pytest.raises(ValueError):
                W[0, 0] = 1.0
            with pytest.raises(ValueError):
                b[0] = 1.0

    def test_caller_mutation_does_not_leak_in(self, rng):
        W = rng.normal(size=(3, 2))
        b = rng.normal(size=3)
        W2 = rng.normal(size=(1, 3))
        net = Network.from_params([(W, b), (W2, np.zeros(1))])
        x = np.array([0.3, -0.2])
        before = net(x).copy()
        W[:] = 100.0
        b[:] = -5.0
        W2[:] = 0.0
        assert np.array_equal(net(x), before)
        assert not np.array_equal(net.layers[0].W, W)

    def test_layer_is_frozen(self):
        layer = Layer([[1.0]])
        with pytest.raises(dataclasses.FrozenInstanceError):
            layer.W = np.ones((1, 1))  # type: ignore[misc]

    def test_derived_networks_leave_the_original_alone(self, rng):
        net = make_net(rng, [2, 3, 2], acts=["relu", "relu"])
        x = rng.normal(size=(5, 2))
        before = net(x)
        net.without_output_activation()
        net.with_input_transform(2.0, 1.0)
        net.with_name("other")
        assert np.array_equal(net(x), before)
        assert net.activations == ("relu", "relu")
        assert net.name is None

    def test_layers_is_a_tuple(self, rng):
        net = make_net(rng, [2, 3, 1])
        assert isinstance(net.layers, tuple)


# =============================================================================
# evaluation
# =============================================================================
class TestForward:
    def test_single_vector_and_batches(self, rng):
        net = make_net(rng, [3, 5, 2])
        x = rng.normal(size=3)
        y = net(x)
        assert y.shape == (2,) and y.dtype == np.float64
        np.testing.assert_allclose(y, ref_forward(net, x), rtol=1e-14, atol=1e-14)
        X = rng.normal(size=(7, 3))
        Y = net(X)
        assert Y.shape == (7, 2)
        for i in range(7):
            np.testing.assert_allclose(Y[i], ref_forward(net, X[i]), rtol=1e-14, atol=1e-14)
        X3 = rng.normal(size=(2, 4, 3))
        assert net(X3).shape == (2, 4, 2)
        np.testing.assert_allclose(net(X3).reshape(8, 2), net(X3.reshape(8, 3)), rtol=0, atol=0)

    def test_list_and_int_inputs(self, rng):
        net = make_net(rng, [2, 3, 1])
        np.testing.assert_array_equal(net([1, 2]), net(np.array([1.0, 2.0])))

    def test_image_shaped_inputs(self, rng):
        net = make_net(rng, [6, 4, 3], input_shape=(1, 2, 3))
        img = rng.normal(size=(1, 2, 3))
        np.testing.assert_array_equal(net(img), net(img.reshape(6)))
        assert net(img).shape == (3,)
        batch = rng.normal(size=(5, 1, 2, 3))
        assert net(batch).shape == (5, 3)
        np.testing.assert_array_equal(net(batch), net(batch.reshape(5, 6)))
        # row-major flattening
        np.testing.assert_allclose(net(img), ref_forward(net, img.ravel(order="C")), rtol=1e-14, atol=1e-14)
        # Jacobian accepts the image shape too
        assert net.jacobian(batch).shape == (5, 3, 6)
        assert [z.shape for z in net.pre_activations(batch)] == [(5, 4), (5, 3)]

    @pytest.mark.parametrize("shape", [(4,), (2, 4), (5,), (1, 3, 2), (3, 2, 1), ()])
    def test_wrong_input_dimension(self, rng, shape):
        net = make_net(rng, [6, 2, 1], input_shape=(1, 2, 3))
        with pytest.raises(ShapeError, match="6"):
            net(np.zeros(shape))
        with pytest.raises(ShapeError):
            net.jacobian(np.zeros(shape))
        with pytest.raises(ShapeError):
            net.pre_activations(np.zeros(shape))

    def test_wrong_input_dimension_message(self, rng):
        net = make_net(rng, [3, 2])
        with pytest.raises(ShapeError) as info:
            net(np.zeros(4))
        assert "(4,)" in str(info.value) and "3" in str(info.value)

    def test_non_finite_and_non_numeric_input(self, rng):
        net = make_net(rng, [2, 2])
        with pytest.raises(NonFiniteError):
            net([np.nan, 0.0])
        with pytest.raises(NonFiniteError):
            net.jacobian([np.inf, 0.0])
        with pytest.raises(ShapeError):
            net(["a", "b"])

    def test_output_relu_and_identity_hidden(self, rng):
        net = make_net(rng, [3, 4, 4, 2], acts=["identity", "relu", "relu"])
        X = rng.normal(size=(20, 3))
        Y = net(X)
        assert (Y >= 0).all()
        for i in range(20):
            np.testing.assert_allclose(Y[i], ref_forward(net, X[i]), rtol=1e-14, atol=1e-14)

    def test_pre_activations(self, rng):
        net = make_net(rng, [3, 4, 2])
        X = rng.normal(size=(6, 3))
        z1, z2 = net.pre_activations(X)
        np.testing.assert_allclose(z1, X @ net.layers[0].W.T + net.layers[0].b, rtol=1e-14)
        np.testing.assert_allclose(z2, net(X), rtol=0, atol=0)  # identity output
        z1s, _ = net.pre_activations(X[0])
        assert z1s.shape == (4,)

    @pytest.mark.parametrize(
        "sizes,acts",
        [
            ([1, 1], ["identity"]),
            ([1, 1], ["relu"]),
            ([1, 1, 1], None),
            ([5, 1, 3], None),
            ([1, 7, 1], None),
            ([4, 1], None),
        ],
    )
    def test_edge_shapes(self, rng, sizes, acts):
        net = make_net(rng, sizes, acts)
        X = rng.normal(size=(9, sizes[0]))
        Y = net(X)
        assert Y.shape == (9, sizes[-1])
        J = net.jacobian(X)
        assert J.shape == (9, sizes[-1], sizes[0])
        for i in range(9):
            np.testing.assert_allclose(Y[i], ref_forward(net, X[i]), rtol=1e-14, atol=1e-14)

    def test_single_affine_layer_jacobian_is_W(self, rng):
        W = rng.normal(size=(3, 4))
        net = Network([Layer(W, rng.normal(size=3), "identity")])
        J = net.jacobian(rng.normal(size=(5, 4)))
        for Ji in J:
            np.testing.assert_array_equal(Ji, W)

    def test_jacobian_at_a_kink_uses_slope_zero(self):
        net = Network.from_params(
            [(np.array([[1.0], [2.0]]), np.array([0.0, -2.0])), (np.array([[1.0, 1.0]]), np.zeros(1))]
        )
        np.testing.assert_array_equal(net.jacobian([0.0]), [[0.0 + 2.0 * 0.0]])  # first kink: x=0 -> relu1 slope 0
        np.testing.assert_array_equal(net.jacobian([1.0]), [[1.0]])  # second kink at x=1 -> only relu1
        np.testing.assert_array_equal(net.jacobian([1.5]), [[3.0]])


# =============================================================================
# Jacobians against JAX and finite differences
# =============================================================================
@pytest.fixture
def jax_x64():
    jax = pytest.importorskip("jax")
    old = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield jax
    finally:
        jax.config.update("jax_enable_x64", old)


JAC_CASES = [
    ([3, 5, 4, 2], None),
    ([2, 6, 6, 1], None),
    ([4, 3, 3], ["relu", "relu"]),  # output ReLU
    ([3, 4, 4, 2], ["identity", "relu", "identity"]),  # identity hidden layer
    ([1, 1], ["identity"]),
    ([1, 1, 1], None),
    ([5, 1, 1], ["relu", "relu"]),
    ([2, 8, 8, 8, 3], None),
]


@pytest.mark.parametrize("sizes,acts", JAC_CASES)
def test_jacobian_matches_jax_jacfwd(jax_x64, sizes, acts):
    import jax.numpy as jnp

    rng = np.random.default_rng(sum(sizes))
    net = make_net(rng, sizes, acts)
    f = net.to_jax()
    jac = jax_x64.jit(jax_x64.jacfwd(f))
    X = rng.normal(size=(25, sizes[0]))
    J = net.jacobian(X)
    for i in range(X.shape[0]):
        if min_abs_relu_preactivation(net, X[i]) < 1e-12:
            continue  # on a kink (does not happen for Gaussian points)
        Jx = np.asarray(jac(jnp.asarray(X[i])))
        assert Jx.dtype == np.float64
        np.testing.assert_allclose(J[i], Jx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(f(jnp.asarray(X[i]))), net(X[i]), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("sizes,acts", JAC_CASES)
def test_jacobian_matches_central_differences(sizes, acts):
    rng = np.random.default_rng(10 + sum(sizes))
    net = make_net(rng, sizes, acts)
    h = 1e-6
    checked = 0
    for x in rng.normal(size=(25, sizes[0])):
        # stay a safe distance from every kink so the difference is exact-ish
        # (a step of h moves layer k's pre-activations by at most h * Π_{j<=k} ‖W_j‖_∞)
        grad_scale = max(1.0, float(np.abs(net.jacobian(x)).max()))
        reach, near_kink = 1.0, False
        for z, layer in zip(net.pre_activations(x), net.layers):
            reach *= float(np.abs(layer.W).sum(axis=1).max())
            if layer.activation.name == "relu" and np.abs(z).min() < 4 * h * reach:
                near_kink = True
        if near_kink:
            continue
        fd = np.empty((net.output_dim, net.input_dim))
        for j in range(net.input_dim):
            e = np.zeros(net.input_dim)
            e[j] = h
            fd[:, j] = (net(x + e) - net(x - e)) / (2 * h)
        np.testing.assert_allclose(net.jacobian(x), fd, rtol=1e-6, atol=1e-7 * grad_scale)
        checked += 1
    assert checked >= 5


def test_jacobian_batch_equals_single(rng):
    net = make_net(rng, [3, 6, 2])
    X = rng.normal(size=(4, 2, 3))
    J = net.jacobian(X)
    assert J.shape == (4, 2, 2, 3)
    for i in range(4):
        for k in range(2):
            np.testing.assert_array_equal(J[i, k], net.jacobian(X[i, k]))


@PROPERTY
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    seed=st.integers(0, 2**32 - 1),
    out_relu=st.booleans(),
)
def test_property_jacobian_is_the_linear_piece(sizes, seed, out_relu):
    """Inside one activation region f is affine: f(x + t d) - f(x) = t J d for
    a step t that keeps every pre-activation on its side."""
    rng = np.random.default_rng(seed)
    acts = ["relu"] * (len(sizes) - 2) + ["relu" if out_relu else "identity"]
    net = make_net(rng, sizes, acts)
    x = rng.normal(size=sizes[0])
    d = rng.normal(size=sizes[0])
    zs = net.pre_activations(x)
    dz = np.diff(np.stack([np.concatenate(net.pre_activations(x + s * d)) for s in (0.0, 1e-3)]), axis=0)[0] / 1e-3
    z = np.concatenate(zs)
    relu_mask = np.concatenate([np.full(l.out_features, l.activation.name == "relu") for l in net.layers])
    with np.errstate(divide="ignore"):
        t_max = np.where(relu_mask & (dz != 0), np.abs(z) / np.abs(dz), np.inf).min()
    t = 0.25 * min(float(t_max), 1.0)
    if t < 1e-6:
        return
    lhs = net(x + t * d) - net(x)
    rhs = t * net.jacobian(x) @ d
    np.testing.assert_allclose(lhs, rhs, rtol=1e-7, atol=1e-9 * (1 + np.abs(net(x)).max()))


def test_to_jax_without_x64_is_float32_and_close(rng):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    if jax.config.jax_enable_x64:
        pytest.skip("x64 already on")
    net = make_net(rng, [3, 4, 2])
    x = rng.normal(size=3)
    y = jax.numpy.asarray(net.to_jax()(jnp.asarray(x, dtype=jnp.float32)))
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), net(x), rtol=1e-5, atol=1e-5)


def test_to_jax_vmap(jax_x64, rng):
    import jax.numpy as jnp

    net = make_net(rng, [3, 4, 2])
    X = rng.normal(size=(6, 3))
    Y = np.asarray(jax_x64.vmap(net.to_jax())(jnp.asarray(X)))
    np.testing.assert_allclose(Y, net(X), rtol=1e-13, atol=1e-13)


def test_to_jax_derivative_at_kink_is_one_sided(jax_x64):
    import jax.numpy as jnp

    net = Network.from_params([(np.array([[1.0]]), np.array([0.0])), (np.array([[1.0]]), np.zeros(1))])
    g = float(np.asarray(jax_x64.jacfwd(net.to_jax())(jnp.array([0.0])))[0, 0])
    assert g in (0.0, 1.0), f"jax derivative at the kink is {g}"
    assert g == float(net.jacobian([0.0])[0, 0])


# =============================================================================
# derived networks
# =============================================================================
class TestDerived:
    def test_without_output_activation_strips_only_the_last(self, rng):
        net = make_net(rng, [3, 4, 4, 2], acts=["relu", "identity", "relu"], input_shape=(3, 1), name="eran")
        stripped = net.without_output_activation()
        assert stripped.activations == ("relu", "identity", "identity")
        assert not stripped.has_output_activation
        assert stripped.input_shape == (3, 1) and stripped.name == "eran"
        for a, b in zip(net.layers, stripped.layers):
            np.testing.assert_array_equal(a.W, b.W)
            np.testing.assert_array_equal(a.b, b.b)
        X = rng.normal(size=(10, 3))
        np.testing.assert_array_equal(stripped(X), net.pre_activations(X)[-1])
        np.testing.assert_array_equal(net(X), np.maximum(stripped(X), 0))

    def test_without_output_activation_on_logits_is_a_no_op(self, rng):
        net = make_net(rng, [3, 4, 2])
        assert net.without_output_activation().allclose(net)

    def test_without_output_activation_single_layer(self):
        net = Network([Layer([[2.0, -1.0]], [0.5], "relu")])
        s = net.without_output_activation()
        assert s.activations == ("identity",)
        assert s([0.0, 10.0])[0] == -9.5 and net([0.0, 10.0])[0] == 0.0

    @pytest.mark.parametrize("sizes,acts", [([3, 5, 2], None), ([3, 2], ["relu"]), ([1, 1], ["identity"])])
    def test_with_input_transform(self, rng, sizes, acts):
        net = make_net(rng, sizes, acts)
        n = sizes[0]
        scale = rng.uniform(0.5, 2.0, size=n)
        shift = rng.normal(size=n)
        t = net.with_input_transform(scale, shift)
        X = rng.normal(size=(20, n))
        np.testing.assert_allclose(t(X), net(scale * X + shift), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(t.jacobian(X), net.jacobian(scale * X + shift) * scale, rtol=1e-12, atol=1e-12)
        assert t.activations == net.activations and t.widths == net.widths

    def test_mean_std_normalisation_folding(self, rng):
        net = make_net(rng, [4, 6, 3], input_shape=(1, 2, 2))
        mean = rng.uniform(0, 1, size=4)
        std = rng.uniform(0.1, 0.5, size=4)
        folded = net.with_input_transform(1 / std, -mean / std)
        X = rng.uniform(0, 1, size=(30, 4))
        np.testing.assert_allclose(folded(X), net((X - mean) / std), rtol=1e-11, atol=1e-11)
        assert folded.input_shape == (1, 2, 2)

    def test_scalar_transform_broadcasts(self, rng):
        net = make_net(rng, [3, 4, 1])
        X = rng.normal(size=(5, 3))
        np.testing.assert_allclose(net.with_input_transform(0.5, 0.25)(X), net(0.5 * X + 0.25), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(net.with_input_transform(1.0, 0.0)(X), net(X), rtol=0, atol=1e-15)

    def test_transform_validation(self, rng):
        net = make_net(rng, [3, 4, 1])
        with pytest.raises(ShapeError, match="scale"):
            net.with_input_transform(np.ones(2), 0.0)
        with pytest.raises(ShapeError, match="shift"):
            net.with_input_transform(1.0, np.ones(4))
        with pytest.raises(NonFiniteError):
            net.with_input_transform(np.array([1.0, np.nan, 1.0]), 0.0)
        with pytest.raises(NonFiniteError):
            net.with_input_transform(1.0, np.inf)


# =============================================================================
# description
# =============================================================================
class TestSummary:
    def test_summary_sizes_and_parameters(self, rng):
        net = make_net(rng, [30, 40, 10], name="mlp")
        s = net.summary()
        assert "'mlp'" in s
        assert f"{net.num_parameters:,}" in s and net.num_parameters > 1000
        assert "1,650" in s  # 30*40 + 40 + 40*10 + 10
        assert "2 affine layers" in s
        assert "40 ReLUs" in s
        lines = s.splitlines()
        assert any(" 30 " in ln and " 40 " in ln for ln in lines)
        assert any(" 40 " in ln and " 10 " in ln for ln in lines)
        assert "note:" not in s

    def test_summary_output_relu_note(self, rng):
        net = make_net(rng, [3, 4, 2], acts=["relu", "relu"])
        s = net.summary()
        assert "note" in s and "relu" in s and "without_output_activation" in s
        assert "note" not in net.without_output_activation().summary()

    def test_summary_original_shape_and_single_layer(self):
        net = Network([Layer(np.ones((1, 6)), [0.0], "identity")], input_shape=(1, 2, 3))
        s = net.summary()
        assert "1 affine layer," in s and "1x2x3" in s and "7 parameters" in s

    def test_repr(self, rng):
        net = make_net(rng, [2, 3, 1])
        assert repr(net) == "Network(2-3-1, activations=['relu', 'identity'])"
        assert repr(net.layers[0]) == "Layer(2 -> 3, relu)"

    def test_allclose(self, rng):
        net = make_net(rng, [2, 3, 1])
        other = Network.from_params([(W + 1e-12, b) for W, b in net.params])
        assert not net.allclose(other)
        assert net.allclose(other, atol=1e-10)
        assert not net.allclose(net.without_output_activation().with_input_transform(2.0, 0.0))
        assert not net.allclose("not a network")  # type: ignore[arg-type]
        assert net.with_name("x").name == "x"
