"""Models as ``(W, b)`` lists, traceably: the input side of :mod:`lipmip.jax`.

Every public function of :mod:`lipmip.jax` takes ``params`` as a list of
``(W, b)`` pairs (``W`` of shape ``(out, in)``) or as a model object, turned
into such a list by :func:`as_params` without leaving JAX: under ``jax.jit``
or ``jax.grad`` the arrays stay tracers, so a loss written with these
functions differentiates straight back into the model's own parameters.

Accepted models:

* a list or tuple of ``(W, b)`` pairs (``b`` may be ``None``: zero);
* a :class:`lipmip.Network` (its arrays as JAX constants: float64 under
  ``jax.enable_x64``, else float32);
* an Equinox ``eqx.nn.MLP`` (``scan=True`` stacks unstacked), ``eqx.nn.Linear``,
  or an ``eqx.nn.Sequential`` of ``Linear``, ``Lambda(jax.nn.relu)``,
  ``Identity`` and ``Dropout`` (read as the identity, as in evaluation mode);
* a Flax ``nnx.Linear`` or ``nnx.Sequential`` of ``nnx.Linear``, ``nnx.relu``
  and ``nnx.Dropout``;
* Flax linen variables or parameters (``{"params": {"Dense_0": {"kernel",
  "bias"}, ...}}``); linen kernels are stored ``(in, out)`` and are transposed.

Equinox and Flax NNX models are walked by the same code as
:func:`lipmip.load` (:func:`lipmip.io.objects.jax_model_ops`) and grouped
into layers by the same rules (:func:`lipmip.io.objects.plan_layers`); only
the arrays differ: here they stay JAX arrays, never converted to float64.

A model object knows its activations (:func:`activations_of`); a bare list
has ReLU after every layer but the last unless ``activations=`` says
otherwise. Shapes are static under ``jit``, so every shape check here runs at
trace time and raises a :class:`~lipmip.errors.LipmipError` subclass naming
the problem, inside ``jit`` or not. Weight values are not checked (that
would stop the computation to look at them): NaN weights give NaN results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lipmip.activations import get_activation
from lipmip.errors import InvalidQueryError, InvalidRegionError, ModelFormatError, ShapeError, UnsupportedOperatorError
from lipmip.io.objects import AffineOp, JaxModelOp, StoredAffineOp, jax_model_ops, linen_pairs, plan_layers
from lipmip.jax.core import default_activations
from lipmip.network import Network
from lipmip.norms import parse_norm

__all__ = ["as_params", "activations_of", "resolve", "check_norm", "check_ball", "check_c", "check_radius", "check_points"]

Pair = tuple[jax.Array, jax.Array]

SUPPORTED_MODELS = (
    "a list of (W, b) pairs with W of shape (out, in); a lipmip.Network; an equinox.nn.MLP, Linear or Sequential; "
    "a flax.nnx.Linear or Sequential; Flax linen variables ({'params': {'Dense_0': {'kernel', 'bias'}, ...}})"
)


def as_params(model: Any) -> list[Pair]:
    """``model``'s layers as ``(W, b)`` pairs, ``W`` of shape ``(out, in)``,
    ``b`` of shape ``(out,)``: traceable (arrays are used as they are, never
    copied to numpy), so it works on tracers under ``jit``/``grad``.
    Consecutive affine layers with no ReLU between are composed into one.
    Raises :class:`~lipmip.errors.ModelFormatError` for an unsupported
    object, :class:`~lipmip.errors.UnsupportedOperatorError` for a layer
    that is not affine, ReLU or identity, :class:`~lipmip.errors.ShapeError`
    for layers that do not chain."""
    return _read(model, None)[0]


def activations_of(model: Any) -> tuple[str, ...]:
    """The activation after each layer of :func:`as_params` (``"relu"`` or
    ``"identity"``): the model's own for a model object, ReLU after every
    layer but the last for a bare list."""
    return _read(model, None)[1]


def resolve(model: Any, activations: Sequence[str] | None) -> tuple[list[Pair], tuple[str, ...]]:
    """``(params, activations)`` for the functions of :mod:`lipmip.jax`:
    ``activations`` is used for a bare list (default: ReLU between, identity
    last); a model object brings its own, and passing ``activations=`` with
    one raises :class:`~lipmip.errors.ModelFormatError`."""
    return _read(model, activations)


# ---------------------------------------------------------------------- readers


def _read(model: Any, activations: Sequence[str] | None) -> tuple[list[Pair], tuple[str, ...]]:
    if isinstance(model, (list, tuple)):
        params = _pairs(model)
        return params, _activation_names(activations, len(params))
    if activations is not None:
        raise ModelFormatError(
            f"activations= applies only to a list of (W, b) pairs; a {type(model).__name__} defines its own activations"
        )
    if isinstance(model, Network):
        return [(jnp.asarray(W), jnp.asarray(b)) for W, b in model.params], model.activations
    if isinstance(model, Mapping):
        return _linen(model)
    framework_model = jax_model_ops(model)
    if framework_model is not None:
        return _from_ops(*framework_model)
    raise ModelFormatError(f"cannot read parameters from an object of type {type(model).__name__}; supported: {SUPPORTED_MODELS}")


def _pairs(entries: Sequence[Any]) -> list[Pair]:
    """Shape-checked ``(W, b)`` pairs from a list (``b=None`` becomes zeros)."""
    if not entries:
        raise ShapeError("a network needs at least one layer; the parameter list is empty")
    pairs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ShapeError(f"parameter entry {i} must be a (W, b) pair, got {type(entry).__name__}")
        pairs.append(_affine(entry[0], entry[1], f"parameter entry {i}"))
    _check_chain(pairs, [f"parameter entry {i}" for i in range(len(pairs))])
    return pairs


def _affine(W: Any, b: Any, where: str, *, layout: str = "out_in") -> Pair:
    """A shape-checked ``(W, b)`` pair, ``W`` of shape ``(out, in)``; with
    ``layout="in_out"`` ``W`` is a kernel of shape ``(in, out)``, transposed."""
    if layout == "in_out":
        kernel = _array(W, f"{where}: kernel")
        if kernel.ndim != 2:
            raise ShapeError(f"{where}: kernel must be 2-D (in, out), got shape {kernel.shape}")
        W = kernel.T
    W = _array(W, f"{where}: weight W")
    if W.ndim != 2:
        raise ShapeError(f"{where}: weight W must be 2-D (out, in), got shape {W.shape}")
    b = jnp.zeros(W.shape[0], dtype=W.dtype) if b is None else _array(b, f"{where}: bias b")
    if b.shape != (W.shape[0],):
        raise ShapeError(f"{where}: bias b has shape {b.shape} but W has {W.shape[0]} outputs (W shape {W.shape})")
    return W, b


def _array(value: Any, what: str) -> jax.Array:
    if isinstance(value, (jax.Array, np.ndarray)) and jnp.issubdtype(value.dtype, jnp.inexact):
        return jnp.asarray(value)
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what} is not a numeric array ({exc})") from None
    if not jnp.issubdtype(array.dtype, jnp.number) or jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise ShapeError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return array.astype(jnp.result_type(float)) if not jnp.issubdtype(array.dtype, jnp.inexact) else array


def _check_chain(pairs: list[Pair], names: list[str]) -> None:
    for k in range(1, len(pairs)):
        if pairs[k][0].shape[1] != pairs[k - 1][0].shape[0]:
            raise ShapeError(
                f"{names[k]} takes {pairs[k][0].shape[1]} inputs but {names[k - 1]} produces {pairs[k - 1][0].shape[0]} "
                f"(W shapes {pairs[k - 1][0].shape} then {pairs[k][0].shape}; W must be (out, in))"
            )


def _activation_names(activations: Sequence[str] | None, num_layers: int) -> tuple[str, ...]:
    if activations is None:
        return default_activations(num_layers)
    if isinstance(activations, str):
        raise ShapeError(f"activations must be a sequence of names, one per layer, got the string {activations!r}")
    names = tuple(get_activation(name).name for name in activations)
    if len(names) != num_layers:
        raise ShapeError(f"{num_layers} layers but {len(names)} activation names")
    return names


def _linen(variables: Mapping) -> tuple[list[Pair], tuple[str, ...]]:
    """Flax linen variables or parameters: Dense layers in the numeric order
    of their names' suffixes, kernels transposed, ReLU between."""
    entries = linen_pairs(variables)  # checks the layout; the arrays are left as they are
    names = [f"Flax layer {i}" for i in range(len(entries))]
    pairs = [_affine(kernel, bias, where, layout="in_out") for (kernel, bias), where in zip(entries, names)]
    _check_chain(pairs, names)
    return pairs, default_activations(len(pairs))


