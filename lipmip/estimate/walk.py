"""Region walk: a beam search over activation regions on the true network.

A ReLU network's local Lipschitz value is constant on each activation region,
so a gradient method sees no slope on it. The walk moves between regions
instead: from a point ``x``, for each of the nearest ReLU hyperplanes
``z_j(x) = 0`` (computed in the affine piece of ``x``), it steps just across
the hyperplane (the ℓ2 projection of ``x`` onto it, plus a hair) and brings
the point back into the input region if it left it. A small beam of the best
points found (one per region) is expanded step by step, as long as the best
value keeps growing (measured on the digits network, a beam of 4 finds
slightly better regions than a greedy walk, at no extra cost). Everything is
numpy float64 on the true ReLU network; the values are for choosing points,
the bound itself is certified afterwards by :mod:`lipmip.witness`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipmip.domains import Ball, Box, Region
from lipmip.estimate.points import inner_box
from lipmip.network import Network
from lipmip.query import Query
from lipmip.witness import free_coordinates

__all__ = ["Walk", "region_walk", "project_into", "NEIGHBOURS", "MAX_STEPS", "BEAM", "PATIENCE"]

NEIGHBOURS = 64   # hyperplanes tried per step (the nearest ones)
MAX_STEPS = 100   # steps of the beam search at most
BEAM = 4          # points kept per step
PATIENCE = 2      # steps without a better value before stopping
_OVERSHOOT = 1e-6  # relative step past a hyperplane
_INSIDE = 1 - 1e-12


@dataclass(frozen=True, eq=False)
class Walk:
    """The final beam (best first), its local values, the values of the
    starting points, and the number of new points the beam took in all."""

    points: np.ndarray
    values: np.ndarray
    start_values: np.ndarray
    moves: int

    def summary(self) -> dict:
        return {"walks": int(self.points.shape[0]), "moves": self.moves,
                "best_start_value": float(self.start_values.max()) if self.start_values.size else None,
                "best_value": float(self.values.max()) if self.values.size else None}


def region_walk(net: Network, query: Query, region: Region, starts: np.ndarray, *,
                max_steps: int = MAX_STEPS, neighbours: int = NEIGHBOURS, beam: int = BEAM,
                patience: int = PATIENCE) -> Walk:
    """A beam search over activation regions from the rows of ``starts``
    (points of ``region``): each step takes the neighbours of the ``beam``
    best points found so far (one region of each local value), and keeps the
    ``beam`` best of old and new; it stops when the best value has not grown
    for ``patience`` steps, or the beam no longer changes. Keeping a few
    runners-up lets the walk cross regions that are not better themselves
    but lead to better ones. Returns the final beam, largest value first;
    every point lies in the region (the certifier re-checks it)."""
    from lipmip.estimate.sampling import local_values

    free = free_coordinates(region)
    points = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    values = local_values(net, query, points, free)
    start_values = values.copy()
    points, values = _best_distinct(points, values, beam)
    best, stale, moves = values[0], 0, 0
    for _ in range(max_steps):
        found = [_neighbour_points(net, region, x, free, neighbours) for x in points]
        candidates = np.vstack(found)
        if candidates.shape[0] == 0:
            break
        pool = np.vstack([points, candidates])
        pool_values = np.concatenate([values, local_values(net, query, candidates, free)])
        new_points, new_values = _best_distinct(pool, pool_values, beam)
        if np.array_equal(new_values, values):
            break
        moves += int(np.sum(~np.isin(new_values, values)))
        points, values = new_points, new_values
        stale = 0 if values[0] > best * (1 + 1e-12) else stale + 1
        best = max(best, values[0])
        if stale >= patience:
            break
    return Walk(points, values, start_values, moves)


def _best_distinct(points: np.ndarray, values: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` points with the largest values, one per value (points of
    one activation region share their value), largest first."""
    order = np.argsort(-values, kind="stable")
    keys = np.round(values[order] / max(float(np.abs(values).max()), 1e-300), 12)
    _, first = np.unique(keys, return_index=True)
    keep = order[np.sort(first)][:count]
    keep = keep[np.argsort(-values[keep], kind="stable")]
    return points[keep], values[keep]


def _neighbour_points(net: Network, region: Region, x: np.ndarray, free: np.ndarray, neighbours: int) -> np.ndarray:
    """Points just across the ``neighbours`` nearest ReLU hyperplanes of the
    affine piece of ``x``, brought back into the region."""
    rows, offsets = [], []
    A = None  # d h / d x on the free coordinates (None: the identity, for the input layer)
    h = x
    for layer in net.layers:
        z = layer.W @ h + layer.b
        grad = layer.W * free if A is None else layer.W @ A
        if layer.activation.kinks:
            rows.append(grad)
            offsets.append(z)
        A = layer.activation.slope(z)[:, None] * grad
        h = layer.activation.forward(z)
    if not rows:
        return np.empty((0, x.size))
    G = np.vstack(rows)
    z = np.concatenate(offsets)
    norms = np.linalg.norm(G, axis=1)
    usable = np.flatnonzero(norms > 0)
    if usable.size == 0:
        return np.empty((0, x.size))
    distance = np.abs(z[usable]) / norms[usable]
    nearest = usable[np.argsort(distance, kind="stable")[:neighbours]]
    g, zn, nn = G[nearest], z[nearest], norms[nearest]
    # x - z g / |g|^2 lands on the hyperplane; go a hair further, to its other side
    side = np.where(zn > 0, 1.0, -1.0)
    step = zn / nn**2 * (1 + _OVERSHOOT) + side * _OVERSHOOT * _scale(region) / nn
    candidates = x[None, :] - step[:, None] * g
    return project_into(region, candidates)


def _scale(region: Region) -> float:
    if isinstance(region, Ball):
        return region.radius
    assert isinstance(region, Box)
    return float(np.max(region.radii)) if region.dim else 0.0


def project_into(region: Region, points: np.ndarray) -> np.ndarray:
    """Each row of ``points`` moved into ``region`` (clipping for a box or
    ℓ∞ ball, radial shrinking for an ℓ2 ball, Euclidean projection for an ℓ1
    ball); rows already inside stay as they are."""
    points = np.atleast_2d(points)
    if isinstance(region, Box) or region.p == math.inf:
        box = inner_box(region)
        return np.clip(points, box.lo, box.hi)
    c, r = region.center, region.radius
    offset = points - c
    if region.p == 2.0:
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        shrink = np.where(length > r, r * _INSIDE / np.maximum(length, 1e-300), 1.0)
        return c + offset * shrink
    return c + np.array([_project_l1(row, r * _INSIDE) for row in offset])


def _project_l1(v: np.ndarray, r: float) -> np.ndarray:
    """The Euclidean projection of ``v`` onto the ℓ1 ball of radius ``r``
    (soft thresholding at the level that makes the ℓ1 norm ``r``)."""
    a = np.abs(v)
    if a.sum() <= r:
        return v
    u = np.sort(a)[::-1]
    cumulative = np.cumsum(u) - r
    k = np.arange(1, u.size + 1)
    rho = int(np.flatnonzero(u - cumulative / k > 0)[-1])
    theta = cumulative[rho] / (rho + 1)
    return np.sign(v) * np.maximum(a - theta, 0.0)
