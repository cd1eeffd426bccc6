"""ONNX reading and writing (lipmip.io.onnx_format).

The reader is checked against onnxruntime on the team's real networks, on
synthetic graphs covering each supported operator pattern, and through exact
save/load round trips; malformed and unsupported files must raise the
documented lipmip errors.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest

import lipmip
from lipmip import ModelFormatError, Network, UnsupportedOperatorError
from lipmip.io.onnx_format import load_onnx, save_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DOUBLE, FLOAT = TensorProto.DOUBLE, TensorProto.FLOAT

# ---------------------------------------------------------------------------- the real networks
ACAS_LO = np.array([-0.328422877, -0.5, -0.5, -0.5, -0.5])
ACAS_HI = np.array([0.679857769, 0.5, 0.5, 0.5, 0.5])

# file -> (widths, activations, input_shape) read from SOURCES.md
REAL_NETWORKS = {
    **{
        f"acasxu/ACASXU_run2a_{k}_batch_2000.onnx": ((5,) + (50,) * 6 + (5,), ("relu",) * 6 + ("identity",), (1, 1, 5))
        for k in ("1_1", "1_2", "2_1", "3_3", "5_9")
    },
    "mnist/mnist-net_256x2.onnx": ((784,) + (256,) * 2 + (10,), ("relu",) * 2 + ("identity",), (784, 1)),
    "mnist/mnist-net_256x4.onnx": ((784,) + (256,) * 4 + (10,), ("relu",) * 4 + ("identity",), (784, 1)),
    "mnist/mnist-net_256x6.onnx.gz": ((784,) + (256,) * 6 + (10,), ("relu",) * 6 + ("identity",), (784, 1)),
    "mnist/mnist_relu_3_50.onnx": ((784, 50, 50, 10), ("relu",) * 3, (1, 28, 28)),
    "mnist/mnist_relu_3_100.onnx": ((784, 100, 100, 10), ("relu",) * 3, (1, 28, 28)),
    "mnist/mnist_relu_6_100.onnx": ((784,) + (100,) * 5 + (10,), ("relu",) * 6, (1, 28, 28)),
    "mnist/mnist_relu_9_100.onnx": ((784,) + (100,) * 8 + (10,), ("relu",) * 9, (1, 28, 28)),
    "mnist/mnist_relu_9_200.onnx": ((784,) + (200,) * 8 + (10,), ("relu",) * 9, (1, 28, 28)),
}


@functools.lru_cache(maxsize=None)
def _load_cached(path: str) -> Network:
    return lipmip.load(path)


def _model_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _session(model: bytes | onnx.ModelProto) -> ort.InferenceSession:
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _run_ort(session: ort.InferenceSession, X: np.ndarray, dtype: type) -> np.ndarray:
    """Evaluate each row of ``X`` (flattened inputs) in onnxruntime, in the
    model's own input shape; one at a time when the batch is fixed."""
    info = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in info.shape]
    outputs = []
    for x in X:
        y = session.run(None, {info.name: x.astype(dtype).reshape(shape)})[0]
        outputs.append(np.asarray(y, dtype=np.float64).reshape(-1))
    return np.array(outputs)


def _as_float64_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every float32 tensor and type turned into
    float64 (exact), so onnxruntime computes the same function in double."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == FLOAT:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = DOUBLE
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        if info.type.tensor_type.elem_type == FLOAT:
            info.type.tensor_type.elem_type = DOUBLE
    return model


def _natural_inputs(rel: str, shared: Path) -> np.ndarray:
    """100 random points of the network's input domain, plus the 100 MNIST
    test images for MNIST networks; rounded to float32 so that float32 and
    float64 evaluations see the same input."""
    rng = np.random.default_rng(20240601)
    if rel.startswith("acasxu/"):
        X = rng.uniform(ACAS_LO, ACAS_HI, size=(100, 5))
    else:
        images = np.loadtxt(shared / "mnist" / "mnist_test.csv", delimiter=",")
        assert images.shape == (100, 785)
        X = np.vstack([rng.uniform(0.0, 1.0, size=(100, 784)), images[:, 1:] / 255.0])
    return X.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("rel", sorted(REAL_NETWORKS))
