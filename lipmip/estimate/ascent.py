"""Certified lower bounds by smoothed gradient ascent, then a region walk.

The local Lipschitz value ``v(x)`` of a ReLU network (gradient dual norm of
``c·f``, or Jacobian operator norm) is piecewise constant, so its gradient
is zero almost everywhere. The ascent climbs a smoothed copy instead: every
ReLU replaced by the softplus ``τ log(1 + exp(z / τ))``, whose ``v_τ`` has
an informative gradient, with the temperature ``τ`` annealed geometrically
toward 0 (toward the ReLU network) over the steps. Many restarts run in
parallel (``jax.vmap`` inside one ``jax.lax.scan``, compiled once per network
shape); each step is projected steepest ascent in the region's geometry
(sign steps in a box or ℓ∞ ball, normalised steps in ℓ2 / ℓ1 balls, then a
projection back into the region), and each restart remembers the point where
the **true** ReLU network's ``v`` was largest.

Those points, with the best sampled ones, are re-ranked on the true network
in numpy float64, walked to better neighbouring activation regions
(:mod:`lipmip.estimate.walk`), and certified as difference quotients of two
points of the region (:func:`lipmip.witness.witness_from_point`). Only that
certified number is reported as ``lower``.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

import numpy as np

from lipmip.domains import Ball, Box, Region
from lipmip.estimate.points import search_points
from lipmip.estimate.sampling import certify_points, local_values, ranked_values
from lipmip.estimate.walk import project_into, region_walk
from lipmip.network import Network
from lipmip.options import check_count
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import free_coordinates

__all__ = ["ascent_lower_bound", "initial_temperature"]

_FINAL_TEMPERATURE = 1e-4  # final τ as a share of the initial one
_HOTTEST = 4.0  # the hottest restarts start this many times softer than the base temperature
_FIRST_STEP, _LAST_STEP = 0.1, 0.02  # step length as a share of the region's size, annealed geometrically


def initial_temperature(net: Network, points: np.ndarray) -> float:
    """Twice the median spread (standard deviation over ``points``) of the
    ReLU pre-activations: a softplus this soft blurs the kinks the points
    cross (a factor measured on the digits network: 0.5 and 30 both found
    worse maxima; the restarts use 1 to 4 times this). Positive; 1.0 when
    nothing varies."""
    spreads = [z.std(axis=0) for z, layer in zip(net.pre_activations(points), net.layers) if layer.activation.kinks]
    spread = np.concatenate(spreads) if spreads else np.zeros(0)
    spread = spread[spread > 0]
    return 2.0 * float(np.median(spread)) if spread.size else 1.0


def ascent_lower_bound(
    net: Network,
    region: Region,
    query: Query,
    *,
    restarts: int = 64,
    steps: int = 150,
    samples: int = 2000,
    candidates: int = 8,
    seed: int = 0,
    dtype: str = "float32",
    walk: bool = True,
) -> LipschitzBound:
    """A certified lower bound: the best of sampling (``samples`` points),
    ``restarts`` smoothed-ascent runs of ``steps`` steps (half of them from
    the best sampled points, half from random ones) and, with ``walk``, the
    region walk from the best ``candidates`` points. Deterministic for a
    given ``seed`` (and dtype). ``details`` report each stage's best true
    local value (uncertified, for diagnosis) and its seconds."""
    check_count(restarts, "restarts", 1)
    check_count(steps, "steps", 1)
    check_count(samples, "samples", 0)
    check_count(candidates, "candidates", 1)
    from lipmip.estimate.jax_values import check_dtype, jax_query, precision

    check_dtype(dtype)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    free = free_coordinates(region)
    points = search_points(region, max(samples, restarts), rng)
    sampled, _ = ranked_values(net, query, points, free, "auto", dtype)
    seconds = {"sample": time.perf_counter() - start}

    lap = time.perf_counter()
    by_value = np.argsort(-sampled, kind="stable")
    from_best = by_value[: restarts // 2]
    from_random = rng.choice(points.shape[0], size=restarts - from_best.size, replace=False)
    starts = points[np.concatenate([from_best, from_random])]
    base = initial_temperature(net, points[: min(points.shape[0], 512)])
    # the restarts spread over temperatures from base to _HOTTEST x base (log-spaced, cycled): which
    # smoothing leads to the steepest region differs from network to network
    tau0 = base * _HOTTEST ** ((np.arange(restarts) % 4) / 3)
    with precision(dtype):
        jq = jax_query(net, query, free, dtype)
        kernel = _ascent_kernel(jq.activations, jq.input_norm, jq.c is not None, _geometry(region), steps)
        ended, best_seen = kernel(jq.params, jq.c, jq.free, *_region_arrays(region, dtype), starts.astype(dtype),
                                  tau0.astype(dtype))
        found = np.vstack([np.asarray(ended, dtype=np.float64), np.asarray(best_seen, dtype=np.float64)])
    found = project_into(region, found)  # float32 rounding can leave an end point a hair outside
    seconds["ascent"] = time.perf_counter() - lap

    lap = time.perf_counter()
    pool = np.vstack([found, points[by_value[:candidates]]])
    pool_values = local_values(net, query, pool, free)
    chosen = pool[np.argsort(-pool_values, kind="stable")[:candidates]]
    details: dict[str, Any] = {
        "samples": int(points.shape[0]), "restarts": restarts, "steps": steps, "dtype": dtype,
        "initial_temperatures": [base, base * _HOTTEST],
        "best_sampled_value": float(sampled.max()),
        "best_ascent_value": float(pool_values[: found.shape[0]].max()),
    }
    if walk:
        walked = region_walk(net, query, region, chosen)
        chosen = np.vstack([walked.points, chosen])
        details["walk"] = walked.summary()
    seconds["walk"] = time.perf_counter() - lap

    lap = time.perf_counter()
    best = certify_points(net, query, region, chosen[: 2 * candidates])
    seconds["certify"] = time.perf_counter() - lap
    details["seconds_by_stage"] = seconds
    return LipschitzBound(
        lower=0.0 if best is None else best.value,
        upper=None,
        method="ascent",
        seconds=time.perf_counter() - start,
        witness=best,
        query=query.to_dict(),
        region=region.to_dict(),
        details=details,
    )


# ---------------------------------------------------------------------------- the compiled ascent
def _geometry(region: Region) -> str:
    if isinstance(region, Box) or region.p == math.inf:
        return "box"
    return "l2" if region.p == 2.0 else "l1"


def _region_arrays(region: Region, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, hi, centre)`` of the region's bounding box, and its radius as
    the last entry: the arguments the kernel's projection needs."""
    box = region.bounding_box() if isinstance(region, Ball) else region
    radius = region.radius if isinstance(region, Ball) else 0.0
    return box.lo.astype(dtype), box.hi.astype(dtype), np.append(region.center, radius).astype(dtype)


