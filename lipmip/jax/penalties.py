"""Training terms that make a network cheap to certify, or less steep.

* :func:`stability_regulariser`: the ReLU-stability (RS) loss of Xiao et al.
  2019 ("Training for Faster Adversarial Robustness Verification via
  Inducing ReLU Stability"), ``−tanh(1 + l·u)`` summed over the ReLU neurons,
  with ``[l, u]`` the interval bounds of each pre-activation over a ball
  around each training point. A neuron whose interval straddles 0 (``l < 0 <
  u``, ``l·u < 0``) costs up to +1, a stable one (``l·u >= 0``) about −0.76
  or less, so minimising it moves intervals off 0. Stable neurons are what
  makes exact methods cheap: each is one fewer binary variable in a MIP and
  one fewer branching decision in the region branch and bound (Plate et
  al. 2025, arXiv 2502.03016, measure that trade-off).
* :func:`stable_fraction`: the share of ReLUs whose interval does not
  straddle 0, for logging (not differentiated).
* :func:`lipschitz_penalty`: a differentiable Lipschitz term, one of three
  kinds (see there).

All are pure and jittable, with the conventions of :mod:`lipmip.jax.bounds`
(``params`` a ``(W, b)`` list or a model, norms spelled as in lipmip).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lipmip.errors import InvalidQueryError
from lipmip.jax.bounds import _forward_bounds, interval_jacobian_bound, local_values, product_upper_bound
from lipmip.jax.params import check_ball, check_c, check_points, check_radius, resolve

__all__ = ["stability_regulariser", "stable_fraction", "lipschitz_penalty", "PENALTY_KINDS"]

PENALTY_KINDS = ("product", "interval", "local")


def _relu_bounds(params: Any, centers: Any, radius: Any, ball: Any,
                 activations: Sequence[str] | None) -> list[tuple[jax.Array, jax.Array]]:
    """Interval bounds ``(n, width)`` of every ReLU layer over the ball around each centre."""
    params, activations = resolve(params, activations)
    p = check_ball(ball)
    points = check_points(centers, params[0][0].shape[1], "centers")
    r = check_radius(radius, p, params[0][0].shape[1])
    per_center = jax.vmap(lambda x: _forward_bounds(params, activations, x, r, p))(points)
    return [bounds for bounds, act in zip(per_center, activations) if act == "relu"]


def stability_regulariser(params: Any, centers: Any, radius: Any, *, ball: Any = "inf",
                          activations: Sequence[str] | None = None) -> jax.Array:
    """The RS loss of Xiao et al. 2019: the mean over ``centers`` (``(n, d)``
    or ``(d,)``) of ``Σ −tanh(1 + l·u)`` over every ReLU neuron (hidden
    layers, and the output if it has a ReLU), ``[l, u]`` the interval bounds
    of :func:`lipmip.jax.preactivation_bounds` over the ball of ``radius``
    around the centre. Lower is more stable; 0 for a network without ReLUs.
    Differentiable in the parameters (and the centres)."""
    terms = [jnp.sum(-jnp.tanh(1.0 + lo * hi), axis=1) for lo, hi in _relu_bounds(params, centers, radius, ball, activations)]
    if not terms:
        return jnp.zeros(())
    return jnp.mean(sum(terms))


def stable_fraction(params: Any, centers: Any, radius: Any, *, ball: Any = "inf",
                    activations: Sequence[str] | None = None) -> jax.Array:
    """The share of ReLU neurons whose interval bounds over the ball do not
    straddle 0 (``l >= 0`` or ``u <= 0``), averaged over ``centers``: the
    ``stable_fraction`` of ``lipmip.bounds.compute(net, Ball(x, radius, ball),
    "interval")`` (1.0 without ReLUs). For logging: its gradient is 0.
    (Certified counts with tighter bounds: ``lipmip.bounds.compute(net, region,
    "linear")``.)"""
    layers = _relu_bounds(params, centers, radius, ball, activations)
    if not layers:
        return jnp.ones(())
    stable = sum(jnp.sum((lo >= 0) | (hi <= 0), axis=1) for lo, hi in layers)
    total = sum(lo.shape[1] for lo, _ in layers)
    return jax.lax.stop_gradient(jnp.mean(stable / total))


def lipschitz_penalty(params: Any, *, kind: str = "product", norm: Any = "inf", c: Any = None, centers: Any = None,
                      radius: Any = None, ball: Any = "inf", activations: Sequence[str] | None = None,
                      bottom_up: bool = True) -> jax.Array:
    """A differentiable Lipschitz term for a training loss; ``kind``:

    * ``"product"``: :func:`lipmip.jax.product_upper_bound` (``norm``, ``c``),
      the global norm-product bound; pushes every layer's operator norm
      down, whatever the data (no ``centers``/``radius``).
    * ``"interval"``: the mean over ``centers`` of
      :func:`lipmip.jax.interval_jacobian_bound` over the ball (``radius``,
      ``ball``) around each, input norm ``norm``; a local upper bound near
      the data, it pushes down the weights along the back-propagation.
      ``bottom_up=False`` uses the top-down propagation only (looser; on a
      64-32-32-10 network about 12 times cheaper per training step, as the
      bottom-up pass carries an input-sized interval matrix per centre).
    * ``"local"``: the mean over ``centers`` of the local Lipschitz value
      (:func:`lipmip.jax.local_values`: the gradient's dual norm or the
      Jacobian's norm at the point itself); the cheapest, a
      gradient-norm penalty (no ``radius``).

    ``c``: the scalar function ``c·f`` (shape ``(m,)``; for ``"interval"``
    and ``"local"`` also ``(n, m)``, one row per centre, e.g. the margin of
    each training label); without it, the Jacobian's operator norm. ``norm``
    is the input norm α for every kind (default ∞, as ``ball``)."""
    if kind not in PENALTY_KINDS:
        raise InvalidQueryError(f"unknown penalty kind {kind!r}; use one of {', '.join(PENALTY_KINDS)}")
    if kind == "product":
        if centers is not None or radius is not None:
            raise InvalidQueryError("the 'product' penalty is global: it takes no centers or radius")
        return product_upper_bound(params, norm, c=c, activations=activations)
    if centers is None:
        raise InvalidQueryError(f"the {kind!r} penalty needs centers (the points it is taken around)")
    params, activations = resolve(params, activations)
    points = check_points(centers, params[0][0].shape[1], "centers")
    cs = check_c(c, params[-1][0].shape[0], batch=points.shape[0])
    if kind == "local":
        if radius is not None:
            raise InvalidQueryError("the 'local' penalty is taken at the centers themselves: it takes no radius")

        def one(x: jax.Array, row: Any) -> jax.Array:
            return local_values(params, x, c=row, norm=norm, activations=activations)[0]
    else:
        if radius is None:
            raise InvalidQueryError("the 'interval' penalty needs a radius (the balls it bounds the Jacobian over)")

        def one(x: jax.Array, row: Any) -> jax.Array:
            return interval_jacobian_bound(params, x, radius, ball=ball, c=row, norm=norm, activations=activations,
                                           bottom_up=bottom_up)

    if cs is None or cs.ndim == 1:
        return jnp.mean(jax.vmap(lambda x: one(x, cs))(points))
    return jnp.mean(jax.vmap(one)(points, cs))