def test_real_network_structure(shared_networks: Path, rel: str) -> None:
    widths, activations, input_shape = REAL_NETWORKS[rel]
    net = _load_cached(str(shared_networks / rel))
    assert net.widths == widths
    assert net.activations == activations
    assert net.input_shape == input_shape
    assert net.name == Path(rel).name


@pytest.mark.parametrize("rel", sorted(REAL_NETWORKS))
def test_real_network_matches_onnxruntime_float64(shared_networks: Path, rel: str) -> None:
    """Against the same graph run in double precision: agreement to ~1e-12."""
    path = shared_networks / rel
    net = _load_cached(str(path))
    X = _natural_inputs(rel, shared_networks)
    model = _as_float64_model(onnx.load_model_from_string(_model_bytes(path)))
    expected = _run_ort(_session(model), X, np.float64)
    np.testing.assert_allclose(net(X), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("rel", sorted(REAL_NETWORKS))
def test_real_network_matches_onnxruntime_float32(shared_networks: Path, rel: str) -> None:
    """Against the file as shipped (float32 arithmetic): rtol 1e-5, atol 1e-5
    times the float32 working scale, i.e. the largest |value| of the output
    or of any pre-activation. (ACAS Xu 5_9 computes outputs of about 0.05 from
    hidden values of about 300, so float32 rounding alone exceeds 1e-5 of
    the output there.)"""
    path = shared_networks / rel
    net = _load_cached(str(path))
    X = _natural_inputs(rel, shared_networks)
    expected = _run_ort(_session(_model_bytes(path)), X, np.float32)
    scale = max(float(np.abs(expected).max()), max(float(np.abs(z).max()) for z in net.pre_activations(X)))
    np.testing.assert_allclose(net(X), expected, rtol=1e-5, atol=1e-5 * scale)


def test_mnist_networks_classify_the_test_images(shared_networks: Path) -> None:
    """The loaded networks reach the accuracies SOURCES.md reports (a check
    of the input layout: a transposed image would not classify)."""
    images = np.loadtxt(shared_networks / "mnist" / "mnist_test.csv", delimiter=",")
    labels, X = images[:, 0].astype(int), images[:, 1:] / 255.0
    for rel, accuracy in (("mnist/mnist-net_256x2.onnx", 1.0), ("mnist/mnist_relu_3_50.onnx", 0.98)):
        net = _load_cached(str(shared_networks / rel))
        assert np.mean(net(X).argmax(axis=1) == labels) == accuracy


# ---------------------------------------------------------------------------- round trips
def _random_network(widths, activations, input_shape=None, seed=0) -> Network:
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        scale = 10.0 ** rng.uniform(-4, 4)
        params.append((rng.normal(size=(n_out, n_in)) * scale, rng.normal(size=n_out) * scale))
    return Network.from_params(params, activations, input_shape=input_shape, name="random")


ROUND_TRIP_CASES = {
    "single_affine_layer": ((4, 3), ["identity"], None),
    "one_input": ((1, 5, 2), ["relu", "identity"], None),
    "one_hidden_neuron": ((6, 1, 3), ["relu", "identity"], None),
    "one_output": ((7, 8, 1), ["relu", "identity"], None),
    "output_relu": ((5, 4, 3), ["relu", "relu"], None),
    "image_input": ((24, 10, 3), ["relu", "identity"], (2, 3, 4)),
    "column_input": ((6, 4, 2), ["relu", "identity"], (6, 1)),
    "deep": ((3, 7, 7, 7, 2), ["relu", "relu", "relu", "identity"], (1, 3)),
}


def _assert_same_network(a: Network, b: Network) -> None:
    assert a.widths == b.widths
    assert a.activations == b.activations
    assert a.input_shape == b.input_shape
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.W, lb.W)
        assert np.array_equal(la.b, lb.b)


