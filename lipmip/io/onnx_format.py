"""Reading and writing ONNX models of fully-connected ReLU networks.

Reading does not interpret the graph with a runtime. It walks the nodes in
order and keeps every tensor either as a numpy constant (initializers,
``Constant`` nodes, and operators whose inputs are all constant, which are
folded) or as a *tracked affine tensor*

    value = reshape(h @ A + c, shape)

where ``h`` is the current hidden vector: the network input flattened
row-major, or the output of the last ``Relu``. Linear operators (Gemm,
MatMul, Add/Sub/Mul/Div by constants, Flatten, Reshape, Transpose, ...) update
``(A, c)``. A ``Relu`` closes one :class:`~lipmip.network.Layer` and starts a
new hidden vector. Constant normalisation before the first layer is thereby
folded into the first layer, and a ``Relu`` on the graph output stays the
last layer's activation. Anything that is not a chain of affine maps and
ReLUs raises :class:`~lipmip.errors.UnsupportedOperatorError`.

Writing produces ``Flatten`` (when the input is not a vector), then one
``Gemm`` (``transB=1``, ``W`` stored as ``(out, in)``) per layer, each
followed by ``Relu`` where the layer has one. Tensors are float64 by default,
so that writing and reading back is bit-exact.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lipmip.dependencies import optional_import
from lipmip.errors import LipmipError, ModelFormatError, UnsupportedOperatorError
from lipmip.network import Layer, Network

__all__ = ["load_onnx", "save_onnx"]

_GZIP_MAGIC = b"\x1f\x8b"

# Opset and IR version of written files: opset 13 has double Gemm, Relu and
# Flatten in onnxruntime; IR 7 is the lowest IR version that allows opset 13.
_SAVE_OPSET = 13
_SAVE_IR_VERSION = 7


# ---------------------------------------------------------------------------- errors
class _NodeError(Exception):
    """Raised by an operator handler; turned into a LipmipError that names the
    file and the node by :func:`_run_node`."""

    def __init__(self, reason: str, unsupported: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


def _unsupported(reason: str) -> _NodeError:
    return _NodeError(reason, unsupported=True)


def _node_label(node: Any, index: int) -> str:
    """``Sigmoid node 'act1' (#3)``, or ``Sigmoid node #3`` when the node is unnamed."""
    if node.name:
        return f"{node.op_type} node {node.name!r} (#{index})"
    return f"{node.op_type} node #{index}"


# ---------------------------------------------------------------------------- tracked tensors
@dataclass(frozen=True)
class _Affine:
    """A tensor that depends affinely on the current hidden vector ``h``.

    ``A`` has shape ``(H, *shape)`` and ``c`` shape ``shape``; the value is
    ``tensordot(h, A, 1) + c``. ``generation`` counts the ReLUs before ``h``;
    a tensor of an older generation cannot be used any more (that would be a
    skip connection).
    """

    A: np.ndarray
    c: np.ndarray
    generation: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.c.shape)

    @property
    def hidden(self) -> int:
        return int(self.A.shape[0])

    def matrix(self) -> np.ndarray:
        """``A`` as a ``(H, N)`` matrix (``N`` = number of entries)."""
        return self.A.reshape(self.hidden, -1)

    def is_identity(self) -> bool:
        """Whether the tensor is exactly ``h`` (possibly reshaped)."""
        n = int(self.c.size)
        if self.hidden != n or np.any(self.c):
            return False
        m = self.matrix()
        return bool(np.all(np.diagonal(m) == 1.0)) and int(np.count_nonzero(m)) == n


def _identity_affine(shape: tuple[int, ...], generation: int) -> _Affine:
    """The hidden vector itself, viewed with ``shape``."""
    n = int(np.prod(shape, dtype=np.int64))
    return _Affine(np.eye(n).reshape((n,) + shape), np.zeros(shape), generation)


def _is_tracked(value: Any) -> bool:
    return isinstance(value, _Affine)


