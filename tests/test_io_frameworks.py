"""Reading networks from parameter lists, PyTorch, Equinox and Flax.

Each framework's tests skip (with the reason) when it is not installed.
Every reader is checked the same way: the loaded Network must compute what
the framework's own forward pass computes, on 100 random inputs, in float64
where the framework allows it.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

import lipmip
from lipmip.errors import ModelFormatError, ShapeError, UnsupportedOperatorError
from lipmip.io.objects import load_object

N_POINTS = 100

# (layer sizes, ReLU on the output): a typical MLP and the edge shapes
SHAPES = [
    ((5, 16, 16, 3), False),
    ((5, 3), False),  # a single linear layer
    ((1, 8, 2), False),  # one input
    ((4, 1, 3), False),  # one hidden neuron
    ((6, 8, 1), False),  # one output
    ((5, 7, 2), True),  # ReLU on the output
]
SHAPE_IDS = ["5-16-16-3", "single-layer", "one-input", "one-hidden", "one-output", "relu-output"]


def expected_activations(sizes: tuple[int, ...], out_relu: bool) -> tuple[str, ...]:
    return ("relu",) * (len(sizes) - 2) + ("relu" if out_relu else "identity",)


def sample(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=(N_POINTS, *shape))


def assert_same_function(net: lipmip.Network, forward, x: np.ndarray, tol: float) -> None:
    """``net`` and the framework's ``forward`` agree on the batch ``x``, and the
    check is not vacuous (the outputs are not all zero)."""
    expected = np.asarray(forward(x), dtype=np.float64).reshape(N_POINTS, -1)
    got = net(x).reshape(N_POINTS, -1)
    assert np.any(expected != 0)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


# ====================================================================== plain lists


def random_pairs(sizes, seed=0, layout="out_in"):
    rng = np.random.default_rng(seed)
    pairs = []
    for n_in, n_out in itertools.pairwise(sizes):
        W = rng.normal(size=(n_out, n_in))
        pairs.append((W if layout == "out_in" else W.T.copy(), rng.normal(size=n_out)))
    return pairs


def numpy_forward(pairs, activations):
    def forward(x):
        h = x
        for (W, b), act in zip(pairs, activations):
            h = h @ W.T + b
            h = np.maximum(h, 0) if act == "relu" else h
        return h

    return forward


@pytest.mark.parametrize("sizes, out_relu", SHAPES, ids=SHAPE_IDS)
def test_list_out_in_and_in_out_give_the_same_network(sizes, out_relu):
    pairs = random_pairs(sizes)
    acts = list(expected_activations(sizes, out_relu))
    net = lipmip.load(pairs, activations=acts if out_relu else None)
    transposed = [(W.T, b) for W, b in pairs]
    net_t = lipmip.load(transposed, layout="in_out", activations=acts if out_relu else None)
    assert net.activations == tuple(acts)
    assert net.widths == sizes
    assert net.allclose(net_t)
    assert_same_function(net, numpy_forward(pairs, acts), sample(1, (sizes[0],)), 1e-12)


def test_list_of_nested_lists_and_jax_arrays():
    jnp = pytest.importorskip("jax.numpy")
    pairs = random_pairs((3, 4, 2), seed=2)
    as_lists = [(W.tolist(), b.tolist()) for W, b in pairs]
    as_jax = [(jnp.asarray(W), jnp.asarray(b)) for W, b in pairs]
    reference = lipmip.load(pairs)
    assert lipmip.load(as_lists).allclose(reference)
    assert lipmip.load(as_jax).allclose(reference, rtol=1e-6, atol=1e-6)  # JAX may hold float32


def test_list_with_wrong_layout_is_a_shape_error():
    in_out = random_pairs((5, 16, 3), layout="in_out")
    with pytest.raises(ShapeError):
        lipmip.load(in_out)  # read as (out, in)
    out_in = random_pairs((5, 16, 3))
    with pytest.raises(ShapeError):
        lipmip.load(out_in, layout="in_out")


def test_list_activations_override_and_bias_none():
    pairs = random_pairs((4, 6, 3), seed=3)
    net = lipmip.load(pairs, activations=["identity", "relu"])
    assert net.activations == ("identity", "relu")
    assert_same_function(net, numpy_forward(pairs, ["identity", "relu"]), sample(4, (4,)), 1e-12)
    no_bias = lipmip.load([(pairs[0][0], None), pairs[1]])
    assert np.all(no_bias.layers[0].b == 0)


def test_list_errors():
    with pytest.raises(ShapeError):
        lipmip.load([])
    with pytest.raises(ModelFormatError, match="layout"):
        lipmip.load(random_pairs((2, 2)), layout="columns")
    with pytest.raises(ShapeError):
        lipmip.load(random_pairs((3, 2)), activations=["relu", "relu"])


def test_a_plain_list_imports_no_framework():
    code = (
        "import sys, lipmip\n"
        "lipmip.load([([[1.0, 2.0]], [0.5])])\n"
        "print(sorted(m for m in ('torch', 'flax', 'equinox') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("obj", [3, b"not a model path object", object(), {"a": "b"}, {}], ids=repr)
def test_unsupported_object_is_a_model_format_error(obj):
    with pytest.raises(ModelFormatError) as info:
        load_object(obj)
    assert "supported" in str(info.value).lower()


def test_unsupported_type_is_named():
    with pytest.raises(ModelFormatError, match=r"\bint\b"):
        lipmip.load(42)


def test_network_passes_through():
    net = lipmip.load(random_pairs((2, 3)))
    assert lipmip.load(net) is net


# ====================================================================== PyTorch


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'lipmip[torch]')")


def torch_mlp(torch, sizes, out_relu, seed=0, dtype=None):
    torch.manual_seed(seed)
    modules = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        modules.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or out_relu:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules).to(dtype or torch.float64)
    return model.eval()


def torch_forward(torch, model):
    dtype = next(model.parameters()).dtype

    def forward(x):
        with torch.no_grad():
            return model(torch.as_tensor(x, dtype=dtype)).double().numpy()

    return forward


@pytest.mark.parametrize("sizes, out_relu", SHAPES, ids=SHAPE_IDS)
def test_torch_sequential(torch, sizes, out_relu):
    model = torch_mlp(torch, sizes, out_relu)
    net = lipmip.load(model)
    assert net.widths == sizes
    assert net.activations == expected_activations(sizes, out_relu)
    assert_same_function(net, torch_forward(torch, model), sample(5, (sizes[0],)), 1e-12)


def test_torch_float32_model_and_linear_without_bias(torch):
    model = torch_mlp(torch, (5, 16, 3), False, seed=1, dtype=torch.float32)
    model[0] = torch.nn.Linear(5, 16, bias=False)
    net = lipmip.load(model)
    assert all(layer.W.dtype == np.float64 for layer in net.layers)
    assert np.all(net.layers[0].b == 0)
    x = sample(6, (5,)).astype(np.float32)
    assert_same_function(net, torch_forward(torch, model), x, 1e-5)


def test_torch_single_linear_module(torch):
    torch.manual_seed(2)
    model = torch.nn.Linear(4, 2).double()
    net = lipmip.load(model)
    assert net.activations == ("identity",)
    assert_same_function(net, torch_forward(torch, model), sample(7, (4,)), 1e-12)


def test_torch_consecutive_linear_layers_are_composed(torch):
    nn = torch.nn
    torch.manual_seed(3)
    model = (
        nn.Sequential(
            nn.Linear(5, 7),
            nn.Identity(),
            nn.Linear(7, 4),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4, 3),
            nn.Linear(3, 2),
        )
        .double()
        .eval()
    )
    net = lipmip.load(model)
    assert net.widths == (5, 4, 2)
    assert net.activations == ("relu", "identity")
    assert_same_function(net, torch_forward(torch, model), sample(8, (5,)), 1e-12)


def test_torch_leading_and_repeated_relus(torch):
    nn = torch.nn
    torch.manual_seed(4)
    model = nn.Sequential(nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2), nn.ReLU(), nn.ReLU())
    model = model.double().eval()
    net = lipmip.load(model)
    assert net.widths == (5, 5, 4, 2)
    assert net.activations == ("relu", "relu", "relu")
    np.testing.assert_array_equal(net.layers[0].W, np.eye(5))
    assert_same_function(net, torch_forward(torch, model), sample(9, (5,)), 1e-12)


def test_torch_nested_sequentials_are_flattened(torch):
    nn = torch.nn
    torch.manual_seed(5)
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 6), nn.ReLU()), nn.Sequential(nn.Sequential(nn.Linear(6, 2))))
    model = model.double().eval()
    net = lipmip.load(model)
    assert net.widths == (3, 6, 2)
    assert_same_function(net, torch_forward(torch, model), sample(10, (3,)), 1e-12)


def test_torch_flatten_with_image_input(torch):
    nn = torch.nn
    torch.manual_seed(6)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)).double().eval()
    net = lipmip.load(model, input_shape=(1, 4, 4))
    assert net.input_shape == (1, 4, 4)
    assert net.input_dim == 16
    assert_same_function(net, torch_forward(torch, model), sample(11, (1, 4, 4)), 1e-12)


def test_torch_image_input_needs_flatten(torch):
    model = torch_mlp(torch, (16, 4), False)
    with pytest.raises(ShapeError, match="Flatten"):
        lipmip.load(model, input_shape=(1, 4, 4))
    nn = torch.nn
    late_flatten = nn.Sequential(nn.Linear(16, 4), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ShapeError, match="Flatten"):
        lipmip.load(late_flatten, input_shape=(1, 4, 4))
    with pytest.raises(UnsupportedOperatorError, match="start_dim"):
        lipmip.load(torch.nn.Sequential(torch.nn.Flatten(start_dim=2), torch.nn.Linear(4, 2)))


@pytest.fixture(scope="module")
def custom_modules(torch):
    class TwoLayerNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) * 2

    class ScaledLinear(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    class Identity(torch.nn.Module):  # a custom class that only shares a supported name
        def forward(self, x):
            return x + 1

    return TwoLayerNet, ScaledLinear, Identity


@pytest.mark.parametrize(
    "make_layer, cls_name",
    [
        (lambda nn: nn.Conv2d(1, 1, 3), "Conv2d"),
        (lambda nn: nn.Sigmoid(), "Sigmoid"),
        (lambda nn: nn.Tanh(), "Tanh"),
        (lambda nn: nn.BatchNorm1d(4), "BatchNorm1d"),
        (lambda nn: nn.LeakyReLU(), "LeakyReLU"),
    ],
    ids=["Conv2d", "Sigmoid", "Tanh", "BatchNorm1d", "LeakyReLU"],
)
def test_torch_unsupported_layer_is_named_with_its_position(torch, make_layer, cls_name):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), make_layer(nn), nn.Linear(4, 2))
    with pytest.raises(UnsupportedOperatorError, match=rf"{cls_name}.*'2'"):
        lipmip.load(model)


def test_torch_custom_modules_are_refused(torch, custom_modules):
    two_layer_net, scaled_linear, fake_identity = custom_modules
    with pytest.raises(UnsupportedOperatorError, match="TwoLayerNet"):
        lipmip.load(two_layer_net())
    nested = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(scaled_linear(4, 2)))
    with pytest.raises(UnsupportedOperatorError, match=r"ScaledLinear.*'1\.0'"):
        lipmip.load(nested)
    with pytest.raises(UnsupportedOperatorError, match="Identity"):
        lipmip.load(torch.nn.Sequential(torch.nn.Linear(3, 3), fake_identity()))


def test_torch_module_refuses_activations_option(torch):
    with pytest.raises(ModelFormatError, match="activations"):
        lipmip.load(torch_mlp(torch, (3, 2), False), activations=["relu"])


def test_torch_saved_module_and_state_dict(torch, tmp_path):
    model = torch_mlp(torch, (5, 16, 16, 3), False, seed=7)
    forward = torch_forward(torch, model)
    x = sample(12, (5,))
    torch.save(model, tmp_path / "model.pt")
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    from_module = lipmip.load(tmp_path / "model.pt")
    from_state = lipmip.load(str(tmp_path / "weights.pth"))
    assert from_module.name == "model.pt"
    assert from_state.name == "weights.pth"
    for net in (from_module, from_state):
        assert net.activations == ("relu", "relu", "identity")
        assert_same_function(net, forward, x, 1e-12)
    assert lipmip.load(model.state_dict()).allclose(from_state)


def test_torch_saved_module_keeps_output_relu_state_dict_takes_activations(torch, tmp_path):
    model = torch_mlp(torch, (4, 6, 2), True, seed=8)
    torch.save(model, tmp_path / "relu_out.pt")
    torch.save(model.state_dict(), tmp_path / "relu_out_state.pt")
    assert lipmip.load(tmp_path / "relu_out.pt").activations == ("relu", "relu")
    net = lipmip.load(tmp_path / "relu_out_state.pt", activations=["relu", "relu"])
    assert_same_function(net, torch_forward(torch, model), sample(13, (4,)), 1e-12)


def test_torch_unsupported_state_dict_entries(torch, tmp_path):
    nn = torch.nn
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).state_dict(), tmp_path / "bn.pt")
    with pytest.raises(UnsupportedOperatorError, match="running_mean"):
        lipmip.load(tmp_path / "bn.pt")
    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3)).state_dict(), tmp_path / "conv.pt")
    with pytest.raises(UnsupportedOperatorError, match=r"conv\.pt.*'0'"):
        lipmip.load(tmp_path / "conv.pt")


def test_torch_training_checkpoint_is_explained(torch, tmp_path):
    model = torch_mlp(torch, (3, 2), False)
    torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, tmp_path / "ckpt.pt")
    with pytest.raises(ModelFormatError, match=r"ckpt\.pt.*'epoch'.*checkpoint"):
        lipmip.load(tmp_path / "ckpt.pt")


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "plain-pickle", "tensor"])
def test_torch_unreadable_file_is_a_model_format_error(torch, tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"this is not a PyTorch file")
    elif kind == "truncated":
        torch.save(torch_mlp(torch, (3, 2), False), tmp_path / "whole.pt")
        path.write_bytes((tmp_path / "whole.pt").read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain-pickle":
        import pickle

        path.write_bytes(pickle.dumps({"a": 1}))
    else:
        torch.save(torch.ones(3), path)
    with pytest.raises(ModelFormatError, match=f"{kind}.pt"):
        lipmip.load(path)


# ====================================================================== JAX frameworks


@pytest.fixture
def jax64():
    """JAX with 64-bit floats switched on for the test (when this JAX can scope
    that); yields ``(jax, float dtype, tolerance)``."""
    jax = pytest.importorskip("jax")
    scope = getattr(jax, "enable_x64", None)
    if scope is None:
        scope = getattr(jax.experimental, "enable_x64", None)
    if scope is None:
        yield jax, np.float32, 1e-5
        return
    with scope(True):
        yield jax, np.float64, 1e-12


@pytest.fixture(scope="module")
def eqx():
    return pytest.importorskip("equinox", reason="Equinox is not installed (pip install 'lipmip[jax-models]')")


@pytest.fixture(scope="module")
def nnx():
    pytest.importorskip("flax", reason="Flax is not installed (pip install 'lipmip[jax-models]')")
    from flax import nnx

    return nnx


@pytest.fixture(scope="module")
def linen():
    pytest.importorskip("flax", reason="Flax is not installed (pip install 'lipmip[jax-models]')")
    import flax.linen

    return flax.linen


def jax_batched(jax, model, dtype, vmap=True):
    fn = jax.vmap(model) if vmap else model
    return lambda x: np.asarray(fn(jax.numpy.asarray(x, dtype=dtype)))


# ---------------------------------------------------------------------- Equinox

EQX_SHAPES = [  # (in, out, width, depth, final ReLU) -> layer sizes
    ((5, 3, 16, 2, False), (5, 16, 16, 3)),
    ((5, 3, 16, 0, False), (5, 3)),
    ((1, 2, 8, 1, False), (1, 8, 2)),
    ((4, 3, 1, 1, False), (4, 1, 3)),
    ((6, 1, 8, 1, False), (6, 8, 1)),
    ((5, 2, 7, 1, True), (5, 7, 2)),
]


@pytest.mark.parametrize("spec, sizes", EQX_SHAPES, ids=SHAPE_IDS)
def test_equinox_mlp(jax64, eqx, spec, sizes):
    jax, dtype, tol = jax64
    n_in, n_out, width, depth, final_relu = spec
    final = jax.nn.relu if final_relu else (lambda x: x)
    model = eqx.nn.MLP(n_in, n_out, width, depth, final_activation=final, key=jax.random.PRNGKey(depth + width))
    net = lipmip.load(model)
    assert net.widths == sizes
    assert net.activations == expected_activations(sizes, final_relu)
    assert_same_function(net, jax_batched(jax, model, dtype), sample(20, (n_in,)), tol)


def test_equinox_mlp_default_identity_no_bias_and_scan(jax64, eqx):
    jax, dtype, tol = jax64
    key = jax.random.PRNGKey(3)
    for model, depth in (
        (eqx.nn.MLP(4, 2, 6, 2, use_bias=False, use_final_bias=False, key=key), 3),
        (eqx.nn.MLP(4, 2, 6, 3, scan=True, key=key), 4),  # hidden layers stacked
    ):
        net = lipmip.load(model)
        assert net.activations == ("relu",) * (depth - 1) + ("identity",)
        assert_same_function(net, jax_batched(jax, model, dtype), sample(21, (4,)), tol)


def test_equinox_depth0_applies_no_final_activation(jax64, eqx):
    # Equinox skips final_activation for depth 0; lipmip follows the forward pass
    jax, dtype, tol = jax64
    model = eqx.nn.MLP(3, 2, 4, 0, final_activation=jax.nn.relu, key=jax.random.PRNGKey(4))
    net = lipmip.load(model)
    assert net.activations == ("identity",)
    assert_same_function(net, jax_batched(jax, model, dtype), sample(22, (3,)), tol)


def test_equinox_sequential(jax64, eqx):
    jax, dtype, tol = jax64
    k1, k2 = jax.random.split(jax.random.PRNGKey(5))
    nn = eqx.nn
    model = nn.Sequential(
        [
            nn.Linear(5, 8, key=k1),
            nn.Lambda(jax.nn.relu),
            nn.Identity(),
            nn.Dropout(0.3, inference=True),
            nn.Linear(8, 3, key=k2),
            nn.Lambda(jax.nn.relu),
        ]
    )
    net = lipmip.load(model)
    assert net.activations == ("relu", "relu")
    assert_same_function(net, jax_batched(jax, model, dtype), sample(23, (5,)), tol)


def test_equinox_unsupported_activations_and_layers(jax64, eqx):
    jax, _, _ = jax64
    key = jax.random.PRNGKey(6)
    with pytest.raises(UnsupportedOperatorError, match="tanh"):
        lipmip.load(eqx.nn.MLP(3, 2, 4, 1, activation=jax.numpy.tanh, key=key))
    with pytest.raises(UnsupportedOperatorError, match="sigmoid"):
        lipmip.load(eqx.nn.MLP(3, 2, 4, 1, final_activation=jax.nn.sigmoid, key=key))
    with pytest.raises(UnsupportedOperatorError, match="<lambda>"):
        lipmip.load(eqx.nn.MLP(3, 2, 4, 1, activation=lambda x: jax.numpy.maximum(x, 0.5), key=key))
    seq = eqx.nn.Sequential([eqx.nn.Linear(3, 4, key=key), eqx.nn.LayerNorm(4), eqx.nn.Linear(4, 2, key=key)])
    with pytest.raises(UnsupportedOperatorError, match=r"LayerNorm.*layers\[1\]"):
        lipmip.load(seq)
    with pytest.raises(UnsupportedOperatorError, match="Conv2d"):
        lipmip.load(eqx.nn.Conv2d(1, 1, 3, key=key))


# ---------------------------------------------------------------------- Flax NNX


def nnx_mlp(nnx, dtype, sizes, out_relu, seed=0):
    rngs = nnx.Rngs(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nnx.Linear(n_in, n_out, bias_init=nnx.initializers.normal(1.0), param_dtype=dtype, rngs=rngs))
        if i < len(sizes) - 2 or out_relu:
            layers.append(nnx.relu)
    return nnx.Sequential(*layers)


@pytest.mark.parametrize("sizes, out_relu", SHAPES, ids=SHAPE_IDS)
def test_flax_nnx_sequential(jax64, nnx, sizes, out_relu):
    jax, dtype, tol = jax64
    model = nnx_mlp(nnx, dtype, sizes, out_relu, seed=len(sizes))
    net = lipmip.load(model)
    assert net.widths == sizes
    assert net.activations == expected_activations(sizes, out_relu)
    assert_same_function(net, jax_batched(jax, model, dtype, vmap=False), sample(30, (sizes[0],)), tol)


def test_flax_nnx_linear_without_bias_and_dropout(jax64, nnx):
    jax, dtype, tol = jax64
    rngs = nnx.Rngs(1)
    single = nnx.Linear(4, 3, use_bias=False, param_dtype=dtype, rngs=rngs)
    net = lipmip.load(single)
    assert net.activations == ("identity",) and np.all(net.layers[0].b == 0)
    assert_same_function(net, jax_batched(jax, single, dtype, vmap=False), sample(31, (4,)), tol)
    model = nnx.Sequential(
        nnx_mlp(nnx, dtype, (4, 6), True, seed=3),
        nnx.Dropout(0.5, deterministic=True, rngs=rngs),
        nnx_mlp(nnx, dtype, (6, 2), False, seed=4),
    )
    assert_same_function(lipmip.load(model), jax_batched(jax, model, dtype, vmap=False), sample(32, (4,)), tol)


def test_flax_nnx_unsupported(nnx):
    rngs = nnx.Rngs(2)
    with pytest.raises(UnsupportedOperatorError, match=r"sigmoid.*layers\[1\]"):
        lipmip.load(nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), nnx.sigmoid, nnx.Linear(4, 2, rngs=rngs)))
    with pytest.raises(UnsupportedOperatorError, match="BatchNorm"):
        lipmip.load(nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), nnx.BatchNorm(4, rngs=rngs)))


# ---------------------------------------------------------------------- Flax linen


def linen_mlp(linen, dtype, sizes, out_relu):
    class MLP(linen.Module):
        @linen.compact
        def __call__(self, x):
            for i, n_out in enumerate(sizes[1:]):
                x = linen.Dense(n_out, bias_init=linen.initializers.normal(1.0), param_dtype=dtype)(x)
                if i < len(sizes) - 2 or out_relu:
                    x = linen.relu(x)
            return x

    return MLP()


@pytest.mark.parametrize("sizes, out_relu", SHAPES, ids=SHAPE_IDS)
def test_flax_linen_params(jax64, linen, sizes, out_relu):
    jax, dtype, tol = jax64
    module = linen_mlp(linen, dtype, sizes, out_relu)
    variables = module.init(jax.random.PRNGKey(len(sizes)), jax.numpy.ones((1, sizes[0]), dtype=dtype))
    acts = expected_activations(sizes, out_relu)
    net = lipmip.load(variables, activations=list(acts) if out_relu else None)
    assert net.widths == sizes
    assert net.activations == acts
    assert lipmip.load(variables["params"], activations=list(acts) if out_relu else None).allclose(net)
    forward = jax_batched(jax, lambda x: module.apply(variables, x), dtype, vmap=False)
    assert_same_function(net, forward, sample(40, (sizes[0],)), tol)


def test_flax_param_dict_layers_in_numeric_order():
    # no Flax needed: a linen parameter dict is plain nested dicts; insertion order is shuffled
    sizes = (3,) + tuple(range(4, 15)) + (2,)  # 12 layers: Dense_10 must come after Dense_9
    pairs = random_pairs(sizes, seed=9)
    entries = {f"Dense_{i}": {"kernel": W.T, "bias": b} for i, (W, b) in enumerate(pairs)}
    shuffled = {k: entries[k] for k in np.random.default_rng(0).permutation(sorted(entries))}
    net = lipmip.load({"params": shuffled})
    assert net.widths == sizes
    assert_same_function(net, numpy_forward(pairs, expected_activations(sizes, False)), sample(41, (3,)), 1e-12)


def test_flax_linen_sequential_layer_names(jax64, linen):
    jax, dtype, tol = jax64
    jnp = jax.numpy
    dense = [linen.Dense(n, bias_init=linen.initializers.normal(1.0), param_dtype=dtype) for n in (5, 2)]
    seq = linen.Sequential([dense[0], linen.relu, dense[1]])
    variables = seq.init(jax.random.PRNGKey(1), jnp.ones((1, 4), dtype=dtype))
    assert sorted(variables["params"]) == ["layers_0", "layers_2"]
    forward = jax_batched(jax, lambda x: seq.apply(variables, x), dtype, vmap=False)
    assert_same_function(lipmip.load(variables), forward, sample(42, (4,)), tol)


def test_flax_linen_unsupported(linen):
    kernel, bias = np.ones((3, 2)), np.zeros(2)
    with pytest.raises(UnsupportedOperatorError, match="Conv_0"):
        lipmip.load({"params": {"Conv_0": {"kernel": np.ones((3, 3, 1, 2)), "bias": bias}}})
    with pytest.raises(UnsupportedOperatorError, match="batch_stats"):
        lipmip.load({"params": {"Dense_0": {"kernel": kernel, "bias": bias}}, "batch_stats": {}})
    with pytest.raises(ModelFormatError, match="layer order"):
        lipmip.load({"hidden": {"kernel": kernel, "bias": bias}, "out": {"kernel": np.ones((2, 1))}})
    with pytest.raises(ModelFormatError, match="init"):
        lipmip.load(linen.Dense(3))