@pytest.mark.parametrize("case", sorted(ROUND_TRIP_CASES))
def test_round_trip_is_exact(tmp_path: Path, case: str) -> None:
    widths, activations, input_shape = ROUND_TRIP_CASES[case]
    net = _random_network(widths, activations, input_shape, seed=len(case))
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    onnx.checker.check_model(onnx.load(str(path)))
    back = load_onnx(path)
    _assert_same_network(net, back)
    assert back.name == "net.onnx"
    X = np.random.default_rng(1).normal(size=(10, net.input_dim))
    expected = _run_ort(_session(path.read_bytes()), X, np.float64)
    np.testing.assert_allclose(net(X), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_round_trip_float32_option(tmp_path: Path) -> None:
    net = _random_network((5, 6, 3), ["relu", "identity"], seed=3)
    path = tmp_path / "net32.onnx"
    save_onnx(net, path, dtype="float32")
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == FLOAT
    back = load_onnx(path)
    for la, lb in zip(net.layers, back.layers):
        assert np.array_equal(la.W.astype(np.float32).astype(np.float64), lb.W)
        assert np.array_equal(la.b.astype(np.float32).astype(np.float64), lb.b)
    X = np.random.default_rng(2).normal(size=(10, 5)).astype(np.float32).astype(np.float64)
    expected = _run_ort(_session(path.read_bytes()), X, np.float32)
    np.testing.assert_allclose(back(X), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_save_rejects_unknown_dtype(tmp_path: Path) -> None:
    net = _random_network((2, 2), ["identity"])
    with pytest.raises(ModelFormatError, match="dtype"):
        save_onnx(net, tmp_path / "x.onnx", dtype="int8")


def test_save_through_lipmip_save_and_gzip(tmp_path: Path) -> None:
    net = _random_network((3, 4, 2), ["relu", "identity"], seed=5)
    lipmip.save(net, tmp_path / "a.onnx")
    _assert_same_network(net, lipmip.load(tmp_path / "a.onnx"))
    save_onnx(net, tmp_path / "b.onnx.gz")
    assert (tmp_path / "b.onnx.gz").read_bytes()[:2] == b"\x1f\x8b"
    _assert_same_network(net, lipmip.load(tmp_path / "b.onnx.gz"))


def test_round_trip_real_networks(shared_networks: Path, tmp_path: Path) -> None:
    """A real ONNX net (with its output ReLU and image input) and a real .npz
    net survive Network -> ONNX -> Network bit for bit."""
    onnx_net = _load_cached(str(shared_networks / "mnist" / "mnist_relu_3_50.onnx"))
    npz_net = lipmip.load(shared_networks / "lipbab" / "iris_4_5_5_3.npz")
    for i, net in enumerate((onnx_net, npz_net)):
        path = tmp_path / f"net{i}.onnx"
        save_onnx(net, path)
        _assert_same_network(net, load_onnx(path))
    assert load_onnx(tmp_path / "net0.onnx").activations[-1] == "relu"


# ---------------------------------------------------------------------------- synthetic graphs
def _tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _make_model(nodes, input_shape, output_shape, initializers=(), *, elem=DOUBLE, opset=13,
                input_name="x", output_name="y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "synthetic",
        [helper.make_tensor_value_info(input_name, elem, input_shape)],
        [helper.make_tensor_value_info(output_name, elem, output_shape)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    onnx.checker.check_model(model)
    return model


def _write(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _check_against_ort(model: onnx.ModelProto, net: Network, n: int = 20, seed: int = 0) -> None:
    X = np.random.default_rng(seed).normal(size=(n, net.input_dim))
    expected = _run_ort(_session(model), X, np.float64)
    np.testing.assert_allclose(net(X), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_eran_matmul_w_x_with_vector_input(tmp_path: Path) -> None:
    """ERAN layout: MatMul(W, x) with W of shape (out, in) and a 1-D input."""
    rng = np.random.default_rng(7)
    W1, b1, W2, b2 = rng.normal(size=(8, 5)), rng.normal(size=8), rng.normal(size=(3, 8)), rng.normal(size=3)
    nodes = [
        helper.make_node("MatMul", ["W1", "x"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["z1"]),
        helper.make_node("Relu", ["z1"], ["h1"]),
        helper.make_node("MatMul", ["W2", "h1"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["y"]),
    ]
    inits = [_tensor("W1", W1), _tensor("b1", b1), _tensor("W2", W2), _tensor("b2", b2)]
    model = _make_model(nodes, [5], [3], inits)
    net = load_onnx(_write(model, tmp_path / "eran.onnx"))
    assert net.input_shape == (5,)
    assert net.activations == ("relu", "identity")
    assert np.array_equal(net.layers[0].W, W1) and np.array_equal(net.layers[1].W, W2)
    assert np.array_equal(net.layers[0].b, b1) and np.array_equal(net.layers[1].b, b2)
    _check_against_ort(model, net)


def test_matmul_x_w_with_in_out_weights(tmp_path: Path) -> None:
    """MATLAB/ACAS layout: MatMul(x, W) with W of shape (in, out)."""
    rng = np.random.default_rng(8)
    W1, b1, W2 = rng.normal(size=(4, 6)), rng.normal(size=6), rng.normal(size=(6, 2))
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["m1"]),
        helper.make_node("Add", ["b1", "m1"], ["z1"]),
        helper.make_node("Relu", ["z1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "W2"], ["y"]),
    ]
    model = _make_model(nodes, [1, 4], [1, 2], [_tensor("W1", W1), _tensor("b1", b1), _tensor("W2", W2)])
    net = load_onnx(_write(model, tmp_path / "matmul.onnx"))
    assert net.input_shape == (4,)
    assert np.array_equal(net.layers[0].W, W1.T) and np.array_equal(net.layers[1].W, W2.T)
    assert np.array_equal(net.layers[1].b, np.zeros(2))
    _check_against_ort(model, net)


@pytest.mark.parametrize(
    "transA, transB, alpha, beta",
    [(1, 1, 1.0, 1.0), (0, 0, 1.0, 1.0), (1, 0, 0.5, 2.0), (0, 1, -1.5, 0.25)],
)
def test_gemm_attributes(tmp_path: Path, transA: int, transB: int, alpha: float, beta: float) -> None:
    rng = np.random.default_rng(9)
    n_in, n_out = 5, 4
    W = rng.normal(size=(n_out, n_in))  # the map is x -> alpha * W x + beta * b
    b = rng.normal(size=n_out)
    input_shape = [n_in, 1] if transA else [1, n_in]
    nodes = [
        helper.make_node("Gemm", ["x", "B", "C"], ["z"], transA=transA, transB=transB, alpha=alpha, beta=beta),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    B = W if transB else W.T
    model = _make_model(nodes, input_shape, [1, n_out], [_tensor("B", B), _tensor("C", b.reshape(1, n_out))])
    net = load_onnx(_write(model, tmp_path / "gemm.onnx"))
    assert net.activations == ("relu",)
    np.testing.assert_allclose(net.layers[0].W, alpha * W, rtol=1e-15)
    np.testing.assert_allclose(net.layers[0].b, beta * b, rtol=1e-15)
    _check_against_ort(model, net)


def test_gemm_with_the_input_as_second_operand(tmp_path: Path) -> None:
    """Gemm(W, x) with x a column: the tracked tensor on the right."""
    rng = np.random.default_rng(10)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 1))
    nodes = [helper.make_node("Gemm", ["W", "x", "b"], ["y"], alpha=2.0)]
    model = _make_model(nodes, [4, 1], [3, 1], [_tensor("W", W), _tensor("b", b)])
    net = load_onnx(_write(model, tmp_path / "gemm_right.onnx"))
    assert net.input_shape == (4, 1)
    np.testing.assert_allclose(net.layers[0].W, 2.0 * W, rtol=1e-15)
    _check_against_ort(model, net)


@pytest.mark.parametrize(
    "x_shape, w_shape, x_first",
    [
        ([1, 4], [4], True),  # 2-D @ 1-D
        ([4], [4, 3], True),  # 1-D @ 2-D
        ([4], [4], True),  # 1-D @ 1-D: a scalar output
        ([1, 2, 3, 4], [4, 5], True),  # batched @ 2-D
        ([1, 3], [2, 3, 4], True),  # 2-D @ batched: broadcast
        ([4, 1], [4], False),  # 1-D @ 2-D, constant first
        ([3, 4], [2, 5, 3], False),  # batched @ 2-D, constant first
        ([1, 2, 3, 4], [5, 3], False),  # 2-D @ batched, constant first
    ],
)
def test_matmul_ranks(tmp_path: Path, x_shape: list[int], w_shape: list[int], x_first: bool) -> None:
    """MatMul with the constant on either side and any ranks (numpy semantics)."""
    W = np.random.default_rng(17).normal(size=w_shape)
    x = np.zeros(x_shape)
    out_shape = list(np.matmul(x, W).shape if x_first else np.matmul(W, x).shape)
    operands = ["x", "W"] if x_first else ["W", "x"]
    model = _make_model([helper.make_node("MatMul", operands, ["y"])], x_shape, out_shape, [_tensor("W", W)])
    net = load_onnx(_write(model, tmp_path / "matmul_ranks.onnx"))
    assert net.output_dim == int(np.prod(out_shape))
    _check_against_ort(model, net, n=5)


def test_normalisation_constants_are_folded(tmp_path: Path) -> None:
    """Sub/Div/Mul/Add by constants (either side, per channel) before the
    first layer become part of the first layer."""
    rng = np.random.default_rng(11)
    mean, std = rng.normal(size=(1, 2, 1, 1)), rng.uniform(0.5, 2, size=(1, 2, 1, 1))
    scale, shift = rng.normal(size=(1, 1, 3)), rng.normal(size=(2, 1, 1))
    W1, b1, W2, b2 = rng.normal(size=(5, 12)), rng.normal(size=5), rng.normal(size=(2, 5)), rng.normal(size=2)
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),
        helper.make_node("Div", ["a", "std"], ["b"]),
        helper.make_node("Mul", ["scale", "b"], ["c"]),
        helper.make_node("Add", ["c", "shift"], ["d"]),
        helper.make_node("Sub", ["shift", "d"], ["e"]),  # constant minus tracked
        helper.make_node("Flatten", ["e"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W1", "b1"], ["z1"], transB=1),
        helper.make_node("Relu", ["z1"], ["h1"]),
        helper.make_node("Gemm", ["h1", "W2", "b2"], ["y"], transB=1),
    ]
    inits = [_tensor(n, v) for n, v in
             dict(mean=mean, std=std, scale=scale, shift=shift, W1=W1, b1=b1, W2=W2, b2=b2).items()]
    model = _make_model(nodes, [1, 2, 2, 3], [1, 2], inits)
    net = load_onnx(_write(model, tmp_path / "norm.onnx"))
    assert net.widths == (12, 5, 2) and net.activations == ("relu", "identity")
    assert net.input_shape == (2, 2, 3)
    _check_against_ort(model, net)


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0]])
def test_transpose_of_a_multichannel_input(tmp_path: Path, perm: list[int]) -> None:
    """A Transpose permutes entries; with 3 channels the order matters."""
    rng = np.random.default_rng(12)
    shape = [1, 3, 4, 5]
    W1, b1 = rng.normal(size=(6, 60)), rng.normal(size=6)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=perm),
        helper.make_node("Reshape", ["t", "target"], ["r"]),
        helper.make_node("Gemm", ["r", "W1", "b1"], ["z"], transB=1),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    target = np.array([1, -1], dtype=np.int64) if perm[0] == 0 else np.array([-1, 60], dtype=np.int64)
    inits = [_tensor("target", target), _tensor("W1", W1), _tensor("b1", b1)]
    model = _make_model(nodes, shape, [1, 6], inits)
    net = load_onnx(_write(model, tmp_path / "transpose.onnx"))
    assert net.input_shape == (3, 4, 5) and net.activations == ("relu",)
    X = rng.normal(size=(4, 60))
    by_hand = np.maximum(X.reshape(4, 1, 3, 4, 5).transpose([0] + [p + 1 for p in perm]).reshape(4, 60) @ W1.T + b1, 0)
    np.testing.assert_allclose(net(X), by_hand, rtol=1e-12, atol=1e-12)
    _check_against_ort(model, net)


def test_pytorch_style_graph(tmp_path: Path) -> None:
    """Symbolic batch, x.view(x.size(0), -1) via Shape/Gather/Unsqueeze/Concat,
    BatchNormalization, Dropout, Identity, Squeeze/Unsqueeze, Neg."""
    rng = np.random.default_rng(13)
    W1, b1, W2, b2 = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(3, 4)), rng.normal(size=3)
    stats = {k: rng.uniform(0.5, 2.0, size=4) for k in ("bn_s", "bn_b", "bn_m", "bn_v")}
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W1", "b1"], ["z1"], transB=1),
        helper.make_node("BatchNormalization", ["z1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["h1"]),
        helper.make_node("Dropout", ["h1"], ["d1"]),
        helper.make_node("Unsqueeze", ["d1", "axes2"], ["u1"]),
        helper.make_node("Squeeze", ["u1", "axes2"], ["s1"]),
        helper.make_node("Identity", ["s1"], ["i1"]),
        helper.make_node("Gemm", ["i1", "W2", "b2"], ["z2"], transB=1),
        helper.make_node("Neg", ["z2"], ["y"]),
    ]
    inits = [
        _tensor("zero", np.array(0, dtype=np.int64)),
        _tensor("axes0", np.array([0], dtype=np.int64)),
        _tensor("axes2", np.array([2], dtype=np.int64)),
        _tensor("minus1", np.array([-1], dtype=np.int64)),
        _tensor("W1", W1), _tensor("b1", b1), _tensor("W2", W2), _tensor("b2", b2),
    ] + [_tensor(k, v) for k, v in stats.items()]
    model = _make_model(nodes, ["N", 2, 3], ["N", 3], inits)
    net = load_onnx(_write(model, tmp_path / "torch_style.onnx"))
    assert net.widths == (6, 4, 3) and net.activations == ("relu", "identity")
    assert net.input_shape == (2, 3)
    _check_against_ort(model, net)


def test_graph_without_relu_is_one_affine_layer(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    W = rng.normal(size=(2, 3))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Mul", ["m", "k"], ["y"])]
    model = _make_model(nodes, [1, 3], [1, 2], [_tensor("W", W.T), _tensor("k", np.array(3.0))])
    net = load_onnx(_write(model, tmp_path / "affine.onnx"))
    assert net.depth == 1 and net.activations == ("identity",)
    _check_against_ort(model, net)


def test_output_relu_followed_by_reshape_stays_the_last_activation(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1),
        helper.make_node("Relu", ["z"], ["h"]),
        helper.make_node("Flatten", ["h"], ["y"], axis=0),
    ]
    model = _make_model(nodes, [1, 3], [1, 4], [_tensor("W", W), _tensor("b", b)])
    net = load_onnx(_write(model, tmp_path / "relu_out.onnx"))
    assert net.depth == 1 and net.activations == ("relu",)
    assert np.array_equal(net.layers[0].W, W)


def test_float32_model_and_name_option(tmp_path: Path) -> None:
    W = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)]
    model = _make_model(nodes, [1, 3], [1, 2], [_tensor("W", W)], elem=FLOAT)
    net = load_onnx(_write(model, tmp_path / "f32.onnx"), name="custom")
    assert net.name == "custom"
    assert net.layers[0].W.dtype == np.float64
    assert np.array_equal(net.layers[0].W, W.astype(np.float64))


# ---------------------------------------------------------------------------- bad input
def _small_model() -> onnx.ModelProto:
    W = np.random.default_rng(16).normal(size=(50, 40))
    nodes = [helper.make_node("Gemm", ["x", "W"], ["z"], transB=1), helper.make_node("Relu", ["z"], ["y"])]
    return _make_model(nodes, [1, 40], [1, 50], [_tensor("W", W)])


def test_truncated_file(tmp_path: Path) -> None:
    data = _small_model().SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="truncated.onnx") as info:
        load_onnx(path)
    assert "not a valid ONNX model" in str(info.value)