@lru_cache(maxsize=None)
def _ascent_kernel(activations: tuple[str, ...], input_norm: float, scalar: bool, geometry: str, steps: int):
    import jax
    import jax.numpy as jnp

    from lipmip.jax.core import local_value

    def value(params, c, free, x, temperature):
        return local_value(params, x, c=c if scalar else None, input_norm=input_norm, activations=activations,
                           free=free, temperature=temperature)

    smooth_gradient = jax.grad(value, argnums=3)

    def project(x, lo, hi, centre_radius):
        if geometry == "box":
            return jnp.clip(x, lo, hi)
        centre, radius = centre_radius[:-1], centre_radius[-1] * (1 - 1e-6)
        offset = x - centre
        if geometry == "l2":
            length = jnp.sqrt(jnp.sum(offset * offset))
            return centre + offset * jnp.minimum(1.0, radius / jnp.maximum(length, 1e-30))
        a = jnp.abs(offset)  # Euclidean projection onto the l1 ball: soft thresholding
        u = jnp.sort(a)[::-1]
        cumulative = jnp.cumsum(u) - radius
        k = jnp.arange(1, u.size + 1, dtype=x.dtype)
        rho = jnp.max(jnp.where(u - cumulative / k > 0, k, 1.0))
        theta = jnp.maximum(cumulative[rho.astype(int) - 1] / rho, 0.0)
        return centre + jnp.sign(offset) * jnp.maximum(a - theta, 0.0)

    def direction(g, lo, hi, free):
        if geometry == "box":
            return jnp.sign(g) * (hi - lo) / 2
        norm = jnp.sqrt(jnp.sum(g * g))
        return g / jnp.maximum(norm, 1e-30) * jnp.max(hi - lo) / 2 * free

    def one_restart(params, c, free, lo, hi, centre_radius, x0, tau0):
        def step(carry, t):
            x, best_x, best_v = carry
            fraction = t / steps
            tau = tau0 * _FINAL_TEMPERATURE ** fraction
            length = _FIRST_STEP * (_LAST_STEP / _FIRST_STEP) ** fraction
            g = smooth_gradient(params, c, free, x, tau)
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            x = project(x + length * direction(g, lo, hi, free), lo, hi, centre_radius)
            v = value(params, c, free, x, None)
            better = v > best_v
            return (x, jnp.where(better, x, best_x), jnp.where(better, v, best_v)), None

        v0 = value(params, c, free, x0, None)
        (x, best_x, _), _ = jax.lax.scan(step, (x0, x0, v0), jnp.arange(steps, dtype=x0.dtype))
        return x, best_x

    return jax.jit(jax.vmap(one_restart, in_axes=(None, None, None, None, None, None, 0, 0)))

