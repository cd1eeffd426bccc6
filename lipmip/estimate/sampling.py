"""Certified lower bounds by sampling: the largest verified difference quotient.

Draws points in the region (:func:`lipmip.estimate.points.search_points`:
uniform, corners, faces, near the centre), computes the local Lipschitz value
(the query's gradient dual norm, or Jacobian operator norm) at each, and
certifies the most promising ones with
:func:`lipmip.witness.witness_from_point`. The ranking runs in JAX (jit +
vmap, float32 by default) when the work is large enough to repay compiling,
in numpy float64 otherwise; either way the returned ``lower`` is a verified
float64 difference quotient, never a raw sampled gradient norm.
"""

from __future__ import annotations

import time

import numpy as np

from lipmip.domains import Region
from lipmip.errors import InvalidQueryError
from lipmip.estimate.points import search_points
from lipmip.network import Network
from lipmip.options import check_count
from lipmip.query import Query
from lipmip.result import LipschitzBound, Witness
from lipmip.witness import best_witness, free_coordinates, recertified, witness_from_point

__all__ = ["sample_lower_bound", "local_values", "ranked_values", "certify_points", "BACKENDS",
           "JAX_MIN_WORK"]

BACKENDS = ("auto", "jax", "numpy")
# points × parameters × (outputs, for a Jacobian) above which "auto" ranks points in JAX: below it, compiling
# (0.3-1 s) costs more than JAX saves over numpy (about 2x for gradients, 3x for Jacobians on mnist_relu_3_100)
JAX_MIN_WORK = 5e9


def local_values(net: Network, query: Query, points: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """The query's local Lipschitz value at each point (rows of ``points``),
    in numpy float64, using the network's a.e. Jacobian; coordinates outside
    ``free`` are ignored."""
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


def ranked_values(net: Network, query: Query, points: np.ndarray, free: np.ndarray, backend: str = "auto",
                  dtype: str = "float32") -> tuple[np.ndarray, str]:
    """The local value at each point, for ranking (not certified), and the
    backend that computed it (``"jax"`` in ``dtype``, or ``"numpy"`` in float64)."""
    if backend not in BACKENDS:
        raise InvalidQueryError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        rows = 1 if query.c is not None else net.output_dim
        backend = "jax" if points.shape[0] * net.num_parameters * rows >= JAX_MIN_WORK else "numpy"
    if backend == "numpy":
        return local_values(net, query, points, free), "numpy"
    from lipmip.estimate.jax_values import jax_local_values, jax_query, precision

    with precision(dtype):
        return jax_local_values(jax_query(net, query, free, dtype), points), f"jax-{dtype}"


def certify_points(net: Network, query: Query, region: Region, points: np.ndarray) -> Witness | None:
    """The best certified witness from ``points`` (rows), tried in order of
    their float64 local value, largest first; stops once the best certified
    value nearly reaches the next point's local value (a witness from a point
    rarely beats the point's own region). Candidates are compared with the
    plain float64 certificate; the exact rational one (which recovers what
    rounding cost and takes milliseconds to a second on large networks) runs
    only where rounding ate more than 1e-6 of a candidate's value, and on
    the winner (:func:`lipmip.witness.recertified`)."""
    points = np.atleast_2d(points)
    if points.shape[0] == 0:
        return None
    values = local_values(net, query, points, free_coordinates(region))
    best: Witness | None = None
    for i in np.argsort(-values, kind="stable"):
        if best is not None and best.value >= values[i] * (1 - 1e-6):
            break
        found = witness_from_point(net, query, region, points[i], exact=False)
        if found is None or found.value < values[i] * (1 - 1e-6):
            # rounding ate a visible share (a pair squeezed against the boundary, e.g. at an l1 vertex)
            found = best_witness(found, witness_from_point(net, query, region, points[i]))
        best = best_witness(best, found)
    return best_witness(best, recertified(net, query, region, best))


def sample_lower_bound(
    net: Network,
    region: Region,
    query: Query,
    *,
    samples: int = 2000,
    candidates: int = 8,
    seed: int = 0,
    backend: str = "auto",
    dtype: str = "float32",
    walk: bool = False,
) -> LipschitzBound:
    """A certified lower bound from ``samples`` points of the region plus its centre.

    The ``candidates`` points with the largest local values are turned into
    certified witness pairs; the best certified quotient is ``lower``. With
    ``walk=True`` the best points then climb to neighbouring activation
    regions while the local value grows (:func:`lipmip.estimate.walk.region_walk`).
    ``backend``: ``"jax"``, ``"numpy"`` or ``"auto"`` (JAX for large work);
    ``dtype``: the JAX ranking precision. Deterministic for a given ``seed``.
    """
    check_count(samples, "samples", 0)
    check_count(candidates, "candidates", 1)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    points = search_points(region, samples, rng)
    free = free_coordinates(region)
    ranking_start = time.perf_counter()
    values, used = ranked_values(net, query, points, free, backend, dtype)
    ranking_seconds = time.perf_counter() - ranking_start
    order = np.argsort(-values, kind="stable")[:candidates]
    chosen = points[order]
    details = {"samples": int(points.shape[0]), "backend": used, "ranking_seconds": ranking_seconds,
               "best_sampled_local_value": float(values.max())}
    if walk:
        from lipmip.estimate.walk import region_walk

        walked = region_walk(net, query, region, chosen)
        chosen = np.vstack([walked.points, chosen])
        details["walk"] = walked.summary()
    best = certify_points(net, query, region, chosen)
    return LipschitzBound(
        lower=0.0 if best is None else best.value,
        upper=None,
        method="sample",
        seconds=time.perf_counter() - start,
        witness=best,
        query=query.to_dict(),
        region=region.to_dict(),
        details=details,
    )
