"""Reading networks from in-memory objects: parameter lists, PyTorch, Equinox
and Flax models.

Every reader turns its model into one list of *ops* (affine maps, ReLUs and
flattens, in forward order, each tagged with where it came from) and
:func:`network_from_ops` turns that list into a :class:`~lipmip.Network`. So
the rules below hold for every framework:

* consecutive affine maps with no ReLU between them are composed into one
  layer (exactly, up to float64 rounding);
* ``ReLU(ReLU(x)) = ReLU(x)``: a repeated ReLU is dropped; a ReLU before the
  first affine map becomes an identity-weight layer with a ReLU;
* a ReLU after the last affine map is kept as the output activation;
* identity and dropout layers are skipped. Dropout is read as its inference
  (evaluation-mode) behaviour, the identity: lipmip certifies the
  deterministic function the model computes in eval mode, never a
  training-mode forward pass with random masks;
* anything else (convolutions, normalisation, smooth activations, custom
  modules whose ``forward`` lipmip cannot see) raises
  :class:`~lipmip.errors.UnsupportedOperatorError` naming the layer class and
  where it sits.

Equinox and Flax NNX models are walked once, by :func:`jax_model_ops`, for
both readers: it yields the layers' arrays as the framework stores them
(:class:`StoredAffineOp`) and the ReLUs. :func:`load_object` converts them
to float64; :mod:`lipmip.jax.params` keeps them as JAX arrays (tracers under
``jit``) and composes them with the same :func:`plan_layers`.

Framework packages are imported only for objects that come from them: a
plain list never imports torch, flax or equinox.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipmip.dependencies import optional_import
from lipmip.errors import ModelFormatError, ShapeError, UnsupportedOperatorError
from lipmip.network import Layer, Network

__all__ = [
    "AffineOp",
    "FlattenOp",
    "LayerPlan",
    "ReluOp",
    "StoredAffineOp",
    "as_float64",
    "comes_from",
    "is_identity_function",
    "jax_model_ops",
    "linen_pairs",
    "load_object",
    "network_from_ops",
    "plan_layers",
]

SUPPORTED_OBJECTS = (
    "a list of (W, b) pairs; a torch.nn.Sequential or torch.nn.Linear; a PyTorch state dict; "
    "an equinox.nn.MLP, equinox.nn.Sequential or equinox.nn.Linear; a flax.nnx.Sequential or "
    "flax.nnx.Linear; a Flax linen parameter dict ({'params': {'Dense_0': {'kernel', 'bias'}, ...}})"
)

LAYOUTS = ("out_in", "in_out")


# ---------------------------------------------------------------------- the op list


@dataclass(frozen=True, eq=False)
class AffineOp:
    """``x -> W x + b`` with ``W`` of shape ``(out, in)``: float64 numpy
    arrays here, JAX arrays in :mod:`lipmip.jax.params` (:func:`plan_layers`
    composes either)."""

    W: np.ndarray
    b: np.ndarray
    where: str


@dataclass(frozen=True)
class ReluOp:
    """An elementwise ReLU."""

    where: str


@dataclass(frozen=True)
class FlattenOp:
    """Flattening every non-batch dimension (row-major); the identity on a
    vector, it only tells that the model accepts a multi-dimensional input."""

    where: str


@dataclass(frozen=True, eq=False)
class StoredAffineOp:
    """An affine layer as its JAX framework stores it, arrays untouched (JAX
    arrays, tracers under ``jit``): ``weight`` of shape ``(out, in)`` when
    ``layout`` is ``"out_in"`` (Equinox), a kernel of shape ``(in, out)`` when
    ``"in_out"`` (Flax); ``bias`` may be ``None`` (zero). Not yet checked."""

    weight: Any
    bias: Any
    layout: str
    where: str


Op = AffineOp | ReluOp | FlattenOp
JaxModelOp = StoredAffineOp | ReluOp


def comes_from(obj: Any, package: str) -> bool:
    """True when ``obj``'s class, or one of its base classes, is defined in
    ``package`` or one of its submodules. Imports nothing."""
    for cls in type(obj).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module == package or module.startswith(package + "."):
            return True
    return False


def as_float64(value: Any, what: str) -> np.ndarray:
    """``value`` (numpy, JAX or PyTorch array, nested lists) as a float64 numpy
    array; raises :class:`ModelFormatError` naming ``what`` if it is not numeric."""
    try:
        if comes_from(value, "torch"):
            value = value.detach().cpu().double().numpy()
        return np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise ModelFormatError(f"{what} is not a numeric array ({exc})") from None


def affine_op(W: Any, b: Any, where: str, *, layout: str = "out_in") -> AffineOp:
    """An :class:`AffineOp` from ``W`` of shape ``(out, in)`` (with ``layout="in_out"``
    a kernel of shape ``(in, out)``, transposed) and an optional bias (``None``
    means zero), converted to float64 and shape-checked."""
    if layout == "in_out":
        kernel = as_float64(W, f"{where}: kernel")
        if kernel.ndim != 2:
            raise ShapeError(f"{where}: kernel must be 2-D (in, out), got shape {kernel.shape}")
        W = kernel.T
    W_arr = as_float64(W, f"{where}: weight")
    if W_arr.ndim != 2:
        raise ShapeError(f"{where}: weight must be 2-D (out, in), got shape {W_arr.shape}")
    b_arr = np.zeros(W_arr.shape[0]) if b is None else as_float64(b, f"{where}: bias").reshape(-1)
    if b_arr.shape != (W_arr.shape[0],):
        raise ShapeError(f"{where}: bias has {b_arr.size} entries but the weight has {W_arr.shape[0]} outputs")
    return AffineOp(W_arr, b_arr, where)


def _compose(first: AffineOp, second: AffineOp) -> AffineOp:
    """``second ∘ first`` as one affine map (numpy or JAX arrays alike)."""
    if second.W.shape[1] != first.W.shape[0]:
        raise ShapeError(
            f"{second.where} takes {second.W.shape[1]} inputs but {first.where} produces {first.W.shape[0]}"
        )
    return AffineOp(second.W @ first.W, second.W @ first.b + second.b, f"{first.where}+{second.where}")


@dataclass(frozen=True)
class LayerPlan:
    """The layers an op list computes: ``layers`` pairs each (composed) affine
    map with the activation after it, ``"relu"`` or ``"identity"``;
    ``leading_relu``: a ReLU comes before the first affine map;
    ``flattened``: a flatten does."""

    layers: list[tuple[AffineOp, str]]
    leading_relu: bool
    flattened: bool


def plan_layers(ops: Iterable[Op]) -> LayerPlan:
    """Group ``ops`` (in forward order) into layers: consecutive affine ops are
    composed into one (``@`` on their arrays, so numpy and JAX alike; raises
    :class:`ShapeError` when they do not chain); a ReLU directly after an
    affine op becomes that layer's activation; a repeated ReLU is dropped.
    What a ReLU or flatten *before* the first affine op means is left to the
    caller (:attr:`LayerPlan.leading_relu`, :attr:`LayerPlan.flattened`)."""
    layers: list[tuple[AffineOp, str]] = []
    pending: AffineOp | None = None
    leading_relu = False
    flattened = False
    for op in ops:
        if isinstance(op, FlattenOp):
            flattened = flattened or (not layers and pending is None)
        elif isinstance(op, AffineOp):
            pending = op if pending is None else _compose(pending, op)
        elif pending is not None:
            layers.append((pending, "relu"))
            pending = None
        elif not layers:
            leading_relu = True
    if pending is not None:
        layers.append((pending, "identity"))
    return LayerPlan(layers, leading_relu, flattened)


def network_from_ops(
    ops: Iterable[Op],
    *,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
    source: str = "model",
) -> Network:
    """Build the :class:`Network` that computes the same function as ``ops``
    applied in order.

    Guarantees: consecutive affine ops are composed into one layer; a ReLU
    directly after an affine op becomes that layer's activation (also on the
    output); a repeated ReLU is dropped; a ReLU before the first affine op
    becomes an identity-weight layer with a ReLU. A multi-dimensional
    ``input_shape`` is accepted only when a flatten op comes before the first
    affine op (otherwise the model's own layers would act on the last axis
    only). Raises :class:`ModelFormatError` when there is no affine op.
    """
    plan = plan_layers(ops)
    if not plan.layers:
        raise ModelFormatError(f"{source} has no linear layer; lipmip needs at least one affine map")
    layers: list[Layer] = []
    if plan.leading_relu:
        layers.append(Layer(np.eye(plan.layers[0][0].W.shape[1]), None, "relu", index=0))
    for affine, activation in plan.layers:
        layers.append(Layer(affine.W, affine.b, activation, index=len(layers)))
    if input_shape is not None and len(tuple(input_shape)) > 1 and not plan.flattened:
        raise ShapeError(
            f"input_shape {tuple(input_shape)} has several dimensions but {source} has no Flatten before "
            "its first linear layer, so it does not act on that shape as one flat vector"
        )
    return Network(layers, input_shape=input_shape, name=name)


# ---------------------------------------------------------------------- entry point


def load_object(
    obj: Any,
    *,
    activations: Sequence[str] | None = None,
    layout: str | None = None,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
) -> Network:
    """Read a :class:`Network` from an in-memory model or parameter list.

    Supported (see :data:`SUPPORTED_OBJECTS`): a list/tuple of ``(W, b)``
    pairs; PyTorch ``nn.Sequential``/``nn.Linear`` modules and state dicts;
    Equinox ``MLP``/``Sequential``/``Linear``; Flax ``nnx.Sequential``/
    ``nnx.Linear`` and linen parameter dicts.

    ``activations`` (one name per layer) and ``layout`` apply only to bare
    parameters (lists and parameter dicts), which record no activations:
    ReLU after every layer but the last is assumed otherwise. ``layout`` is
    ``"out_in"`` (``W`` of shape ``(out, in)``, the default for lists and
    PyTorch) or ``"in_out"`` (the Flax/scikit-learn convention, the default
    for Flax dicts); ``W`` stored the other way round is transposed.

    The result computes the same function as the model in evaluation mode
    (weights converted to float64). Raises :class:`ModelFormatError` for an
    object of another type, :class:`UnsupportedOperatorError` for a layer
    lipmip cannot represent exactly, :class:`ShapeError` for parameters that
    do not chain.
    """
    if isinstance(obj, Network):
        return obj if name is None else obj.with_name(name)
    if layout is not None and layout not in LAYOUTS:
        raise ModelFormatError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if isinstance(obj, (list, tuple)):
        pairs = _orient(list(obj), layout or "out_in")
        return Network.from_params(pairs, activations, input_shape=input_shape, name=name)
    if isinstance(obj, Mapping):
        return _load_mapping(obj, activations=activations, layout=layout, input_shape=input_shape, name=name)
    reader = _module_reader(obj)
    if reader is None:
        raise ModelFormatError(
            f"cannot read a network from an object of type {_type_name(obj)}; supported: {SUPPORTED_OBJECTS}"
        )
    if activations is not None or layout is not None:
        raise ModelFormatError(
            f"activations= and layout= apply only to parameter lists and parameter dicts; "
            f"a {_type_name(obj)} defines its own layers and activations"
        )
    return reader(obj, input_shape=input_shape, name=name)


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__


def _module_reader(obj: Any) -> Callable[..., Network] | None:
    """The reader for a framework model object, chosen by the package its class
    comes from, or None."""
    if comes_from(obj, "torch"):
        from lipmip.io.torch_format import network_from_torch

        return network_from_torch
    if comes_from(obj, "equinox") or comes_from(obj, "flax.nnx"):
        return _network_from_jax_model
    if comes_from(obj, "flax.linen"):
        return _refuse_linen_module
    return None


# ---------------------------------------------------------------------- bare parameters


def _orient(pairs: list, layout: str) -> list:
    """The ``(W, b)`` pairs as float64 arrays with ``W`` as ``(out, in)``: with
    ``in_out`` each ``W`` is transposed. A bias of ``None`` stays ``None``
    (zero); entries that are not pairs are left for
    :meth:`Network.from_params` to reject."""
    oriented = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            oriented.append(pair)
            continue
        W = as_float64(pair[0], f"parameter entry {i} weight W")
        b = None if pair[1] is None else as_float64(pair[1], f"parameter entry {i} bias b")
        if layout == "in_out":
            if W.ndim != 2:
                raise ShapeError(f"parameter entry {i} weight W must be 2-D (in, out), got shape {W.shape}")
            W = W.T
        oriented.append((W, b))
    return oriented


def _load_mapping(
    params: Mapping,
    *,
    activations: Sequence[str] | None,
    layout: str | None,
    input_shape: Sequence[int] | None,
    name: str | None,
) -> Network:
    """A PyTorch state dict (values are tensors) or a Flax linen parameter dict."""
    if any(comes_from(v, "torch") for v in params.values()):
        from lipmip.io.torch_format import network_from_state_dict

        if layout not in (None, "out_in"):
            raise ModelFormatError("a PyTorch state dict stores W as (out, in); layout must be 'out_in'")
        return network_from_state_dict(params, activations=activations, input_shape=input_shape, name=name)
    pairs = _orient(linen_pairs(params), layout or "in_out")
    return Network.from_params(pairs, activations, input_shape=input_shape, name=name)


_NUMBERED = re.compile(r"^(.*?)_?(\d+)$")


def linen_pairs(variables: Mapping) -> list[tuple[Any, Any]]:
    """The ``(kernel, bias)`` pairs of a linen parameter dict, in the numeric
    order of the layer names' suffixes (``Dense_2`` before ``Dense_10``)."""
    if "params" in variables:
        others = sorted(str(k) for k in variables if k != "params")
        if others:
            raise UnsupportedOperatorError(
                f"Flax variables hold the collection(s) {others} besides 'params' (e.g. BatchNorm statistics); "
                "lipmip reads Dense layers only"
            )
        variables = variables["params"]
    if not isinstance(variables, Mapping) or not variables:
        raise ModelFormatError(f"Flax 'params' must be a non-empty dict of layers; supported: {SUPPORTED_OBJECTS}")
    for key, entry in variables.items():
        _check_dense_entry(key, entry)
    numbered = {key: _NUMBERED.match(str(key)) for key in variables}
    prefixes = {m.group(1) for m in numbered.values() if m}
    if not all(numbered.values()) or len(prefixes) != 1:
        raise ModelFormatError(
            f"cannot tell the layer order from the names {sorted(map(str, variables))}; a Flax parameter dict "
            "needs layers named with one prefix and a number (Dense_0, Dense_1, ... or layers_0, layers_2, ...)"
        )
    order = sorted(variables, key=lambda k: int(numbered[k].group(2)))
    return [(variables[k]["kernel"], variables[k].get("bias")) for k in order]