def test_truncated_real_file(shared_networks: Path, tmp_path: Path) -> None:
    data = (shared_networks / "mnist" / "mnist_relu_3_50.onnx").read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="half.onnx"):
        lipmip.load(path)


def test_truncated_gzip_file(tmp_path: Path) -> None:
    data = gzip.compress(_small_model().SerializeToString())
    path = tmp_path / "cut.onnx.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="cut.onnx.gz"):
        lipmip.load(path)


def test_text_file_renamed_onnx(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("These are my notes, not a model.\nSecond line.\n")
    with pytest.raises(ModelFormatError, match="notes.onnx.*not a valid ONNX model"):
        lipmip.load(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty.onnx.*empty"):
        lipmip.load(path)


def test_missing_path() -> None:
    with pytest.raises(ModelFormatError, match="no such file"):
        lipmip.load("/nonexistent/dir/model.onnx")
    with pytest.raises(ModelFormatError, match="no such file"):
        load_onnx("/nonexistent/dir/model.onnx")


def test_conv_is_unsupported(tmp_path: Path) -> None:
    kernel = np.ones((2, 1, 3, 3))
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], name="conv_1"),
        helper.make_node("Flatten", ["c"], ["y"]),
    ]
    model = _make_model(nodes, [1, 1, 5, 5], [1, 18], [_tensor("K", kernel)])
    with pytest.raises(UnsupportedOperatorError, match="Conv") as info:
        load_onnx(_write(model, tmp_path / "conv.onnx"))
    assert "conv_1" in str(info.value) and "conv.onnx" in str(info.value)


