"""Where to look for large gradients: point sets in an input region.

The local Lipschitz value of a ReLU network is piecewise constant, and its
maximum over a box or ball is often reached in a region that touches the
boundary (a corner of a box, a vertex of an ℓ1 ball, the sphere of an ℓ2
ball). :func:`search_points` mixes uniform points with such boundary points
and points near the centre. Every point it returns lies in the region.
"""

from __future__ import annotations

import math

import numpy as np

from lipmip.domains import Ball, Box, Region
from lipmip.witness import free_coordinates

__all__ = ["search_points", "inner_box", "MIX"]

# share of the points drawn by each scheme (the centre itself is always included)
MIX = {"uniform": 0.4, "corners": 0.3, "faces": 0.2, "near_centre": 0.1}
_INSIDE = 1 - 1e-12  # boundary points are pulled this far toward the centre, so rounding keeps them inside


def search_points(region: Region, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n + 1`` points of ``region`` (float64, shape ``(n + 1, dim)``): the
    centre, then uniform points, corners (box and ℓ∞ ball: random vertices;
    ℓ1 ball: vertices ``c ± r e_i``; ℓ2 ball: points on the sphere, half of
    them along sign vectors), points on faces and points near the centre, in
    the proportions of :data:`MIX`. Fixed box coordinates stay fixed."""
    counts = _split(n)
    parts = [region.center[None, :], region.sample(counts["uniform"], rng)]
    if isinstance(region, Box) or (isinstance(region, Ball) and region.p == math.inf):
        box = inner_box(region)
        parts += [_box_corners(box, counts["corners"], rng), _box_faces(box, counts["faces"], rng)]
    elif region.p == 1.0:
        parts += [_l1_vertices(region, counts["corners"], rng), _l1_sphere(region, counts["faces"], rng)]
    else:
        parts += [_l2_signs(region, counts["corners"], rng), _l2_sphere(region, counts["faces"], rng)]
    parts.append(_near_centre(region, counts["near_centre"], rng))
    points = np.vstack(parts)
    c = region.center
    return c + (points - c) * free_coordinates(region)


def inner_box(region: Box | Ball) -> Box:
    """A box or ℓ∞ ball as a box whose every point passes ``region.contains``
    (an ℓ∞ ball's faces pulled in by a relative hair, against rounding)."""
    if isinstance(region, Box):
        return region
    return Box(region.center - region.radius * _INSIDE, region.center + region.radius * _INSIDE)


def _split(n: int) -> dict[str, int]:
    counts = {k: int(n * share) for k, share in MIX.items()}
    counts["uniform"] += n - sum(counts.values())
    return counts


def _box_corners(box: Box, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random((n, box.dim)) < 0.5, box.lo, box.hi)


def _box_faces(box: Box, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points with one random coordinate (a quarter of them: a random
    half of the coordinates) moved to a bound."""
    x = box.sample(n, rng)
    at_bound = np.zeros((n, box.dim), dtype=bool)
    at_bound[np.arange(n), rng.integers(0, box.dim, size=n)] = True
    many = rng.random(n) < 0.25
    at_bound[many] |= rng.random((int(many.sum()), box.dim)) < 0.5
    return np.where(at_bound, np.where(rng.random((n, box.dim)) < 0.5, box.lo, box.hi), x)


def _l1_vertices(ball: Ball, n: int, rng: np.random.Generator) -> np.ndarray:
    d = ball.dim
    picks = np.arange(2 * d) if n >= 2 * d else rng.choice(2 * d, size=n, replace=False)
    picks = np.resize(picks, n)
    x = np.zeros((n, d))
    x[np.arange(n), picks % d] = np.where(picks < d, 1.0, -1.0)
    return ball.center + ball.radius * _INSIDE * x


def _l1_sphere(ball: Ball, n: int, rng: np.random.Generator) -> np.ndarray:
    e = rng.exponential(size=(n, ball.dim))
    u = e / e.sum(axis=1, keepdims=True) * rng.choice([-1.0, 1.0], size=(n, ball.dim))
    return ball.center + ball.radius * _INSIDE * u


def _l2_sphere(ball: Ball, n: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, ball.dim))
    g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)
    return ball.center + ball.radius * _INSIDE * g


def _l2_signs(ball: Ball, n: int, rng: np.random.Generator) -> np.ndarray:
    s = rng.choice([-1.0, 1.0], size=(n, ball.dim)) / math.sqrt(ball.dim)
    return ball.center + ball.radius * _INSIDE * s


def _near_centre(region: Region, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points of the region shrunk toward its centre by factors in [0.001, 0.1]."""
    c = region.center
    shrink = 10.0 ** rng.uniform(-3, -1, size=(n, 1))
    return c + shrink * (region.sample(n, rng) - c)