def _check_dense_entry(key: Any, entry: Any) -> None:
    """Raise unless ``entry`` looks like the parameters of one Dense layer."""
    if not isinstance(entry, Mapping):
        raise ModelFormatError(
            f"dict entry {key!r} is a {_type_name(entry)}, not a layer's parameters; "
            f"cannot read this dict as a network. Supported: {SUPPORTED_OBJECTS}"
        )
    names = sorted(map(str, entry))
    kernel = entry.get("kernel")
    if kernel is None or not set(names) <= {"kernel", "bias"} or np.ndim(kernel) != 2:
        shape = f", kernel shape {np.shape(kernel)}" if kernel is not None else ""
        raise UnsupportedOperatorError(
            f"Flax layer {key!r} (parameters {names}{shape}) is not a Dense layer; lipmip reads Dense layers "
            "(a 2-D 'kernel' and an optional 'bias') with ReLU between"
        )


# ---------------------------------------------------------------------- JAX activations


def is_identity_function(fn: Any) -> bool:
    """True for a plain Python function that returns its single argument
    unchanged (``lambda x: x``), recognised from its bytecode."""
    if not inspect.isfunction(fn):
        return False
    code = fn.__code__
    reference = (lambda x: x).__code__
    return code.co_argcount == 1 and not code.co_kwonlyargcount and code.co_code == reference.co_code


