"""lipmip.jax, the training-time functions: jit, vmap and grad apply; the numbers
equal the numpy paths they mirror (float64, on the equivalent lipmip.Network);
the upper bounds are not below the exact constant of small nets; models of
Equinox and Flax give the numbers of their parameter lists; bad input raises
LipmipError subclasses."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from nets import random_net  # noqa: E402

import lipmip  # noqa: E402
import lipmip.jax as lj  # noqa: E402
from lipmip.bounds import compute  # noqa: E402
from lipmip.bounds.backward import gradient_bounds  # noqa: E402
from lipmip.errors import (  # noqa: E402
    InvalidQueryError,
    InvalidRegionError,
    ModelFormatError,
    ShapeError,
    UnknownActivationError,
    UnsupportedOperatorError,
)
from lipmip.estimate import interval_jacobian_upper_bound, local_values, product_upper_bound  # noqa: E402
from lipmip.norms import operator_norm, vector_norm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def as_jax(net: lipmip.Network) -> list:
    return [(jnp.asarray(W), jnp.asarray(b)) for W, b in net.params]


def query_for(c, p) -> lipmip.Query:
    return lipmip.Query.vector(p) if c is None else lipmip.Query.scalar(c, p)


def margin(m: int) -> np.ndarray:
    c = np.zeros(m)
    c[0], c[-1] = 1.0, -1.0
    return c


# (network, norm): every norm, with and without c, over three kinds of net; compiled once per case and kind of
# query (jax.jit keeps the tests fast on a loaded machine; op-by-op calls compile every small op instead)
CASES = {
    "5-8-7-3 inf": (random_net(0, [5, 8, 7, 3]), "inf"),
    "4-6-6-6-2 output relu, l2": (random_net(1, [4, 6, 6, 6, 2], output_relu=True), 2),
    "3-9-9-4 identity hidden, l1": (random_net(2, [3, 9, 9, 4], identity_hidden=1), 1),
}


@functools.cache
def all_numbers(activations: tuple[str, ...], p):
    """Every number of lipmip.jax for one ball (centre ``x``, radius ``r``) and the points ``xs``, jitted."""

    def numbers(params, x, r, c, xs):
        return {
            "interval": lj.interval_jacobian_bound(params, x, r, ball=p, c=c, activations=activations),
            "interval_top_down": lj.interval_jacobian_bound(params, x, r, ball=p, c=c, activations=activations,
                                                            bottom_up=False),
            "product": lj.product_upper_bound(params, p, c=c, activations=activations),
            "values": lj.local_values(params, xs, c=c, norm=p, activations=activations),
            "lower": lj.lower_bound(params, xs, c=c, norm=p, activations=activations),
            "bounds": lj.preactivation_bounds(params, x, r, ball=p, activations=activations),
            "stable": lj.stable_fraction(params, x, r, ball=p, activations=activations),
            "rs": lj.stability_regulariser(params, x, r, ball=p, activations=activations),
        }

    return jax.jit(numbers)


# ---------------------------------------------------------------------- same numbers as the numpy paths; exact values


@pytest.mark.parametrize("case", CASES)
def test_numbers_match_the_numpy_paths_and_bracket_the_exact_constant(case):
    net, p = CASES[case]
    params, fn = as_jax(net), all_numbers(net.activations, p)
    rng = np.random.default_rng(3)
    for x, r in ((rng.normal(size=net.input_dim), 0.3), (rng.normal(size=net.input_dim), 0.8)):
        region = lipmip.Ball(x, r, p)
        forward = compute(net, region, "interval")
        xs = region.sample(40, rng)
        for c in (None, margin(net.output_dim)):
            query = query_for(c, p)
            got = fn(params, x, r, c, xs)
            # interval Jacobian: lipmip.estimate's number is ours widened by 1e-10 and rounding margins
            upper = interval_jacobian_upper_bound(net, region, query, bounds="interval", enumerate_unstable=0).upper
            assert float(got["interval"]) <= upper <= float(got["interval"]) * (1 + 1e-8)
            for key, bottom_up in (("interval", True), ("interval_top_down", False)):
                B = gradient_bounds(forward, np.eye(net.output_dim) if c is None else c, bottom_up=bottom_up).input_abs
                unwidened = operator_norm(B, p) if c is None else vector_norm(B[0], query.dual_input_norm)
                assert float(got[key]) == pytest.approx(float(unwidened), rel=1e-12)
            # norm product: the certified one is ours rounded up (its ℓ2 factors are proven spectral norms)
            naive = product_upper_bound(net, None, query)
            assert float(got["product"]) <= naive.upper <= float(got["product"]) * (1 + 1e-8)
            W_last, dual = net.layers[-1].W, query.dual_input_norm
            if c is None:
                head = operator_norm(W_last, p)
            elif net.has_output_activation:
                head = np.abs(c) @ vector_norm(W_last, dual, axis=1)
            else:
                head = vector_norm(c @ W_last, dual)
            plain = head * math.prod(float(operator_norm(layer.W, p)) for layer in net.layers[:-1])
            assert float(got["product"]) == pytest.approx(float(plain), rel=1e-12)
            # local values and their maximum
            reference = local_values(net, query, xs)
            np.testing.assert_allclose(got["values"], reference, rtol=1e-12)
            assert float(got["lower"]) == pytest.approx(reference.max(), rel=1e-12)
            # forward bounds, stable fraction, Xiao et al.'s RS loss on them
            for (lo, hi), ref_lo, ref_hi in zip(got["bounds"], forward.lower, forward.upper):
                np.testing.assert_allclose(lo, ref_lo, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(hi, ref_hi, rtol=1e-12, atol=1e-12)
            assert float(got["stable"]) == pytest.approx(forward.stable_fraction, abs=1e-15)
            relu = [k for k, act in enumerate(net.activations) if act == "relu"]
            rs = sum(np.sum(-np.tanh(1 + forward.lower[k] * forward.upper[k])) for k in relu)
            assert float(got["rs"]) == pytest.approx(rs, rel=1e-12)
            # soundness sanity: the two upper bounds are not below the exact constant, the lower bound not above
            exact = lipmip.lipschitz(net, region, query, method="enumerate")
            assert exact.status == "exact" and exact.upper <= exact.lower * (1 + 1e-9)  # L in [lower, upper]
            assert float(got["interval"]) >= exact.lower * (1 - 1e-12)
            assert float(got["product"]) >= exact.lower * (1 - 1e-12)
            assert float(got["lower"]) <= exact.upper * (1 + 1e-12)
        assert 0 < forward.stable_fraction < 1 or r < 0.5  # the large ball has unstable ReLUs: the test bites


def test_box_radius_matches_numpy_box_with_a_fixed_coordinate():
    net, _ = CASES["5-8-7-3 inf"]
    x = np.random.default_rng(4).normal(size=5)
    radii = np.array([0.2, 0.0, 0.1, 0.4, 0.3])  # coordinate 1 is fixed
    region = lipmip.Box(x - radii, x + radii)
    got = all_numbers(net.activations, "inf")(as_jax(net), x, radii, margin(3), x[None, :])
    upper = interval_jacobian_upper_bound(net, region, query_for(margin(3), "inf"), bounds="interval",
                                         enumerate_unstable=0).upper
    assert float(got["interval"]) <= upper <= float(got["interval"]) * (1 + 1e-8)
    reference = compute(net, region, "interval")
    for (lo, hi), ref_lo, ref_hi in zip(got["bounds"], reference.lower, reference.upper):
        np.testing.assert_allclose(lo, ref_lo, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hi, ref_hi, rtol=1e-12, atol=1e-12)


def test_vmap_over_centres_and_float32():
    net, p = CASES["5-8-7-3 inf"]
    params, fn = as_jax(net), all_numbers(net.activations, p)
    centers = jnp.asarray(np.random.default_rng(12).normal(size=(4, 5)))
    c = jnp.asarray(margin(3))
    batched = jax.jit(jax.vmap(lambda x: lj.interval_jacobian_bound(params, x, 0.3, ball=p, c=c)))(centers)
    looped = [fn(params, x, 0.3, c, x[None, :]) for x in centers]
    np.testing.assert_allclose(batched, [float(got["interval"]) for got in looped], rtol=1e-13)
    penalty = jax.jit(lambda P: lj.lipschitz_penalty(P, kind="interval", centers=centers, radius=0.3, c=c, bottom_up=False))
    assert float(penalty(params)) == pytest.approx(np.mean([float(got["interval_top_down"]) for got in looped]), rel=1e-13)
    single = [(W.astype(jnp.float32), b.astype(jnp.float32)) for W, b in params]
    got = fn(single, centers[0].astype(jnp.float32), 0.3, c.astype(jnp.float32), centers[:1].astype(jnp.float32))
    assert got["interval"].dtype == jnp.float32
    assert float(got["interval"]) == pytest.approx(float(looped[0]["interval"]), rel=1e-5)


# ---------------------------------------------------------------------- jit and grad


def finite_tree(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


C3 = margin(3)
PUBLIC = {  # every public function of lipmip.jax as f(params, points) -> scalar; ℓ2 where a norm can be 0 at 0
    "lower_bound": lambda P, X: lj.lower_bound(P, X, c=C3, norm=2),
    "product_upper_bound": lambda P, X: lj.product_upper_bound(P, 2, c=C3),
    "interval_jacobian_bound": lambda P, X: lj.interval_jacobian_bound(P, X[0], 0.1, ball=2),
    "preactivation_bounds": lambda P, X: sum(jnp.sum(hi - lo) for lo, hi in lj.preactivation_bounds(P, X[0], 0.1)),
    "stability_regulariser": lambda P, X: lj.stability_regulariser(P, X, 0.1),
    "stable_fraction": lambda P, X: lj.stable_fraction(P, X, 0.1),
    "lipschitz_penalty product": lambda P, X: lj.lipschitz_penalty(P, kind="product"),
    "lipschitz_penalty interval": lambda P, X: lj.lipschitz_penalty(P, kind="interval", centers=X, radius=0.1, c=C3),
    "lipschitz_penalty local": lambda P, X: lj.lipschitz_penalty(P, kind="local", centers=X, norm=2),
}


@functools.cache
def value_and_gradients(name: str):
    fn = PUBLIC[name]
    return jax.jit(lambda P, X: (fn(P, X), jax.grad(fn)(P, X), jax.grad(fn, argnums=1)(P, X)))


def test_every_public_function_jits_and_has_finite_gradients():
    params = as_jax(random_net(7, [4, 6, 5, 3]))
    centers = jnp.asarray(np.random.default_rng(8).normal(size=(5, 4)))
    dead = [(W, b - 100.0) if k == 0 else (W, b) for k, (W, b) in enumerate(params)]  # every first-layer ReLU off
    for name in PUBLIC:
        value, by_params, by_inputs = value_and_gradients(name)(params, centers)
        assert value.shape == () and finite_tree((value, by_params, by_inputs)), name
        assert finite_tree(value_and_gradients(name)(dead, centers)), name  # an ℓ2 norm of 0 must not give NaN


def test_gradients_are_the_derivative():
    """The directional derivative along a random direction in parameter space, by
    jax.grad and by a central difference (the step stays on one smooth piece)."""
    params = as_jax(random_net(7, [4, 6, 5, 3]))
    centers = jnp.asarray(np.random.default_rng(8).normal(size=(5, 4)))
    rng = np.random.default_rng(11)
    direction = [(jnp.asarray(rng.normal(size=W.shape)), jnp.asarray(rng.normal(size=b.shape))) for W, b in params]
    h = 1e-6
    plus = jax.tree_util.tree_map(lambda a, d: a + h * d, params, direction)
    minus = jax.tree_util.tree_map(lambda a, d: a - h * d, params, direction)
    for name in ("lower_bound", "product_upper_bound", "interval_jacobian_bound", "stability_regulariser",
                 "lipschitz_penalty interval"):
        compiled = value_and_gradients(name)
        _, grad, _ = compiled(params, centers)
        slope = sum(float(jnp.sum(g * d)) for g, d in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(direction)))
        difference = (float(compiled(plus, centers)[0]) - float(compiled(minus, centers)[0])) / (2 * h)
        assert slope == pytest.approx(difference, rel=1e-5, abs=1e-7), name
        assert abs(slope) > 1e-3, name  # the parameters do move it


# ---------------------------------------------------------------------- the stability regulariser


def test_regulariser_falls_as_the_network_is_made_more_stable():
    net = random_net(13, [6, 10, 10, 3])
    params = as_jax(net)
    centers = jnp.asarray(np.random.default_rng(14).normal(size=(8, 6)))
    r = 0.3
    rs, stable = jax.jit(lj.stability_regulariser), jax.jit(lj.stable_fraction)
    before_loss, before_stable = rs(params, centers, r), stable(params, centers, r)
    shifted = [(W, b + 3.0) if k < 2 else (W, b) for k, (W, b) in enumerate(params)]  # hidden neurons pushed active
    assert rs(shifted, centers, r) < before_loss
    assert stable(shifted, centers, r) > before_stable
    # gradient descent on the regulariser alone makes neurons stable (counted by the numpy path)
    step = jax.jit(lambda P: jax.tree_util.tree_map(lambda a, g: a - 0.05 * g, P, jax.grad(rs)(P, centers, r)))
    trained = params
    for _ in range(30):
        trained = step(trained)
    assert rs(trained, centers, r) < before_loss
    after = lipmip.Network.from_params([(np.asarray(W), np.asarray(b)) for W, b in trained])
    counted = np.mean([compute(after, lipmip.Ball(np.asarray(x), r), "interval").stable_fraction for x in centers])
    assert counted > float(before_stable) + 0.1


def test_no_relu_means_no_regulariser_and_all_stable():
    linear = [(jnp.ones((2, 3)), jnp.zeros(2))]
    x = np.array([0.1, -0.2, 0.3])
    assert float(lj.stability_regulariser(linear, x, 0.5)) == 0.0
    assert float(lj.stable_fraction(linear, x, 0.5)) == 1.0


# ---------------------------------------------------------------------- models


def model_numbers(model, x, xs):
    return jnp.stack([lj.interval_jacobian_bound(model, x, 0.2, ball=2), lj.stability_regulariser(model, xs, 0.2)])


@functools.cache
def reference_numbers(activations: tuple[str, ...]):
    return jax.jit(lambda P, x, xs: jnp.stack([lj.interval_jacobian_bound(P, x, 0.2, ball=2, activations=activations),
                                               lj.stability_regulariser(P, xs, 0.2, activations=activations)]))


def check_conversion(model, expected_activations):
    """as_params / activations_of read the model as lipmip.load does."""
    params, acts = lj.as_params(model), lj.activations_of(model)
    net = lipmip.load(model)
    assert acts == expected_activations == net.activations
    assert len(params) == net.depth
    for (W, b), (W_ref, b_ref) in zip(params, net.params):
        np.testing.assert_allclose(W, W_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b, b_ref, rtol=1e-12, atol=1e-15)
    return net


def test_equinox_models_give_the_numbers_of_their_params():
    eqx = pytest.importorskip("equinox", reason="Equinox is not installed (pip install 'lipmip[jax-models]')")
    rng = np.random.default_rng(16)
    x, xs = jnp.asarray(rng.normal(size=4)), jnp.asarray(rng.normal(size=(6, 4)))
    key = jax.random.PRNGKey(0)
    mlp = eqx.nn.MLP(4, 3, 8, 2, activation=jax.nn.relu, key=key)
    net = check_conversion(mlp, ("relu", "relu", "identity"))
    check_conversion(eqx.nn.MLP(4, 3, 8, 3, activation=jax.nn.relu, scan=True, key=key), ("relu",) * 3 + ("identity",))
    check_conversion(eqx.nn.MLP(4, 3, 8, 1, activation=jax.nn.relu, final_activation=jax.nn.relu, key=key),
                     ("relu", "relu"))
    keys = jax.random.split(key, 3)
    sequential = eqx.nn.Sequential([eqx.nn.Linear(4, 8, key=keys[0]), eqx.nn.Lambda(jax.nn.relu),
                                    eqx.nn.Linear(8, 5, key=keys[1]), eqx.nn.Linear(5, 3, key=keys[2])])
    check_conversion(sequential, ("relu", "identity"))  # the two last Linear layers are composed
    # under filter_jit / filter_grad the model's arrays are tracers
    got = eqx.filter_jit(model_numbers)(mlp, x, xs)
    np.testing.assert_allclose(got, reference_numbers(net.activations)(as_jax(net), x, xs), rtol=1e-12)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: lj.stability_regulariser(m, xs, 0.2)))(mlp)
    assert finite_tree(grads) and float(jnp.abs(grads.layers[0].bias).sum()) > 0
    with pytest.raises(UnsupportedOperatorError, match="tanh"):
        lj.as_params(eqx.nn.MLP(4, 3, 8, 2, activation=jax.nn.tanh, key=key))
    with pytest.raises(ModelFormatError, match="activations= applies only"):
        lj.product_upper_bound(mlp, activations=("relu", "relu", "identity"))


def test_flax_models_give_the_numbers_of_their_params():
    pytest.importorskip("flax", reason="Flax is not installed (pip install 'lipmip[jax-models]')")
    import flax.linen as linen
    from flax import nnx

    rng = np.random.default_rng(17)
    x, xs = jnp.asarray(rng.normal(size=4)), jnp.asarray(rng.normal(size=(6, 4)))
    f64 = {"param_dtype": jnp.float64}
    model = nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0), **f64), nnx.relu, nnx.Linear(8, 8, rngs=nnx.Rngs(1), **f64),
                           nnx.relu, nnx.Linear(8, 3, rngs=nnx.Rngs(2), **f64))
    net = check_conversion(model, ("relu", "relu", "identity"))
    got = jax.jit(model_numbers)(model, x, xs)  # an nnx module is a pytree: its arrays are tracers here
    np.testing.assert_allclose(got, reference_numbers(net.activations)(as_jax(net), x, xs), rtol=1e-12)

    class MLP(linen.Module):
        @linen.compact
        def __call__(self, h):
            h = linen.relu(linen.Dense(8, param_dtype=jnp.float64)(h))
            h = linen.relu(linen.Dense(8, param_dtype=jnp.float64)(h))
            return linen.Dense(3, param_dtype=jnp.float64)(h)

    variables = MLP().init(jax.random.PRNGKey(0), jnp.zeros(4))
    net = check_conversion(variables, ("relu", "relu", "identity"))
    assert lj.as_params(variables)[0][0].shape == (8, 4)  # linen kernels (in, out) are transposed
    got = jax.jit(model_numbers)(variables, x, xs)
    np.testing.assert_allclose(got, reference_numbers(net.activations)(as_jax(net), x, xs), rtol=1e-12)
    grads = jax.jit(jax.grad(lambda v: lj.lipschitz_penalty(v, kind="product", norm=2)))(variables)
    assert grads["params"]["Dense_0"]["kernel"].shape == (4, 8) and finite_tree(grads)


# ---------------------------------------------------------------------- bad input


def test_bad_input_raises_lipmip_errors():
    net, _ = CASES["5-8-7-3 inf"]
    params = as_jax(net)
    x = np.zeros(5)
    broken = [params[0], (params[1][0][:, :4], params[1][1]), params[2]]
    with pytest.raises(ShapeError, match="parameter entry 1 takes 4 inputs but parameter entry 0 produces 8"):
        lj.product_upper_bound(broken)
    with pytest.raises(ShapeError, match="parameter entry 1 takes 4 inputs"):  # shapes are checked at trace time
        jax.jit(lambda P: lj.interval_jacobian_bound(P, x, 0.1))(broken)
    with pytest.raises(ShapeError, match="bias b has shape"):
        lj.product_upper_bound([(params[0][0], params[0][1][:3])])
    with pytest.raises(ShapeError, match="empty"):
        lj.product_upper_bound([])
    with pytest.raises(ShapeError, match="3 layers but 2 activation names"):
        lj.product_upper_bound(params, activations=["relu", "identity"])
    with pytest.raises(UnknownActivationError):
        lj.product_upper_bound(params, activations=["relu", "tanh", "identity"])
    with pytest.raises(InvalidQueryError, match="unknown norm 'l3'"):
        lj.product_upper_bound(params, "l3")
    with pytest.raises(InvalidQueryError, match="unknown input norm"):
        lj.interval_jacobian_bound(params, x, 0.1, norm=3)
    with pytest.raises(InvalidRegionError, match="unknown ball norm"):
        lj.stable_fraction(params, x, 0.1, ball="l7")
    with pytest.raises(InvalidQueryError, match="c has shape"):
        lj.lower_bound(params, x, c=np.ones(4))
    with pytest.raises(ShapeError, match="points xs has shape"):
        lj.lower_bound(params, np.zeros((2, 6)))
    with pytest.raises(ShapeError, match="one centre"):
        lj.interval_jacobian_bound(params, np.zeros((2, 5)), 0.1)
    for radius in (0.0, -1.0, math.nan, np.zeros(5)):
        with pytest.raises(InvalidRegionError, match="radius"):
            lj.interval_jacobian_bound(params, x, radius)
    with pytest.raises(InvalidRegionError, match="radius has shape"):
        lj.interval_jacobian_bound(params, x, np.ones(5), ball=2)  # per-coordinate radii are an ℓ∞ box only
    with pytest.raises(ModelFormatError, match="cannot read parameters from an object of type str"):
        lj.lower_bound("model.npz", x)
    with pytest.raises(ModelFormatError):
        lj.as_params({"weights": np.ones(3)})
    with pytest.raises(ModelFormatError, match="activations= applies only"):
        lj.product_upper_bound(net, activations=net.activations)  # a lipmip.Network knows its activations
    with pytest.raises(InvalidQueryError, match="unknown penalty kind"):
        lj.lipschitz_penalty(params, kind="spectral")
    with pytest.raises(InvalidQueryError, match="needs centers"):
        lj.lipschitz_penalty(params, kind="interval", radius=0.1)
    with pytest.raises(InvalidQueryError, match="needs a radius"):
        lj.lipschitz_penalty(params, kind="interval", centers=x)
    with pytest.raises(InvalidQueryError, match="global"):
        lj.lipschitz_penalty(params, kind="product", centers=x)


# ---------------------------------------------------------------------- the documented example runs


def test_training_doc_example_runs():
    pytest.importorskip("optax", reason="optax is not installed (it comes with flax: pip install 'lipmip[jax-models]')")
    text = (REPO / "docs" / "training.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```\n", text, re.S | re.M)
    assert blocks, "docs/training.md has no python example"
    namespace: dict = {}
    with jax.enable_x64(False):  # as a user runs it: float32
        exec(compile(blocks[0], "docs/training.md", "exec"), namespace)  # noqa: S102
    history = namespace["history"]
    assert history[-1]["stable"] > history[0]["stable"] + 0.2 and history[-1]["accuracy"] > 0.7
    assert namespace["result"].lower <= namespace["result"].upper