def _expand_A(t: _Affine, shape: tuple[int, ...]) -> np.ndarray:
    """``t.A`` with singleton axes inserted so that its entry axes align
    (right-aligned, numpy style) with a tensor of rank ``len(shape)``."""
    extra = len(shape) - len(t.shape)
    if extra < 0:
        return t.A
    return t.A.reshape((t.hidden,) + (1,) * extra + t.shape)


def _reshaped(t: _Affine, shape: tuple[int, ...]) -> _Affine:
    """The same entries in row-major order, viewed with ``shape``."""
    c = t.c.reshape(shape)
    return _Affine(t.A.reshape((t.hidden,) + c.shape), c, t.generation)


def _transposed(t: _Affine, perm: tuple[int, ...]) -> _Affine:
    """Axes permuted as ``numpy.transpose(value, perm)`` (exact)."""
    return _Affine(
        np.ascontiguousarray(t.A.transpose((0,) + tuple(p + 1 for p in perm))),
        np.ascontiguousarray(t.c.transpose(perm)),
        t.generation,
    )


def _scaled(t: _Affine, k: np.ndarray, divide: bool = False) -> _Affine:
    """``value * k`` (or ``value / k``), ``k`` a constant broadcast numpy style."""
    k = np.asarray(k, dtype=np.float64)
    shape = np.broadcast_shapes(t.shape, k.shape)
    A = _expand_A(t, shape)
    if divide:
        A, c = A / k, t.c / k
    else:
        A, c = A * k, t.c * k
    A = np.broadcast_to(A, (t.hidden,) + shape)
    return _Affine(np.array(A), np.array(np.broadcast_to(c, shape)), t.generation)


def _shifted(t: _Affine, k: np.ndarray) -> _Affine:
    """``value + k``, ``k`` a constant broadcast numpy style."""
    k = np.asarray(k, dtype=np.float64)
    shape = np.broadcast_shapes(t.shape, k.shape)
    A = np.array(np.broadcast_to(_expand_A(t, shape), (t.hidden,) + shape))
    return _Affine(A, np.array(np.broadcast_to(t.c + k, shape)), t.generation)


def _summed(t: _Affine, u: _Affine) -> _Affine:
    """``t + u`` for two tensors over the same hidden vector."""
    shape = np.broadcast_shapes(t.shape, u.shape)
    A = np.array(np.broadcast_to(_expand_A(t, shape) + _expand_A(u, shape), (t.hidden,) + shape))
    return _Affine(A, np.array(np.broadcast_to(t.c + u.c, shape)), t.generation)


def _negated(t: _Affine) -> _Affine:
    return _Affine(-t.A, -t.c, t.generation)


def _matmul_tracked_left(t: _Affine, W: np.ndarray) -> _Affine:
    """``value @ W`` with ONNX/numpy ``matmul`` semantics for any ranks."""
    W = np.asarray(W, dtype=np.float64)
    c = np.matmul(t.c, W)
    x_shape = t.shape if len(t.shape) >= 2 else (1,) + t.shape
    Wm = W if W.ndim >= 2 else W[:, None]
    pad = max(0, Wm.ndim - len(x_shape))
    A = np.matmul(t.A.reshape((t.hidden,) + (1,) * pad + x_shape), Wm)
    return _Affine(A.reshape((t.hidden,) + c.shape), np.asarray(c), t.generation)


def _matmul_tracked_right(W: np.ndarray, t: _Affine) -> _Affine:
    """``W @ value`` with ONNX/numpy ``matmul`` semantics for any ranks."""
    W = np.asarray(W, dtype=np.float64)
    c = np.matmul(W, t.c)
    x_shape = t.shape if len(t.shape) >= 2 else t.shape + (1,)
    Wm = W if W.ndim >= 2 else W[None, :]
    pad = max(0, Wm.ndim - len(x_shape))
    A = np.matmul(Wm, t.A.reshape((t.hidden,) + (1,) * pad + x_shape))
    return _Affine(A.reshape((t.hidden,) + c.shape), np.asarray(c), t.generation)


def _lifted(k: np.ndarray, like: _Affine) -> _Affine:
    """A constant as a tracked tensor with zero dependence on ``h``."""
    k = np.asarray(k, dtype=np.float64)
    return _Affine(np.zeros((like.hidden,) + k.shape), k, like.generation)


