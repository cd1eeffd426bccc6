"""Adversarial examples: points near ``x`` where the network predicts another class.

:func:`find_adversarial` runs a projected gradient attack (PGD) on the
margin ``max_{j != y} f_j - f_y`` from ``x`` and from random starts, then
dense sampling of the ball (uniform points, and corners for ℓ∞), and keeps
a point only once it is *verified*: its distance to ``x`` (rounded up) is
within the radius, and a float64 forward pass with a rigorous error bound
(:func:`lipmip.witness.forward_with_error`) shows some ``f_j > f_y`` in exact
arithmetic. A returned :class:`Adversarial` therefore proves that no radius
at or above its ``distance`` can be certified. Finding none proves nothing.
Deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipmip.domains import Ball
from lipmip.network import Network
from lipmip.norms import parse_norm, vector_norm
from lipmip.rounding import UNIT_ROUNDOFF
from lipmip.witness import forward_with_error

__all__ = ["Adversarial", "find_adversarial", "closer_adversarial", "pgd_candidates", "sample_candidates",
           "verify_adversarial",
           "predictions", "gradients", "DISTANCE_SAFETY"]

DISTANCE_SAFETY = 1 + 1e-9  # a computed distance times this is at least the exact one (inputs up to ~1e6 coordinates)
_INSIDE = 1 - 1e-6          # candidates are drawn in the ball shrunk by this, so rounding keeps them inside
_VERIFY = 8                 # candidates verified rigorously per batch (the most adversarial first)


@dataclass(frozen=True, eq=False)
class Adversarial:
    """A verified adversarial point: ``‖point - x‖ <= distance`` in exact
    arithmetic and the network's exact output at ``point`` has
    ``f[prediction] > f[y]`` (so its argmax is not ``y``)."""

    point: np.ndarray
    distance: float
    prediction: int


def predictions(net: Network, points: np.ndarray) -> np.ndarray:
    """The float64 argmax of the network's outputs at each row of ``points``
    (ties broken to the smallest index)."""
    return np.argmax(net(np.atleast_2d(points)), axis=1)


def _forward_with_slopes(net: Network, Z: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    slopes = []
    h = Z
    for layer in net.layers:
        z = h @ layer.W.T + layer.b
        slopes.append(layer.activation.slope(z))
        h = layer.activation.forward(z)
    return h, slopes


def _input_gradients(net: Network, slopes: list[np.ndarray], C: np.ndarray) -> np.ndarray:
    """Rows ``C_i J(z_i)``: the gradient of ``C_i · f`` at each point."""
    g = C
    for layer, s in zip(reversed(net.layers), reversed(slopes)):
        g = (g * s) @ layer.W
    return g


def _project(delta: np.ndarray, radius: float, p: float) -> np.ndarray:
    """Rows of ``delta`` projected onto the ``p``-ball of ``radius``."""
    if p == math.inf:
        return np.clip(delta, -radius, radius)
    if p == 2.0:
        norms = np.linalg.norm(delta, axis=1, keepdims=True)
        return delta * np.minimum(1.0, radius / np.maximum(norms, 1e-300))
    out = delta.copy()
    for i, row in enumerate(delta):  # Euclidean projection onto the l1 ball (sort and threshold)
        a = np.abs(row)
        if a.sum() <= radius:
            continue
        u = np.sort(a)[::-1]
        cumulative = np.cumsum(u)
        k = np.arange(1, u.size + 1)
        rho = int(np.flatnonzero(u > (cumulative - radius) / k)[-1])
        theta = (cumulative[rho] - radius) / (rho + 1)
        out[i] = np.sign(row) * np.maximum(a - theta, 0.0)
    return out


def _ascent_step(g: np.ndarray, p: float) -> np.ndarray:
    """A direction of unit ``p``-norm that increases the loss fastest (per row)."""
    if p == math.inf:
        return np.sign(g)
    if p == 2.0:
        return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)
    k = max(1, g.shape[1] // 50)  # l1: spread over the few coordinates of largest gradient
    top = np.argpartition(-np.abs(g), k - 1, axis=1)[:, :k]
    step = np.zeros_like(g)
    rows = np.arange(g.shape[0])[:, None]
    step[rows, top] = np.sign(g[rows, top]) / k
    return step


def gradients(net: Network, x: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Rows ``C_i J(x)`` (float64, not certified): the gradients of the
    functionals ``C_i · f`` at the single point ``x``, one backward pass."""
    _, slopes = _forward_with_slopes(net, np.asarray(x, dtype=np.float64).reshape(1, -1))
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    return _input_gradients(net, [np.broadcast_to(s, (C.shape[0], s.shape[1])) for s in slopes], C)


