"""Pure JAX functions of a ReLU MLP given as a list of ``(W, b)`` pairs.

The building blocks of lipmip's JAX estimators (:mod:`lipmip.estimate`) and
of the training-time functions in :mod:`lipmip.jax`. ``W`` has shape
``(out, in)`` as everywhere in lipmip. ``activations`` is a static tuple of
``"relu"`` / ``"identity"`` names, one per layer; without it, ReLU follows
every layer but the last. Every function here is jittable, vmappable and
differentiable; none certifies anything (certified numbers are recomputed in
numpy float64 by the callers).

``temperature`` replaces each ReLU by the softplus ``τ log(1 + exp(z / τ))``,
a smooth copy of the network that tends to it as ``τ → 0`` (used by the
smoothed gradient ascent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "Params",
    "default_activations",
    "network_params",
    "forward",
    "query_gradient",
    "jacobian",
    "dual_norm_value",
    "operator_norm_value",
    "local_value",
]

Params = Sequence[tuple[Any, Any]]


def default_activations(num_layers: int) -> tuple[str, ...]:
    """ReLU after every layer but the last, which is the identity (logits)."""
    return ("relu",) * (num_layers - 1) + ("identity",)


def network_params(net: Any, dtype: Any = None) -> tuple[list[tuple[jax.Array, jax.Array]], tuple[str, ...]]:
    """A :class:`~lipmip.Network`'s ``(W, b)`` pairs as JAX arrays of ``dtype``
    (default: float32, or float64 when JAX runs with x64), and its
    activation names."""
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    params = [(jnp.asarray(layer.W, dtype=dtype), jnp.asarray(layer.b, dtype=dtype)) for layer in net.layers]
    return params, tuple(net.activations)


def _activate(z: jax.Array, name: str, temperature: Any) -> jax.Array:
    if name == "identity":
        return z
    if temperature is None:
        return jax.nn.relu(z)  # derivative 0 at the kink, as lipmip.Network.jacobian
    return temperature * jax.nn.softplus(z / temperature)


def forward(params: Params, x: jax.Array, activations: Sequence[str] | None = None,
            temperature: Any = None) -> jax.Array:
    """``f(x)`` for one input vector ``x`` (use ``jax.vmap`` for batches)."""
    activations = default_activations(len(params)) if activations is None else activations
    h = x
    for (W, b), name in zip(params, activations):
        h = _activate(W @ h + b, name, temperature)
    return h


def query_gradient(params: Params, c: jax.Array, x: jax.Array, activations: Sequence[str] | None = None,
                   temperature: Any = None) -> jax.Array:
    """``∇(c · f)(x)`` by one reverse pass."""
    return jax.grad(lambda point: c @ forward(params, point, activations, temperature))(x)


def jacobian(params: Params, x: jax.Array, activations: Sequence[str] | None = None,
             temperature: Any = None) -> jax.Array:
    """``df/dx`` at ``x``, shape ``(outputs, inputs)``: reverse mode when the
    network has fewer outputs than inputs, forward mode otherwise."""
    outputs = params[-1][0].shape[0]
    inputs = params[0][0].shape[1]
    mode = jax.jacrev if outputs <= inputs else jax.jacfwd
    return mode(lambda point: forward(params, point, activations, temperature))(x)


def dual_norm_value(g: jax.Array, input_norm: float) -> jax.Array:
    """``‖g‖_{α*}``: the ℓ1 norm for α = ∞, ℓ∞ for α = 1, ℓ2 for α = 2."""
    if input_norm == math.inf:
        return jnp.sum(jnp.abs(g))
    if input_norm == 1.0:
        return jnp.max(jnp.abs(g))
    squares = jnp.sum(g * g)
    positive = squares > 0  # keeps the derivative finite (0) at g = 0, where sqrt's is not
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def operator_norm_value(J: jax.Array, norm: float) -> jax.Array:
    """``‖J‖_{α→α}``: max row sum (∞), max column sum (1), largest singular value (2)."""
    if norm == math.inf:
        return jnp.max(jnp.sum(jnp.abs(J), axis=1))
    if norm == 1.0:
        return jnp.max(jnp.sum(jnp.abs(J), axis=0))
    return jnp.linalg.norm(J, ord=2)


def local_value(params: Params, x: jax.Array, *, c: jax.Array | None, input_norm: float,
                activations: Sequence[str] | None = None, free: jax.Array | None = None,
                temperature: Any = None) -> jax.Array:
    """The query's local Lipschitz value at ``x``: ``‖∇(c·f)(x)‖_{α*}`` for a
    scalar query (``c`` given), else ``‖J(x)‖_{α→α}``. Input coordinates where
    ``free`` is 0 are ignored (fixed box coordinates)."""
    if c is not None:
        g = query_gradient(params, c, x, activations, temperature)
        return dual_norm_value(g if free is None else g * free, input_norm)
    J = jacobian(params, x, activations, temperature)
    return operator_norm_value(J if free is None else J * free[None, :], input_norm)
