"""Local Lipschitz values of many points at once, in JAX (jit + vmap).

The ranking step of the sampled and ascent lower bounds: which points have
the largest gradient dual norm (or Jacobian operator norm). Nothing here is
certified; the chosen points are re-evaluated and certified in numpy float64
by :mod:`lipmip.witness`. Compiled functions are cached by JAX per network
shape, query kind and dtype, so repeated calls on one network compile once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from lipmip.errors import InvalidQueryError
from lipmip.network import Network
from lipmip.query import Query

__all__ = ["JaxQuery", "jax_query", "jax_local_values", "precision", "DTYPES"]

DTYPES = ("float32", "float64")
_CHUNK_FLOATS = 2**22  # points per chunk are chosen so a chunk's Jacobians stay below this many floats (32 MB)


@dataclass(frozen=True, eq=False)
class JaxQuery:
    """A network and query as JAX arrays: the arguments of the compiled kernels."""

    params: list
    activations: tuple[str, ...]
    c: Any
    free: Any
    input_norm: float
    dtype: str


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise InvalidQueryError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def precision(dtype: str) -> contextlib.AbstractContextManager:
    """The JAX setting under which arrays of ``dtype`` exist: float64 needs
    JAX's x64 mode, switched on for the duration only."""
    import jax

    return jax.enable_x64(True) if check_dtype(dtype) == "float64" else contextlib.nullcontext()


def jax_query(net: Network, query: Query, free: np.ndarray, dtype: str) -> JaxQuery:
    """``net``, ``query`` and the free-coordinate mask as JAX arrays of ``dtype``
    (call inside :func:`precision`)."""
    import jax.numpy as jnp

    from lipmip.jax.core import network_params

    jdtype = jnp.dtype(check_dtype(dtype))
    params, activations = network_params(net, jdtype)
    c = None if query.c is None else jnp.asarray(query.c, dtype=jdtype)
    return JaxQuery(params, activations, c, jnp.asarray(free, dtype=jdtype), float(query.input_norm), dtype)


@lru_cache(maxsize=None)
def _batched_kernel(activations: tuple[str, ...], input_norm: float, scalar: bool):
    import jax

    from lipmip.jax.core import local_value

    def one(params, c, free, x):
        return local_value(params, x, c=c if scalar else None, input_norm=input_norm, activations=activations, free=free)

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0)))


def jax_local_values(jq: JaxQuery, points: np.ndarray) -> np.ndarray:
    """The local value at each row of ``points`` (call inside :func:`precision`),
    as a float64 numpy array (computed in ``jq.dtype``)."""
    import jax.numpy as jnp

    kernel = _batched_kernel(jq.activations, jq.input_norm, jq.c is not None)
    rows = jq.params[-1][0].shape[0] if jq.c is None else 1
    chunk = max(1, _CHUNK_FLOATS // (rows * points.shape[1]))
    n = points.shape[0]
    points = np.asarray(points, dtype=jq.dtype)
    if n <= chunk:
        return np.asarray(kernel(jq.params, jq.c, jq.free, jnp.asarray(points)), dtype=np.float64)
    out = np.empty(n)
    for start in range(0, n, chunk):
        block = points[start:start + chunk]
        size = block.shape[0]
        if size < chunk:  # pad the last chunk, so that every call has the one compiled shape
            block = np.concatenate([block, np.broadcast_to(block[-1], (chunk - size, block.shape[1]))])
        values = kernel(jq.params, jq.c, jq.free, jnp.asarray(block))
        out[start:start + size] = np.asarray(values, dtype=np.float64)[:size]
    return out