def _margin_loss(outputs: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """``max_{j != label} f_j - f_label`` per row and the maximising ``j``."""
    others = outputs.copy()
    others[:, label] = -np.inf
    best = np.argmax(others, axis=1)
    return others[np.arange(outputs.shape[0]), best] - outputs[:, label], best


def pgd_candidates(net: Network, x: np.ndarray, label: int, radius: float, p: float, *, steps: int = 50,
                   restarts: int = 4, rng: np.random.Generator) -> np.ndarray:
    """Points of the ball found by projected gradient ascent on the margin
    loss: ``restarts`` runs (the first from ``x``, the others from uniform
    random points), ``steps`` steps each; every iterate with a positive loss
    is kept (not verified here), and the final iterates always are."""
    if restarts < 1 or steps < 1:
        return np.empty((0, x.size))
    radius = radius * _INSIDE
    ball = Ball(x, radius, p)
    starts = np.vstack([x[None, :], ball.sample(restarts - 1, rng)]) if restarts > 1 else x[None, :]
    delta = _project(starts - x, radius, p)
    step_size = 2.5 * radius / steps
    found = []
    for _ in range(steps):
        outputs, slopes = _forward_with_slopes(net, x + delta)
        loss, best = _margin_loss(outputs, label)
        if np.any(loss > 0):
            found.append(x + delta[loss > 0])
        C = np.zeros_like(outputs)
        rows = np.arange(outputs.shape[0])
        C[rows, best] = 1.0
        C[:, label] -= 1.0
        g = _input_gradients(net, slopes, C)
        delta = _project(delta + step_size * _ascent_step(g, p), radius, p)
    found.append(x + delta)
    return np.vstack(found)


def sample_candidates(x: np.ndarray, radius: float, p: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` points of the ball: uniform ones and, for ℓ∞, as many
    random corners (where a piecewise-linear margin is often smallest)."""
    if samples < 1:
        return np.empty((0, x.size))
    radius = radius * _INSIDE
    ball = Ball(x, radius, p)
    points = [ball.sample(samples, rng)]
    if p == math.inf:
        points.append(x + radius * rng.choice([-1.0, 1.0], size=(samples, x.size)))
    return np.vstack(points)


def verify_adversarial(net: Network, x: np.ndarray, label: int, radius: float, p: float,
                       candidates: np.ndarray) -> Adversarial | None:
    """The verified adversarial point among ``candidates`` closest to ``x``
    (checked in order of decreasing float64 loss, at most a few), or None."""
    if candidates.shape[0] == 0:
        return None
    loss, _ = _margin_loss(net(candidates), label)
    order = [i for i in np.argsort(-loss) if loss[i] > 0][:_VERIFY]
    best: Adversarial | None = None
    for i in order:
        z = candidates[i]
        distance = float(vector_norm(z - x, p)) * DISTANCE_SAFETY
        if not distance <= radius:
            continue
        out, err = forward_with_error(net, z)
        gap = out - out[label]
        # exact f_j - f_label >= gap_j - (err_j + err_label) - rounding of gap_j: claim it only when that is > 0
        pad = (err + err[label]) * (1 + 8 * UNIT_ROUNDOFF) + 4 * UNIT_ROUNDOFF * (np.abs(out) + abs(out[label])) + 1e-300
        winners = np.flatnonzero(gap - pad > 0)
        winners = winners[winners != label]
        if winners.size and (best is None or distance < best.distance):
            winner = int(winners[np.argmax(gap[winners])])
            best = Adversarial(point=z.copy(), distance=distance, prediction=winner)
    return best


def closer_adversarial(net: Network, x: np.ndarray, label: int, p: float, found: Adversarial,
                       steps: int = 20) -> Adversarial:
    """The verified adversarial point closest to ``x`` on the segment from
    ``x`` to ``found.point`` that a bisection of ``steps`` steps meets
    (``found`` itself when it meets none closer)."""
    best = found
    lo, hi = 0.0, 1.0  # x + t (point - x): t = hi is adversarial, t = lo is not known to be
    direction = found.point - x
    for _ in range(steps):
        t = 0.5 * (lo + hi)
        closer = verify_adversarial(net, x, label, best.distance, p, (x + t * direction)[None, :])
        if closer is not None:
            best, hi = closer, t
        else:
            lo = t
    return best


def find_adversarial(net: Network, x: np.ndarray, label: int, radius: float, p: float | str = math.inf, *,
                     steps: int = 50, restarts: int = 4, samples: int = 500, seed: int | list[int] = 0,
                     shrink: bool = True) -> Adversarial | None:
    """A verified point within ``radius`` of ``x`` (in the ``p`` norm) whose
    exact prediction is not ``label``: PGD first, then dense sampling; None
    when neither finds one. ``shrink``: then move it towards ``x`` as far as
    it stays verified (:func:`closer_adversarial`), so its distance is a
    tighter limit on the robust radius."""
    p = parse_norm(p)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    found = verify_adversarial(net, x, label, radius, p,
                               pgd_candidates(net, x, label, radius, p, steps=steps, restarts=restarts, rng=rng))
    if found is None:
        found = verify_adversarial(net, x, label, radius, p, sample_candidates(x, radius, p, samples, rng))
    if found is not None and shrink:
        found = closer_adversarial(net, x, label, p, found)
    return found
