"""The local interval-Jacobian upper bound (the Fast-Lip idea, with lipmip's
forward and backward bounds).

Forward bounds fix every stable ReLU's slope over the region; backward
bounds (``lipmip.bounds.backward``) then give entrywise bounds
``|C J(x)| <= B`` for every ``x`` in the region, and

* scalar ``c·f``: ``L <= ‖B‖_{α*}`` (B is one row),
* vector ``f``: ``‖J‖_{∞→∞} <= max row sum of B``, ``‖J‖_{1→1} <= max column
  sum``, ``‖J‖_{2→2} <= ‖B‖_2`` (a nonnegative matrix that dominates ``|J|``
  entrywise has the larger spectral norm).

Certified, local (it tightens as the region shrinks), and takes milliseconds.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.bounds import compute
from lipmip.bounds.backward import gradient_bounds
from lipmip.bounds.base import Bounds
from lipmip.domains import Region
from lipmip.network import Network
from lipmip.norms import operator_norm, vector_norm
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import free_coordinates

__all__ = ["interval_jacobian_upper_bound"]

_SAFETY = 1 + 1e-10


def interval_jacobian_upper_bound(
    net: Network, region: Region, query: Query, *, bounds: str | Bounds = "linear"
) -> LipschitzBound:
    """A certified local upper bound from interval bounds on the Jacobian;
    ``bounds`` picks the forward bound method (``interval``, ``linear``,
    ``lp``), or is forward bounds already computed for ``net`` (or for an
    equivalent network computing the same function) over ``region``."""
    start = time.perf_counter()
    forward = compute(net, region, bounds) if isinstance(bounds, str) else bounds
    C = np.eye(forward.net.output_dim) if query.c is None else query.c[None, :]
    grads = gradient_bounds(forward, C)
    B = grads.input_abs * free_coordinates(region)[None, :]
    if query.c is None:
        value = float(operator_norm(B, query.input_norm))
    else:
        value = float(vector_norm(B[0], query.dual_input_norm))
    upper = value * _SAFETY + (1e-300 if value > 0 else 0.0)
    return LipschitzBound(
        lower=None,
        upper=upper,
        method="interval",
        seconds=time.perf_counter() - start,
        query=query.to_dict(),
        region=region.to_dict(),
        details={
            "forward_bounds": forward.method,
            "unstable_relus": forward.num_unstable,
            "relus": forward.num_relus,
        },
    )