def _jax_activation_ops(fn: Any, where: str, source: str) -> list[ReluOp]:
    """The ops of a JAX activation callable: ``[ReluOp]`` for ``jax.nn.relu``
    (which Flax re-exports as ``nnx.relu``/``linen.relu``), ``[]`` for the
    identity; raises :class:`UnsupportedOperatorError` for anything else."""
    import jax

    if fn is jax.nn.relu:
        return [ReluOp(where)]
    if is_identity_function(fn):
        return []
    label = getattr(fn, "__name__", None) or type(fn).__name__
    raise UnsupportedOperatorError(
        f"{source} activation {label!r} at {where} is not supported; lipmip represents ReLU "
        "(jax.nn.relu) and the identity exactly, nothing else"
    )


# ---------------------------------------------------------------------- Equinox and Flax NNX


def jax_model_ops(model: Any) -> tuple[Iterator[JaxModelOp], str] | None:
    """The ops of an Equinox ``MLP``/``Sequential``/``Linear`` or a Flax
    ``nnx.Sequential``/``nnx.Linear`` in forward order, and a label naming the
    model for messages (``"the Equinox MLP"``); ``None`` for any other object.

    The ops are yielded lazily, so a caller converting each as it comes sees
    errors in forward order. Arrays are never copied or converted (they may
    be tracers); identity and dropout layers yield nothing. Raises
    :class:`UnsupportedOperatorError` naming any other layer or activation
    and where it sits."""
    label = type(model).__name__
    if comes_from(model, "equinox"):
        eqx = optional_import("equinox", "reading Equinox models")
        return _equinox_ops(eqx, model, label), f"the Equinox {label}"
    if comes_from(model, "flax.nnx"):
        nnx = optional_import("flax.nnx", "reading Flax NNX models")
        return _nnx_ops(nnx, model, label), f"the Flax {label}"
    return None