# ---------------------------------------------------------------------- Equinox and Flax NNX models


def _from_ops(ops: Iterable[JaxModelOp], source: str) -> tuple[list[Pair], tuple[str, ...]]:
    """Layers from the ops of :func:`~lipmip.io.objects.jax_model_ops`: each
    stored affine map shape-checked by :func:`_affine` (arrays kept as they
    are), then grouped by :func:`~lipmip.io.objects.plan_layers` (consecutive
    affine maps composed, a ReLU after one its activation, a repeated ReLU
    dropped). A ReLU before the first affine map is refused (it is no layer
    of an MLP)."""
    jax_ops = [
        AffineOp(*_affine(op.weight, op.bias, op.where, layout=op.layout), op.where) if isinstance(op, StoredAffineOp) else op
        for op in ops
    ]
    plan = plan_layers(jax_ops)
    if plan.leading_relu:
        raise UnsupportedOperatorError(
            f"{source} applies a ReLU before its first linear layer; lipmip.jax reads networks that start with a linear layer"
        )
    if not plan.layers:
        raise ModelFormatError(f"{source} has no linear layer; lipmip.jax needs at least one affine map")
    pairs = [(affine.W, affine.b) for affine, _ in plan.layers]
    _check_chain(pairs, [affine.where for affine, _ in plan.layers])
    return pairs, tuple(activation for _, activation in plan.layers)


