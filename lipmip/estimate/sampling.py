"""Certified lower bounds by sampling: the largest verified difference quotient.

Draws points in the region, computes the local Lipschitz value (the query's
gradient dual norm, or Jacobian operator norm) at each, and certifies the most
promising ones with :func:`lipmip.witness.witness_from_point`. The returned
``lower`` is always a verified difference quotient, never the raw sampled
gradient norm.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.domains import Region
from lipmip.errors import InvalidQueryError
from lipmip.network import Network
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import best_witness, free_coordinates, witness_from_point

__all__ = ["sample_lower_bound", "local_values"]


def local_values(net: Network, query: Query, points: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """The query's local Lipschitz value at each point (rows of ``points``),
    using the network's a.e. Jacobian; coordinates outside ``free`` are ignored."""
    points = np.atleast_2d(points)
    free = np.ones(net.input_dim, dtype=bool) if free is None else free
    if query.c is not None:
        # reverse-mode: one backward pass of c per point, no full Jacobian
        slopes = []
        h = points
        for layer in net.layers:
            z = h @ layer.W.T + layer.b
            slopes.append(layer.activation.slope(z))
            h = layer.activation.forward(z)
        g = np.broadcast_to(query.c, (points.shape[0], net.output_dim))
        for layer, s in zip(reversed(net.layers), reversed(slopes)):
            g = (g * s) @ layer.W
        return np.linalg.norm(g * free, ord=query.dual_input_norm, axis=1)
    out = np.empty(points.shape[0])
    chunk = max(1, int(2e7 // (net.output_dim * net.input_dim)))
    for start in range(0, points.shape[0], chunk):
        J = net.jacobian(points[start : start + chunk]) * free
        out[start : start + chunk] = query.local_value(J)
    return out


def sample_lower_bound(
    net: Network,
    region: Region,
    query: Query,
    *,
    samples: int = 2000,
    candidates: int = 8,
    seed: int = 0,
) -> LipschitzBound:
    """A certified lower bound from ``samples`` uniform points plus the centre.

    The ``candidates`` points with the largest local values are turned into
    certified witness pairs; the best certified quotient is ``lower``.
    Deterministic for a given ``seed``.
    """
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
        raise InvalidQueryError(f"samples must be an integer >= 0, got {samples!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise InvalidQueryError(f"candidates must be an integer >= 1, got {candidates!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    points = np.vstack([region.center[None, :], region.sample(samples, rng)])
    free = free_coordinates(region)
    values = local_values(net, query, points, free)
    order = np.argsort(-values)[:candidates]
    best = best_witness(*(witness_from_point(net, query, region, points[i]) for i in order))
    return LipschitzBound(
        lower=0.0 if best is None else best.value,
        upper=None,
        method="sample",
        seconds=time.perf_counter() - start,
        witness=best,
        query=query.to_dict(),
        region=region.to_dict(),
        details={"samples": int(points.shape[0]), "best_sampled_local_value": float(values.max())},
    )