def _network_from_jax_model(model: Any, *, input_shape: Sequence[int] | None = None, name: str | None = None) -> Network:
    """An Equinox ``MLP``/``Sequential``/``Linear`` or a Flax ``nnx.Sequential``/
    ``nnx.Linear`` as a Network (weights converted to float64)."""
    ops, source = jax_model_ops(model)
    float64_ops = [
        affine_op(op.weight, op.bias, op.where, layout=op.layout) if isinstance(op, StoredAffineOp) else op for op in ops
    ]
    return network_from_ops(float64_ops, input_shape=input_shape, name=name, source=source)


def _equinox_ops(eqx: Any, module: Any, where: str) -> Iterator[JaxModelOp]:
    """The ops of one Equinox module (recursing into Sequential and MLP)."""
    nn = eqx.nn
    kind = type(module)
    if kind is nn.Linear:
        yield StoredAffineOp(_column(module.weight), module.bias, "out_in", where)
    elif kind is nn.MLP:
        yield from _equinox_mlp_ops(module, where)
    elif kind is nn.Sequential:
        for i, layer in enumerate(module.layers):
            yield from _equinox_ops(eqx, layer, f"{where}.layers[{i}]")
    elif kind is nn.Lambda:
        yield from _jax_activation_ops(module.fn, where, "Equinox Lambda")
    elif kind in (nn.Identity, nn.Dropout):
        return
    else:
        raise UnsupportedOperatorError(
            f"Equinox layer {kind.__name__} at {where} is not supported; lipmip reads Linear, "
            "Lambda(jax.nn.relu), Identity, Dropout (as the identity), and MLP and Sequential of those"
        )