# ---------------------------------------------------------------------- argument checks (trace time)


def check_norm(norm: Any, what: str = "norm") -> float:
    """``norm`` as 1.0, 2.0 or inf; raises :class:`~lipmip.errors.InvalidQueryError`."""
    return parse_norm(norm, InvalidQueryError, what)


def check_ball(ball: Any) -> float:
    """The ball's norm as 1.0, 2.0 or inf; raises :class:`~lipmip.errors.InvalidRegionError`."""
    return parse_norm(ball, InvalidRegionError, "ball norm")


def check_c(c: Any, num_outputs: int, *, batch: int | None = None) -> jax.Array | None:
    """``c`` as an array of shape ``(num_outputs,)`` (or ``(batch, num_outputs)``
    when ``batch`` is given and ``c`` is 2-D); raises
    :class:`~lipmip.errors.InvalidQueryError` otherwise."""
    if c is None:
        return None
    c = _array(c, "output functional c")
    if c.ndim == 1 and c.shape[0] == num_outputs:
        return c
    if batch is not None and c.shape == (batch, num_outputs):
        return c
    expected = f"({num_outputs},)" + ("" if batch is None else f" or ({batch}, {num_outputs})")
    raise InvalidQueryError(
        f"output functional c has shape {c.shape}; the network has {num_outputs} outputs, expected {expected}"
    )


def check_points(xs: Any, input_dim: int, what: str) -> jax.Array:
    """``xs`` as an array of shape ``(n, input_dim)`` (a single point is one
    row); raises :class:`~lipmip.errors.ShapeError` otherwise."""
    xs = _array(xs, what)
    if xs.ndim == 1:
        xs = xs[None, :]
    if xs.ndim != 2 or xs.shape[1] != input_dim or xs.shape[0] == 0:
        raise ShapeError(f"{what} has shape {xs.shape}; expected ({input_dim},) or (n, {input_dim}) with n >= 1")
    return xs


def check_radius(radius: Any, p: float, input_dim: int) -> jax.Array:
    """The radius as an array: a scalar, or for an ℓ∞ ball a vector of
    ``input_dim`` per-coordinate radii (a box; 0 fixes a coordinate). Values
    are checked (finite, > 0; a vector: >= 0) when they are concrete, i.e.
    outside ``jit``; raises :class:`~lipmip.errors.InvalidRegionError`."""
    r = _array(radius, "radius")
    if r.ndim == 1 and p == math.inf and r.shape[0] == input_dim:
        vector = True
    elif r.ndim == 0:
        vector = False
    else:
        allowed = "a scalar" + (f" or a vector of {input_dim} per-coordinate radii" if p == math.inf else "")
        raise InvalidRegionError(f"radius has shape {r.shape}; expected {allowed}")
    if not isinstance(r, jax.core.Tracer):
        values = np.asarray(r)
        if not np.all(np.isfinite(values)) or np.any(values < 0) or not np.any(values > 0) or (not vector and values <= 0):
            raise InvalidRegionError(f"radius must be finite and > 0 (per-coordinate radii >= 0, not all 0), got {values}")
    return r