# ---------------------------------------------------------------------------- generic operations
def _add(x: Any, y: Any) -> Any:
    """``x + y`` for constants and tracked tensors."""
    if _is_tracked(x) and _is_tracked(y):
        return _summed(x, y)
    if _is_tracked(x):
        return _shifted(x, y)
    if _is_tracked(y):
        return _shifted(y, x)
    return np.add(x, y)


def _sub(x: Any, y: Any) -> Any:
    """``x - y`` for constants and tracked tensors."""
    if _is_tracked(y):
        return _add(x, _negated(y))
    if _is_tracked(x):
        return _shifted(x, -np.asarray(y, dtype=np.float64))
    return np.subtract(x, y)


def _mul(x: Any, y: Any) -> Any:
    """``x * y``; at most one side may be tracked."""
    if _is_tracked(x) and _is_tracked(y):
        raise _unsupported("multiplies two tensors that both depend on the input (not affine)")
    if _is_tracked(x):
        return _scaled(x, y)
    if _is_tracked(y):
        return _scaled(y, x)
    return np.multiply(x, y)


def _div(x: Any, y: Any) -> Any:
    """``x / y``; only division of a tracked tensor by a constant is affine."""
    if _is_tracked(y):
        raise _unsupported("divides by a tensor that depends on the input (not affine)")
    if _is_tracked(x):
        return _scaled(x, y, divide=True)
    x, y = np.asarray(x), np.asarray(y)
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
        return np.trunc(np.true_divide(x, y)).astype(np.result_type(x, y))
    return np.true_divide(x, y)


def _matmul(x: Any, y: Any) -> Any:
    """``x @ y``; at most one side may be tracked."""
    if _is_tracked(x) and _is_tracked(y):
        raise _unsupported("multiplies two tensors that both depend on the input (not affine)")
    if _is_tracked(x):
        return _matmul_tracked_left(x, y)
    if _is_tracked(y):
        return _matmul_tracked_right(x, y)
    return np.matmul(x, y)


def _reshape(x: Any, shape: tuple[int, ...]) -> Any:
    return _reshaped(x, shape) if _is_tracked(x) else np.reshape(x, shape)


def _transpose(x: Any, perm: tuple[int, ...]) -> Any:
    return _transposed(x, perm) if _is_tracked(x) else np.transpose(x, perm)


def _shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if _is_tracked(x) else tuple(np.shape(x))


# ---------------------------------------------------------------------------- attributes and inputs
def _attributes(node: Any, onnx: Any) -> dict[str, Any]:
    """The node's attributes as Python values (tensors as numpy arrays)."""
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = _tensor_to_array(value, onnx)
        out[attr.name] = value
    return out


def _tensor_to_array(tensor: Any, onnx: Any) -> np.ndarray:
    """A TensorProto as numpy; floating types become float64."""
    arr = np.asarray(onnx.numpy_helper.to_array(tensor))
    if np.issubdtype(arr.dtype, np.floating) or arr.dtype.kind == "V":
        arr = arr.astype(np.float64)
    return arr


def _constant(value: Any, what: str) -> np.ndarray:
    """``value`` as a constant; a tracked tensor here is not supported."""
    if _is_tracked(value):
        raise _unsupported(f"needs {what} to be a constant, but it depends on the network input")
    return np.asarray(value)


def _int_list(value: Any, what: str) -> list[int]:
    return [int(v) for v in np.atleast_1d(_constant(value, what)).tolist()]