def test_sigmoid_is_unsupported(tmp_path: Path) -> None:
    W = np.ones((3, 2))
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["z"], transB=1, name="dense"),
        helper.make_node("Sigmoid", ["z"], ["y"], name="squash_7"),
    ]
    model = _make_model(nodes, [1, 2], [1, 3], [_tensor("W", W)])
    with pytest.raises(UnsupportedOperatorError) as info:
        load_onnx(_write(model, tmp_path / "sigmoid.onnx"))
    message = str(info.value)
    assert "Sigmoid" in message and "squash_7" in message and "sigmoid.onnx" in message


def test_unnamed_unsupported_node_is_named_by_index(tmp_path: Path) -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Tanh", ["f"], ["y"])]
    model = _make_model(nodes, [1, 2], [1, 2])
    with pytest.raises(UnsupportedOperatorError, match="Tanh node #1"):
        load_onnx(_write(model, tmp_path / "tanh.onnx"))


def test_product_of_two_input_dependent_tensors(tmp_path: Path) -> None:
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"], name="square")]
    model = _make_model(nodes, [1, 2], [1, 2])
    with pytest.raises(UnsupportedOperatorError, match="Mul node 'square'.*not affine"):
        load_onnx(_write(model, tmp_path / "square.onnx"))


def test_skip_connection_is_unsupported(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["h"]),
        helper.make_node("Add", ["h", "x"], ["y"], name="residual"),
    ]
    model = _make_model(nodes, [1, 2], [1, 2])
    with pytest.raises(UnsupportedOperatorError, match="residual.*skip connections"):
        load_onnx(_write(model, tmp_path / "skip.onnx"))


