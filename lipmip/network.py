"""The :class:`Network` every part of lipmip works on.

A network is a chain of affine layers ``z_k = W_k h_{k-1} + b_k`` each
followed by an elementwise piecewise-linear activation ``h_k = σ_k(z_k)``.
``W_k`` has shape ``(out, in)`` (the PyTorch ``Linear`` convention). All
arrays are float64, read-only, finite, and checked to chain when the network
is built; nothing later re-validates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lipmip.activations import IDENTITY, RELU, Activation, get_activation
from lipmip.errors import NonFiniteError, ShapeError

__all__ = ["Layer", "Network"]


def _frozen_float64(value: Any, what: str) -> np.ndarray:
    """Copy ``value`` into a read-only float64 array, naming ``what`` on failure.
    Only real numbers are accepted (no complex values, strings or objects)."""
    try:
        kind = np.asarray(value).dtype.kind
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what} is not a numeric array ({exc})") from None
    if kind not in "biuf":
        raise ShapeError(f"{what} is not a numeric array of real numbers (dtype {np.asarray(value).dtype})")
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{what} is not a numeric array ({exc})") from None
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteError(f"{what} has {bad} non-finite entries (NaN or inf)")
    arr.setflags(write=False)
    return arr


def _vector_of(value: Any, n: int, what: str) -> np.ndarray:
    """``value`` as a float64 vector of length ``n`` (a scalar is repeated)."""
    arr = _frozen_float64(value, what).reshape(-1)
    if arr.size == 1:
        return np.full(n, arr[0])
    if arr.size != n:
        raise ShapeError(f"{what} has {arr.size} entries; the network takes {n} inputs")
    return arr


@dataclass(frozen=True, eq=False)
class Layer:
    """One affine map followed by an activation: ``σ(W x + b)``.

    ``W`` has shape ``(out, in)``, ``b`` shape ``(out,)``; both are stored as
    read-only float64 copies. ``activation`` is an :class:`Activation` or its
    name (``"relu"``, ``"identity"``).
    """

    W: np.ndarray
    b: np.ndarray
    activation: Activation = RELU

    def __init__(self, W: Any, b: Any = None, activation: str | Activation = "relu", *, index: int | None = None):
        where = "layer" if index is None else f"layer {index}"
        W_arr = _frozen_float64(W, f"{where} weight W")
        if W_arr.ndim != 2:
            raise ShapeError(f"{where} weight W must be 2-D (out, in), got shape {W_arr.shape}")
        if W_arr.shape[0] == 0 or W_arr.shape[1] == 0:
            raise ShapeError(f"{where} weight W has an empty dimension: shape {W_arr.shape}")
        if b is None:
            b = np.zeros(W_arr.shape[0])
        b_arr = _frozen_float64(b, f"{where} bias b")
        if b_arr.shape != (W_arr.shape[0],):
            raise ShapeError(
                f"{where} bias b must have shape ({W_arr.shape[0]},) to match W of shape {W_arr.shape}, "
                f"got {b_arr.shape}"
            )
        object.__setattr__(self, "W", W_arr)
        object.__setattr__(self, "b", b_arr)
        object.__setattr__(self, "activation", get_activation(activation))

    @property
    def in_features(self) -> int:
        return int(self.W.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.W.shape[0])

    def with_activation(self, activation: str | Activation) -> "Layer":
        """The same affine map with another activation."""
        return Layer(self.W, self.b, activation)

    def __repr__(self) -> str:
        return f"Layer({self.in_features} -> {self.out_features}, {self.activation.name})"


LayerLike = Layer | tuple


class Network:
    """An immutable feed-forward network of :class:`Layer` objects.

    Construction validates everything once: at least one layer, finite
    float64 weights, consecutive shapes that chain. ``input_shape`` records
    the shape the original model took (e.g. ``(1, 28, 28)``); lipmip itself
    always works on the flattened vector of ``input_dim`` entries (row-major).
    """

    __slots__ = ("_layers", "_input_shape", "_name")

    def __init__(
        self,
        layers: Iterable[LayerLike],
        *,
        input_shape: Sequence[int] | None = None,
        name: str | None = None,
    ):
        built: list[Layer] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, Layer):
                built.append(layer)
            elif isinstance(layer, (tuple, list)) and len(layer) in (2, 3):
                built.append(Layer(*layer, index=i))
            else:
                raise ShapeError(
                    f"layer {i} must be a Layer or a (W, b[, activation]) tuple, got {type(layer).__name__}"
                )
        if not built:
            raise ShapeError("a network needs at least one layer; the layer list is empty")
        for i in range(1, len(built)):
            if built[i].in_features != built[i - 1].out_features:
                raise ShapeError(
                    f"layer {i} expects {built[i].in_features} inputs but layer {i - 1} "
                    f"produces {built[i - 1].out_features} (W shapes {built[i - 1].W.shape} "
                    f"then {built[i].W.shape}; W must be (out, in))"
                )
        n_in = built[0].in_features
        if input_shape is None:
            shape: tuple[int, ...] = (n_in,)
        else:
            shape = tuple(int(s) for s in input_shape)
            if int(np.prod(shape)) != n_in:
                raise ShapeError(f"input shape {shape} has {int(np.prod(shape))} entries but the first layer takes {n_in}")
        self._layers = tuple(built)
        self._input_shape = shape
        self._name = name

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_params(
        cls,
        params: Sequence[tuple[Any, Any]],
        activations: Sequence[str] | None = None,
        *,
        input_shape: Sequence[int] | None = None,
        name: str | None = None,
    ) -> "Network":
        """Build from a list of ``(W, b)`` pairs, ``W`` of shape ``(out, in)``.

        Without ``activations``, ReLU follows every layer but the last, which
        is identity (logits out).
        """
        params = list(params)
        if activations is None:
            activations = ["relu"] * (len(params) - 1) + ["identity"] if params else []
        activations = list(activations)
        if len(activations) != len(params):
            raise ShapeError(f"{len(params)} layers but {len(activations)} activation names")
        for i, pair in enumerate(params):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ShapeError(f"parameter entry {i} must be a (W, b) pair, got {type(pair).__name__}")
        layers = [Layer(W, b, act, index=i) for i, ((W, b), act) in enumerate(zip(params, activations))]
        return cls(layers, input_shape=input_shape, name=name)

    # ------------------------------------------------------------------ properties
    @property
    def layers(self) -> tuple[Layer, ...]:
        return self._layers

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def input_dim(self) -> int:
        return self._layers[0].in_features

    @property
    def output_dim(self) -> int:
        return self._layers[-1].out_features

    @property
    def depth(self) -> int:
        """Number of affine layers."""
        return len(self._layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """Input dimension followed by every layer's output size."""
        return (self.input_dim,) + tuple(layer.out_features for layer in self._layers)

    @property
    def activations(self) -> tuple[str, ...]:
        return tuple(layer.activation.name for layer in self._layers)

    @property
    def num_parameters(self) -> int:
        return int(sum(layer.W.size + layer.b.size for layer in self._layers))

    @property
    def num_relus(self) -> int:
        """Number of neurons followed by a ReLU (including a ReLU on the output)."""
        return int(sum(layer.out_features for layer in self._layers if layer.activation is RELU))

    @property
    def has_output_activation(self) -> bool:
        return self._layers[-1].activation is not IDENTITY

    @property
    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(W, b)`` pairs, read-only float64 arrays."""
        return [(layer.W, layer.b) for layer in self._layers]

    # ------------------------------------------------------------------ derived networks
    def without_output_activation(self) -> "Network":
        """A copy whose last layer has no activation (the logits before an
        output ReLU). lipmip never drops an output ReLU on its own; this makes
        the stripped network an explicit choice."""
        last = self._layers[-1].with_activation(IDENTITY)
        return Network(self._layers[:-1] + (last,), input_shape=self._input_shape, name=self._name)

    def with_input_transform(self, scale: Any, shift: Any) -> "Network":
        """Fold the input map ``x -> scale * x + shift`` (elementwise, broadcast
        to the input dimension) into the first layer and return the new network.

        ``scale`` and ``shift`` are scalars or vectors of ``input_dim`` entries.
        A normalisation ``(x - mean) / std`` is ``scale = 1/std``,
        ``shift = -mean/std``. The result computes exactly ``f(scale*x + shift)``
        up to float64 rounding.
        """
        n = self.input_dim
        s = _vector_of(scale, n, "input scale")
        t = _vector_of(shift, n, "input shift")
        first = self._layers[0]
        W = first.W * s[None, :]
        b = first.b + first.W @ t
        layers = (Layer(W, b, first.activation, index=0),) + self._layers[1:]
        return Network(layers, input_shape=self._input_shape, name=self._name)

    def with_name(self, name: str | None) -> "Network":
        return Network(self._layers, input_shape=self._input_shape, name=name)

    # ------------------------------------------------------------------ evaluation
    def _as_batch(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        """Flatten ``x`` to ``(batch, input_dim)``; return it and the batch shape."""
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"network input is not a numeric array ({exc})") from None
        n = self.input_dim
        if arr.shape[-1:] == (n,):
            batch = arr.shape[:-1]
        elif len(self._input_shape) > 1 and arr.shape[arr.ndim - len(self._input_shape):] == self._input_shape:
            batch = arr.shape[: arr.ndim - len(self._input_shape)]
        else:
            raise ShapeError(
                f"network input has shape {arr.shape}; expected (..., {n})"
                + (f" or (..., {', '.join(map(str, self._input_shape))})" if len(self._input_shape) > 1 else "")
            )
        if not np.all(np.isfinite(arr)):
            raise NonFiniteError("network input holds NaN or inf")
        return arr.reshape(-1, n), batch

    def __call__(self, x: Any) -> np.ndarray:
        """Evaluate in float64. ``x`` has shape ``(..., input_dim)`` (or
        ``(..., *input_shape)``); the result has shape ``(..., output_dim)``."""
        h, batch = self._as_batch(x)
        for layer in self._layers:
            h = layer.activation.forward(h @ layer.W.T + layer.b)
        return h.reshape(batch + (self.output_dim,))

    def pre_activations(self, x: Any) -> list[np.ndarray]:
        """Every layer's pre-activation ``z_k`` at ``x`` (same batch shape as ``x``)."""
        h, batch = self._as_batch(x)
        out = []
        for layer in self._layers:
            z = h @ layer.W.T + layer.b
            out.append(z.reshape(batch + (layer.out_features,)))
            h = layer.activation.forward(z)
        return out

    def jacobian(self, x: Any) -> np.ndarray:
        """The Jacobian ``df/dx`` at ``x``, shape ``(..., output_dim, input_dim)``.

        Exact (float64) wherever no pre-activation sits on a kink of its
        activation. On a kink of a ReLU the slope 0 is used (one of the
        one-sided derivatives, as PyTorch and JAX do); callers that need to
        know use :meth:`pre_activations`.
        """
        h, batch = self._as_batch(x)
        slopes = []
        for layer in self._layers:
            z = h @ layer.W.T + layer.b
            slopes.append(layer.activation.slope(z))
            h = layer.activation.forward(z)
        # multiply the masked layers from the narrow end: reverse mode when there are fewer outputs than inputs
        if self.output_dim <= self.input_dim:
            J = slopes[-1][:, :, None] * self._layers[-1].W[None]
            for layer, s in zip(reversed(self._layers[:-1]), reversed(slopes[:-1])):
                J = (J * s[:, None, :]) @ layer.W
        else:
            J = slopes[0][:, :, None] * self._layers[0].W[None]
            for layer, s in zip(self._layers[1:], slopes[1:]):
                J = s[:, :, None] * (layer.W @ J)
        return J.reshape(batch + (self.output_dim, self.input_dim))

    def to_jax(self, dtype: Any = None) -> Callable:
        """A pure JAX function ``f(x)`` of one input vector ``(input_dim,)`` (use
        ``jax.vmap`` for batches), with the weights closed over as constants.

        ``dtype`` defaults to float64 when JAX has x64 enabled and float32
        otherwise; numbers certified by lipmip are always recomputed in numpy
        float64, whatever this function returns.
        """
        import jax.numpy as jnp

        params = [(jnp.asarray(layer.W, dtype=dtype), jnp.asarray(layer.b, dtype=dtype)) for layer in self._layers]
        acts = [layer.activation.jax_forward for layer in self._layers]

        def forward(x):
            h = x
            for (W, b), act in zip(params, acts):
                h = act(W @ h + b)
            return h

        return forward

    # ------------------------------------------------------------------ description
    def summary(self) -> str:
        """A human-readable table of the layers, sizes and parameter count."""
        lines = []
        title = f"Network {self._name!r}" if self._name else "Network"
        lines.append(
            f"{title}: {self.depth} affine layer{'s' if self.depth != 1 else ''}, "
            f"{self.num_parameters:,} parameters, {self.num_relus:,} ReLUs"
        )
        shape = "x".join(map(str, self._input_shape))
        lines.append(f"input: {self.input_dim} (original shape {shape})   output: {self.output_dim}")
        lines.append(f"{'layer':>5}  {'in':>6}  {'out':>6}  {'params':>9}  activation  {'max |W|':>10}  {'||W||_2':>10}")
        for i, layer in enumerate(self._layers):
            spectral = float(np.linalg.norm(layer.W, 2)) if min(layer.W.shape) <= 2048 else float("nan")
            lines.append(
                f"{i + 1:>5}  {layer.in_features:>6}  {layer.out_features:>6}  {layer.W.size + layer.b.size:>9,}  "
                f"{layer.activation.name:<10}  {float(np.abs(layer.W).max()):>10.4g}  {spectral:>10.4g}"
            )
        if self.has_output_activation:
            lines.append(
                f"note: the output layer is followed by {self._layers[-1].activation.name}; it is part of f "
                "(use without_output_activation() for the raw logits)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.widths))
        return f"Network({sizes}, activations={list(self.activations)})"

    def allclose(self, other: "Network", rtol: float = 0.0, atol: float = 0.0) -> bool:
        """Same layer structure and activations, weights equal within tolerance
        (exactly equal by default)."""
        if not isinstance(other, Network) or self.widths != other.widths or self.activations != other.activations:
            return False
        return all(
            np.allclose(a.W, b.W, rtol=rtol, atol=atol) and np.allclose(a.b, b.b, rtol=rtol, atol=atol)
            for a, b in zip(self._layers, other._layers)
        )