def _column(weight: Any) -> Any:
    """An Equinox ``Linear`` weight as ``(out, in)`` (a ``'scalar'`` input
    stores ``(out, 1)`` already; a 1-D weight is one column)."""
    return weight.reshape(-1, 1) if np.ndim(weight) == 1 else weight


def _equinox_mlp_ops(mlp: Any, where: str) -> Iterator[JaxModelOp]:
    """The ops of an ``eqx.nn.MLP``: ``activation`` after every layer but the
    last, ``final_activation`` after the last. Layers stacked for
    ``scan=True`` are unstacked (by indexing, which traces). Like Equinox
    itself, an MLP of depth 0 applies no final activation."""
    affines = []
    for i, layer in enumerate(mlp.layers):
        weight, bias = layer.weight, layer.bias
        if np.ndim(weight) == 3:  # scan=True stacks the hidden layers
            for k in range(weight.shape[0]):
                stacked_bias = None if bias is None else bias[k]
                affines.append(StoredAffineOp(weight[k], stacked_bias, "out_in", f"{where}.layers[{i}][{k}]"))
        else:
            affines.append(StoredAffineOp(_column(weight), bias, "out_in", f"{where}.layers[{i}]"))
    for i, affine in enumerate(affines):
        yield affine
        if i < len(affines) - 1:
            yield from _jax_activation_ops(mlp.activation, f"{where}.activation", "Equinox MLP")
    if len(affines) > 1:
        yield from _jax_activation_ops(mlp.final_activation, f"{where}.final_activation", "Equinox MLP")


def _variable_value(variable: Any) -> Any:
    """The array inside an NNX ``Param`` (``None`` stays ``None``)."""
    if variable is None:
        return None
    getter = getattr(variable, "get_value", None)
    return getter() if callable(getter) else getattr(variable, "value", variable)


def _nnx_ops(nnx: Any, layer: Any, where: str) -> Iterator[JaxModelOp]:
    """The ops of one NNX layer or plain activation function."""
    kind = type(layer)
    if kind is nnx.Linear:
        yield StoredAffineOp(_variable_value(layer.kernel), _variable_value(layer.bias), "in_out", where)
    elif kind is nnx.Sequential:
        for i, sub in enumerate(layer.layers):
            yield from _nnx_ops(nnx, sub, f"{where}.layers[{i}]")
    elif kind is nnx.Dropout:
        return
    elif not isinstance(layer, nnx.Module) and callable(layer):
        yield from _jax_activation_ops(layer, where, "Flax")
    else:
        raise UnsupportedOperatorError(
            f"Flax layer {kind.__name__} at {where} is not supported; lipmip reads nnx.Sequential of "
            "nnx.Linear, nnx.relu and nnx.Dropout (as the identity)"
        )


# ---------------------------------------------------------------------- Flax linen modules


def _refuse_linen_module(model: Any, **_: Any) -> Network:
    raise ModelFormatError(
        f"a flax.linen {type(model).__name__} holds no parameters; pass its variables instead, "
        "e.g. lipmip.load(module.init(key, x)) or lipmip.load(variables['params'])"
    )