def test_two_inputs_or_outputs_or_integer_input(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "two_inputs",
        [helper.make_tensor_value_info(n, DOUBLE, [1, 2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", DOUBLE, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    with pytest.raises(UnsupportedOperatorError, match="exactly one input"):
        load_onnx(_write(model, tmp_path / "two_in.onnx"))

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["w"])],
        "two_outputs",
        [helper.make_tensor_value_info("x", DOUBLE, [1, 2])],
        [helper.make_tensor_value_info(n, DOUBLE, [1, 2]) for n in ("y", "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    with pytest.raises(UnsupportedOperatorError, match="exactly one output"):
        load_onnx(_write(model, tmp_path / "two_out.onnx"))

    model = _make_model([helper.make_node("Identity", ["x"], ["y"])], [1, 2], [1, 2], elem=TensorProto.INT64)
    with pytest.raises(UnsupportedOperatorError, match="INT64"):
        load_onnx(_write(model, tmp_path / "int_in.onnx"))


def test_undefined_tensor_and_constant_output(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "missing_weight"], ["y"], name="mm")],
        "undefined",
        [helper.make_tensor_value_info("x", DOUBLE, [1, 2])],
        [helper.make_tensor_value_info("y", DOUBLE, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    with pytest.raises(ModelFormatError, match="mm.*missing_weight"):
        load_onnx(_write(model, tmp_path / "undefined.onnx"))

    nodes = [helper.make_node("Identity", ["k"], ["y"])]
    model = _make_model(nodes, [1, 2], [1, 2], [_tensor("k", np.ones((1, 2)))])
    with pytest.raises(ModelFormatError, match="does not depend on the input"):
        load_onnx(_write(model, tmp_path / "constant.onnx"))


def test_malformed_node_raises_a_lipmip_error(tmp_path: Path) -> None:
    """Shapes that do not fit surface as ModelFormatError, not a numpy error."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="bad_mm")]
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", DOUBLE, [1, 3])],
        [helper.make_tensor_value_info("y", DOUBLE, [1, 2])], initializer=[_tensor("W", np.ones((4, 2)))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    with pytest.raises(ModelFormatError, match="bad_mm"):
        load_onnx(_write(model, tmp_path / "bad.onnx"))
