"""Region walk: hill-climbing over activation regions on the true network.

A ReLU network's local Lipschitz value is constant on each activation region,
so a gradient method sees no slope on it. The walk moves between regions
instead: from a point ``x``, for each of the nearest ReLU hyperplanes
``z_j(x) = 0`` (computed in the affine piece of ``x``), it steps just across
the hyperplane (the ℓ2 projection of ``x`` onto it, plus a hair), brings the
point back into the input region if it left it, and moves to the candidate
with the largest local value, as long as that value grows. Everything is
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

__all__ = ["Walk", "region_walk", "project_into", "NEIGHBOURS", "MAX_STEPS"]

NEIGHBOURS = 64   # hyperplanes tried per step (the nearest ones)
MAX_STEPS = 200   # moves per walk at most
_OVERSHOOT = 1e-6  # relative step past a hyperplane
_INSIDE = 1 - 1e-12


@dataclass(frozen=True, eq=False)
class Walk:
    """End points of the walks (best first), their local values, the values
    they started from, and the number of moves made in all."""

    points: np.ndarray
    values: np.ndarray
    start_values: np.ndarray
    moves: int

    def summary(self) -> dict:
        return {"walks": int(self.points.shape[0]), "moves": self.moves,
                "best_start_value": float(self.start_values.max()) if self.start_values.size else None,
                "best_value": float(self.values.max()) if self.values.size else None}


def region_walk(net: Network, query: Query, region: Region, starts: np.ndarray, *,
                max_steps: int = MAX_STEPS, neighbours: int = NEIGHBOURS) -> Walk:
    """Walk from each row of ``starts`` (points of ``region``) to neighbouring
    activation regions while the local value grows; return the end points,
    sorted by local value (largest first). Every returned point lies in the
    region (up to the containment checks the certifier repeats)."""
    from lipmip.estimate.sampling import local_values

    free = free_coordinates(region)
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    ends, values, start_values, moves = [], [], [], 0
    for x in starts:
        v = float(local_values(net, query, x[None, :], free)[0])
        start_values.append(v)
        for _ in range(max_steps):
            candidates = _neighbour_points(net, region, x, free, neighbours)
            if candidates.shape[0] == 0:
                break
            found = local_values(net, query, candidates, free)
            best = int(np.argmax(found))
            if not found[best] > v * (1 + 1e-12):
                break
            x, v = candidates[best], float(found[best])
            moves += 1
        ends.append(x)
        values.append(v)
    order = np.argsort(-np.asarray(values), kind="stable")
    return Walk(np.asarray(ends)[order], np.asarray(values)[order], np.asarray(start_values), moves)


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