def _axis(axis: int, rank: int, what: str = "axis") -> int:
    """Normalise a possibly negative axis into ``[0, rank)``."""
    if not -rank <= axis < rank:
        raise _NodeError(f"{what} {axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def _optional_input(inputs: list[Any], i: int) -> Any:
    return inputs[i] if len(inputs) > i else None


# ---------------------------------------------------------------------------- operator handlers
# Each handler takes (inputs, attributes) and returns the list of outputs.
# ``None`` in ``inputs`` marks an absent optional input.
Handler = Callable[[list[Any], dict[str, Any]], list[Any]]


def _op_identity(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [inputs[0]]


def _op_dropout(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    # inference mode: the data passes through; the mask output is not supported
    return [inputs[0]]


def _op_neg(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    return [_negated(x) if _is_tracked(x) else np.negative(x)]


def _op_binary(fn: Callable[[Any, Any], Any]) -> Handler:
    def handler(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        if "axis" in attrs and attrs.get("broadcast", 0):
            raise _unsupported("uses the legacy 'axis' broadcast attribute (opset < 7)")
        return [fn(inputs[0], inputs[1])]

    return handler


def _op_matmul(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    return [_matmul(inputs[0], inputs[1])]


def _op_gemm(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    a, b, c = inputs[0], inputs[1], _optional_input(inputs, 2)
    for name, v in (("A", a), ("B", b)):
        if len(_shape_of(v)) != 2:
            raise _NodeError(f"input {name} must be 2-D, got shape {_shape_of(v)}")
    if attrs.get("transA", 0):
        a = _transpose(a, (1, 0))
    if attrs.get("transB", 0):
        b = _transpose(b, (1, 0))
    y = _matmul(a, b)
    alpha = float(attrs.get("alpha", 1.0))
    if alpha != 1.0:
        y = _mul(y, np.float64(alpha))
    if c is not None:
        beta = float(attrs.get("beta", 1.0))
        if beta != 1.0:
            c = _mul(c, np.float64(beta))
        y = _add(y, c)
    return [y]


def _op_flatten(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    shape = _shape_of(inputs[0])
    rank = len(shape)
    axis = int(attrs.get("axis", 1))
    if not -rank <= axis <= rank:
        raise _NodeError(f"axis {axis} is out of range for a tensor of rank {rank}")
    axis = axis % rank if axis != rank else rank
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    return [_reshape(inputs[0], (outer, int(np.prod(shape[axis:], dtype=np.int64))))]


def _op_reshape(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    spec = attrs["shape"] if "shape" in attrs else _int_list(inputs[1], "the target shape")
    spec = [int(s) for s in spec]
    in_shape = _shape_of(x)
    allow_zero = bool(attrs.get("allowzero", 0))
    target = []
    for i, s in enumerate(spec):
        if s == 0 and not allow_zero:
            if i >= len(in_shape):
                raise _NodeError(f"target shape {spec} copies dimension {i}, which the input {in_shape} lacks")
            s = in_shape[i]
        target.append(s)
    if target.count(-1) > 1:
        raise _NodeError(f"target shape {spec} has more than one -1")
    return [_reshape(x, tuple(target))]


def _squeeze_axes(inputs: list[Any], attrs: dict[str, Any]) -> list[int] | None:
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    axes = _optional_input(inputs, 1)
    return None if axes is None else _int_list(axes, "the axes")


def _op_squeeze(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    shape = _shape_of(inputs[0])
    axes = _squeeze_axes(inputs, attrs)
    if axes is None:
        drop = {i for i, s in enumerate(shape) if s == 1}
    else:
        drop = {_axis(a, len(shape)) for a in axes}
        if any(shape[a] != 1 for a in drop):
            raise _NodeError(f"cannot squeeze axes {axes} of a tensor of shape {shape}")
    return [_reshape(inputs[0], tuple(s for i, s in enumerate(shape) if i not in drop))]


def _op_unsqueeze(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    shape = _shape_of(inputs[0])
    axes = _squeeze_axes(inputs, attrs)
    if not axes:
        raise _NodeError("has no axes to insert")
    rank = len(shape) + len(axes)
    inserted = {_axis(a, rank) for a in axes}
    if len(inserted) != len(axes):
        raise _NodeError(f"axes {axes} repeat an axis")
    rest = iter(shape)
    return [_reshape(inputs[0], tuple(1 if i in inserted else next(rest) for i in range(rank)))]


def _op_transpose(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    rank = len(_shape_of(inputs[0]))
    perm = tuple(int(p) for p in attrs.get("perm", range(rank - 1, -1, -1)))
    if sorted(perm) != list(range(rank)):
        raise _NodeError(f"perm {list(perm)} is not a permutation of the {rank} axes")
    return [_transpose(inputs[0], perm)]


def _op_shape(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    shape = _shape_of(inputs[0])
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return [np.array(shape[start:end], dtype=np.int64)]


def _op_gather(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    indices = _constant(inputs[1], "the indices").astype(np.int64)
    shape = _shape_of(x)
    axis = _axis(int(attrs.get("axis", 0)), len(shape))
    if np.any(indices < -shape[axis]) or np.any(indices >= shape[axis]):
        raise _NodeError(f"indices out of range for axis {axis} of size {shape[axis]}")
    indices = np.where(indices < 0, indices + shape[axis], indices)
    if _is_tracked(x):
        return [_Affine(np.take(x.A, indices, axis=axis + 1), np.take(x.c, indices, axis=axis), x.generation)]
    return [np.take(x, indices, axis=axis)]


def _op_concat(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    parts = [p for p in inputs if p is not None]
    rank = len(_shape_of(parts[0]))
    axis = _axis(int(attrs["axis"]), rank)
    tracked = [p for p in parts if _is_tracked(p)]
    if not tracked:
        return [np.concatenate(parts, axis=axis)]
    lifted = [p if _is_tracked(p) else _lifted(p, tracked[0]) for p in parts]
    A = np.concatenate([p.A for p in lifted], axis=axis + 1)
    c = np.concatenate([p.c for p in lifted], axis=axis)
    return [_Affine(A, c, tracked[0].generation)]


def _op_cast(inputs: list[Any], attrs: dict[str, Any], onnx: Any) -> list[Any]:
    x = inputs[0]
    target = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
    floating = np.issubdtype(target, np.floating)
    if _is_tracked(x):
        if not floating:
            raise _unsupported(f"casts a tensor that depends on the input to {target}")
        return [x]
    return [np.asarray(x).astype(np.float64 if floating else target)]


def _op_batchnorm(inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
    x = inputs[0]
    scale, bias, mean, var = (_constant(v, "the statistics").astype(np.float64) for v in inputs[1:5])
    shape = _shape_of(x)
    if len(shape) < 2:
        raise _NodeError(f"input must have a channel axis, got shape {shape}")
    if attrs.get("training_mode", 0):
        raise _unsupported("is in training mode (batch statistics are not affine)")
    eps = float(attrs.get("epsilon", 1e-5))
    # opset < 9 with spatial=0 keeps one statistic per entry, otherwise per channel
    stat_shape = shape[1:] if attrs.get("spatial", 1) == 0 else (-1,) + (1,) * (len(shape) - 2)
    factor = (scale / np.sqrt(var + eps)).reshape(stat_shape)
    y = _mul(_sub(x, mean.reshape(stat_shape)), factor)
    return [_add(y, bias.reshape(stat_shape))]


def _op_constant(attrs: dict[str, Any]) -> np.ndarray:
    """The value of a ``Constant`` node."""
    if "value" in attrs:
        return np.asarray(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], dtype=np.float64)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], dtype=np.float64)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], dtype=np.int64)
    raise _unsupported(f"holds a kind of constant lipmip does not read ({', '.join(attrs) or 'no value'})")


_HANDLERS: dict[str, Handler] = {
    "Identity": _op_identity,
    "Dropout": _op_dropout,
    "Neg": _op_neg,
    "Add": _op_binary(_add),
    "Sub": _op_binary(_sub),
    "Mul": _op_binary(_mul),
    "Div": _op_binary(_div),
    "MatMul": _op_matmul,
    "Gemm": _op_gemm,
    "Flatten": _op_flatten,
    "Reshape": _op_reshape,
    "Squeeze": _op_squeeze,
    "Unsqueeze": _op_unsqueeze,
    "Transpose": _op_transpose,
    "Shape": _op_shape,
    "Gather": _op_gather,
    "Concat": _op_concat,
    "BatchNormalization": _op_batchnorm,
}

# operators whose inputs may be tensors from before the last ReLU (they only read shapes)
_SHAPE_ONLY = {"Shape"}

_SUPPORTED = sorted(set(_HANDLERS) | {"Constant", "Relu", "Cast"})


# ---------------------------------------------------------------------------- reading
def _read_model(path: Path, onnx: Any) -> Any:
    """Parse the file (gzip-compressed when it says so) into a ModelProto
    with a graph, or raise ModelFormatError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the file ({exc})") from None
    if path.name.lower().endswith(".gz") or data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ModelFormatError(f"{path}: not a readable gzip file ({exc})") from None
    if not data:
        raise ModelFormatError(f"{path}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and, on some inputs, others
        raise ModelFormatError(f"{path}: not a valid ONNX model (truncated or corrupt?): {exc}") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.input):
        raise ModelFormatError(f"{path}: not an ONNX model (no graph found)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:
            raise ModelFormatError(f"{path}: cannot read the external weight data ({exc})") from None
    return model


def _input_shape(value_info: Any, path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shape to trace the graph with (batch dimension 1) and the
    ``input_shape`` of the Network (leading batch of 1 or symbolic dropped
    when the input has rank >= 2)."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise ModelFormatError(f"{path}: input {value_info.name!r} has no recorded shape")
    dims: list[int | None] = []
    for d in tensor_type.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") else None)
    for i, d in enumerate(dims):
        if d is None and i > 0:
            raise ModelFormatError(
                f"{path}: input {value_info.name!r} has a symbolic dimension {i}; lipmip needs fixed sizes "
                "(only the leading batch dimension may be symbolic)"
            )
        if d is not None and d <= 0:
            raise ModelFormatError(f"{path}: input {value_info.name!r} has an empty dimension {i} ({d})")
    trace = tuple(1 if d is None else d for d in dims)
    if len(dims) >= 2 and dims[0] in (None, 1):
        return trace, trace[1:]
    return trace, trace


def _graph_input(graph: Any, path: Path, onnx: Any) -> Any:
    """The one real input of the graph (initializers listed as inputs by old
    exporters do not count); it must be a floating-point tensor."""
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise UnsupportedOperatorError(f"{path}: the graph must have exactly one input, it has {len(inputs)} ({names})")
    value_info = inputs[0]
    if not value_info.type.HasField("tensor_type"):
        raise UnsupportedOperatorError(f"{path}: input {value_info.name!r} is not a tensor")
    elem = value_info.type.tensor_type.elem_type
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    if elem not in floats:
        kind = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else str(elem)
        raise UnsupportedOperatorError(
            f"{path}: input {value_info.name!r} has element type {kind}; lipmip needs a floating-point input"
        )
    return value_info


class _Reader:
    """One pass over the nodes of a graph; collects the layers."""

    def __init__(self, path: Path, onnx: Any):
        self.path = path
        self.onnx = onnx
        self.values: dict[str, Any] = {}
        self.layers: list[Layer] = []
        self.generation = 0

    def read(self, graph: Any) -> tuple[list[Layer], tuple[int, ...]]:
        """Trace the graph; return the layers and the Network's input shape."""
        input_info = _graph_input(graph, self.path, self.onnx)
        if len(graph.output) != 1:
            raise UnsupportedOperatorError(
                f"{self.path}: the graph must have exactly one output, it has {len(graph.output)}"
            )
        for tensor in graph.initializer:
            try:
                self.values[tensor.name] = _tensor_to_array(tensor, self.onnx)
            except Exception as exc:
                raise ModelFormatError(f"{self.path}: initializer {tensor.name!r} cannot be read ({exc})") from None
        trace_shape, input_shape = _input_shape(input_info, self.path)
        self.values[input_info.name] = _identity_affine(trace_shape, 0)
        for index, node in enumerate(graph.node):
            self._run_node(node, index)
        self._finish(graph.output[0].name)
        return self.layers, input_shape

    def _fetch(self, name: str, node: Any) -> Any:
        if name == "":
            return None
        if name not in self.values:
            raise _NodeError(f"reads tensor {name!r}, which no earlier node or initializer defines")
        value = self.values[name]
        if _is_tracked(value) and value.generation != self.generation and node.op_type not in _SHAPE_ONLY:
            raise _unsupported(
                f"reads tensor {name!r} from before a later Relu; lipmip supports only chains of layers "
                "(no skip connections or branches)"
            )
        return value

    def _run_node(self, node: Any, index: int) -> None:
        label = _node_label(node, index)
        try:
            if node.domain not in ("", "ai.onnx"):
                raise _unsupported(f"is from the operator domain {node.domain!r}, which lipmip does not read")
            inputs = [self._fetch(name, node) for name in node.input]
            attrs = _attributes(node, self.onnx)
            with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
                outputs = self._evaluate(node, inputs, attrs)
        except _NodeError as exc:
            if exc.unsupported:
                raise UnsupportedOperatorError(f"{self.path}: {label} {exc.reason}") from None
            raise ModelFormatError(f"{self.path}: {label} {exc.reason}") from None
        except LipmipError as exc:
            raise type(exc)(f"{self.path}: {label}: {exc}") from None
        except Exception as exc:  # numpy/onnx errors on malformed nodes
            raise ModelFormatError(
                f"{self.path}: {label} cannot be evaluated ({type(exc).__name__}: {exc})"
            ) from None
        for name, value in zip(node.output, outputs):
            if name:
                self.values[name] = value

    def _evaluate(self, node: Any, inputs: list[Any], attrs: dict[str, Any]) -> list[Any]:
        op = node.op_type
        if op == "Constant":
            return [_op_constant(attrs)]
        if op == "Cast":
            return _op_cast(inputs, attrs, self.onnx)
        if op == "Relu":
            return [self._relu(inputs[0])]
        if op in ("Dropout", "BatchNormalization") and any(node.output[1:]):
            raise _unsupported("asks for extra training outputs, which lipmip does not model")
        handler = _HANDLERS.get(op)
        if handler is None:
            raise _unsupported(
                f"uses operator {op!r}, which lipmip cannot represent exactly "
                f"(supported: {', '.join(_SUPPORTED)})"
            )
        if any(v is None for v in inputs[:1]):
            raise _NodeError("has no data input")
        return handler(inputs, attrs)

    def _relu(self, x: Any) -> Any:
        """Close the current layer with a ReLU; return the new hidden vector."""
        if not _is_tracked(x):
            return np.maximum(x, 0)
        self.layers.append(Layer(x.matrix().T, x.c.reshape(-1), "relu", index=len(self.layers)))
        self.generation += 1
        return _identity_affine(x.shape, self.generation)

    def _finish(self, output_name: str) -> None:
        """Append the last affine map unless the output is the last ReLU's output."""
        if output_name not in self.values:
            raise ModelFormatError(f"{self.path}: no node computes the graph output {output_name!r}")
        out = self.values[output_name]
        if not _is_tracked(out):
            raise ModelFormatError(f"{self.path}: the graph output {output_name!r} does not depend on the input")
        if out.generation != self.generation:
            raise UnsupportedOperatorError(
                f"{self.path}: the graph output {output_name!r} is computed before a later Relu "
                "(the graph is not a chain of layers)"
            )
        if self.layers and out.is_identity():
            return
        self.layers.append(Layer(out.matrix().T, out.c.reshape(-1), "identity", index=len(self.layers)))


def load_onnx(path: str | Path, *, name: str | None = None) -> Network:
    """Read an ONNX model of a fully-connected ReLU network.

    Guarantees: the returned :class:`Network` computes the graph's output
    (flattened row-major) from its input (flattened row-major) in exact
    float64 arithmetic on the stored weights; constant pre-processing before
    the first layer is folded into it; a ``Relu`` on the graph output is kept
    as the last layer's activation, otherwise the last layer is affine.
    ``input_shape`` is the model input's shape without a leading batch
    dimension of 1 (or symbolic) when the input has rank >= 2. ``name``
    defaults to the file name.

    Raises :class:`ModelFormatError` (naming the file) for unreadable,
    empty, truncated or malformed files and
    :class:`UnsupportedOperatorError` (naming the operator, the node and
    the file) for graphs that are not a chain of affine maps and ReLUs.
    """
    path = Path(path)
    onnx = optional_import("onnx", "reading ONNX models")
    model = _read_model(path, onnx)
    layers, input_shape = _Reader(path, onnx).read(model.graph)
    try:
        return Network(layers, input_shape=input_shape, name=path.name if name is None else name)
    except LipmipError as exc:
        raise type(exc)(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------- writing
def _save_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ModelFormatError(f"save_onnx: dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def _cast_weights(arr: np.ndarray, dt: np.dtype, what: str) -> np.ndarray:
    """``arr`` in the file's dtype; refuses values float32 cannot hold."""
    with np.errstate(over="ignore"):
        out = np.asarray(arr, dtype=dt)
    if not np.all(np.isfinite(out)):
        raise ModelFormatError(f"save_onnx: {what} has entries too large for {dt.name}")
    return out


def _build_model(net: Network, *, dtype: Any = "float64") -> Any:
    """The ONNX ModelProto :func:`save_onnx` writes (checked with
    ``onnx.checker``): input ``input`` of shape ``[1, *net.input_shape]``,
    output ``output`` of shape ``[1, net.output_dim]``."""
    onnx = optional_import("onnx", "writing ONNX models")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    dt = _save_dtype(dtype)
    elem = onnx.TensorProto.DOUBLE if dt == np.float64 else onnx.TensorProto.FLOAT
    nodes, initializers = [], []
    current = "input"
    if len(net.input_shape) != 1:
        nodes.append(helper.make_node("Flatten", [current], ["flat"], axis=1, name="flatten"))
        current = "flat"
    for i, layer in enumerate(net.layers, start=1):
        if layer.activation.name not in ("relu", "identity"):
            raise ModelFormatError(
                f"save_onnx: layer {i} has activation {layer.activation.name!r}, which ONNX export does not support"
            )
    last = len(net.layers)
    for i, layer in enumerate(net.layers, start=1):
        w, b = f"W{i}", f"b{i}"
        initializers.append(numpy_helper.from_array(_cast_weights(layer.W, dt, f"layer {i} W"), w))
        initializers.append(numpy_helper.from_array(_cast_weights(layer.b, dt, f"layer {i} b"), b))
        relu = layer.activation.name == "relu"
        z = "output" if i == last and not relu else f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, w, b], [z], transB=1, name=f"gemm{i}"))
        current = z
        if relu:
            h = "output" if i == last else f"h{i}"
            nodes.append(helper.make_node("Relu", [current], [h], name=f"relu{i}"))
            current = h
    graph = helper.make_graph(
        nodes,
        net.name or "lipmip_network",
        [helper.make_tensor_value_info("input", elem, [1, *net.input_shape])],
        [helper.make_tensor_value_info("output", elem, [1, net.output_dim])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _SAVE_OPSET)],
        ir_version=_SAVE_IR_VERSION,
        producer_name="lipmip",
    )
    onnx.checker.check_model(model)
    return model


def save_onnx(net: Network, path: str | Path, *, dtype: Any = "float64") -> None:
    """Write ``net`` as an ONNX model that passes ``onnx.checker``: input
    ``input`` of shape ``[1, *net.input_shape]``, a ``Flatten`` when that is
    not a vector, one ``Gemm`` (``transB=1``) per layer with a ``Relu`` where
    the layer has one, output ``output`` of shape ``[1, net.output_dim]``
    (opset 13, IR version 7; onnxruntime runs it).

    With the default ``dtype="float64"`` reading the file back with
    :func:`load_onnx` gives bit-identical weights, activations and input
    shape. ``dtype="float32"`` rounds the weights for tools that only take
    float32. A path ending in ``.gz`` is written gzip-compressed.
    """
    if not isinstance(net, Network):
        raise ModelFormatError(f"save_onnx expects a lipmip.Network, got {type(net).__name__}")
    path = Path(path)
    data = _build_model(net, dtype=dtype).SerializeToString()
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ModelFormatError(f"cannot write {path}: {exc}") from None
