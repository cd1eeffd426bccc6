"""The table of activation functions a :class:`~lipmip.Network` layer may use.

Each entry knows how to evaluate itself (numpy and JAX) and its derivative
almost everywhere. Piecewise-linear activations only: the exact methods rely
on it. New kinds (leaky or clipped ReLU) are added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lipmip.errors import UnknownActivationError

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "RELU", "IDENTITY"]


@dataclass(frozen=True)
class Activation:
    """One elementwise piecewise-linear activation.

    ``forward`` and ``slope`` act on numpy arrays; ``jax_forward`` on JAX
    arrays (JAX is imported only when it is called). ``slope(z)`` is the derivative at ``z`` where it exists; at a kink
    it returns one of the one-sided slopes (callers that need exactness test
    for kinks with ``kinks``).
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]
    jax_forward: Callable
    kinks: tuple[float, ...]

    def __reduce__(self) -> tuple:
        """Pickled by name (the table entry is rebuilt on loading), so that
        networks travel to worker processes."""
        return get_activation, (self.name,)


def _jax_relu(z):
    import jax

    return jax.nn.relu(z)  # derivative 0 at the kink, as Network.jacobian


RELU = Activation(
    name="relu",
    forward=lambda z: np.maximum(z, 0.0),
    slope=lambda z: (z > 0).astype(np.float64),
    jax_forward=_jax_relu,
    kinks=(0.0,),
)

IDENTITY = Activation(
    name="identity",
    forward=lambda z: z,
    slope=lambda z: np.ones_like(z, dtype=np.float64),
    jax_forward=lambda z: z,
    kinks=(),
)

ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (RELU, IDENTITY)}

_ALIASES = {"linear": "identity", "none": "identity", "affine": "identity"}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name (case-insensitive; ``linear``/``none``
    mean ``identity``). Raises :class:`UnknownActivationError` otherwise."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise UnknownActivationError(f"activation must be a name, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        known = ", ".join(sorted(ACTIVATIONS))
        raise UnknownActivationError(f"unknown activation {name!r} (known: {known})")
    return ACTIVATIONS[key]
