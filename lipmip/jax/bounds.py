"""Lipschitz numbers of an MLP as pure JAX functions, for training loops.

Each function is jittable, vmappable and differentiable with respect to the
parameters (and the inputs, where the value depends on them); each mirrors a
numpy path of lipmip and gives the same number up to floating-point rounding
(float64 under ``jax.enable_x64(True)``):

========================== =====================================================================
``local_values``           :func:`lipmip.estimate.local_values` (gradient dual norm / Jacobian norm)
``lower_bound``            their maximum over the points
``product_upper_bound``    :func:`lipmip.estimate.product_upper_bound` (``method="naive"``)
``preactivation_bounds``   :func:`lipmip.bounds.compute` with ``"interval"``
``interval_jacobian_bound`` :func:`lipmip.estimate.interval_jacobian_upper_bound` with ``bounds="interval"``
========================== =====================================================================

None of them is certified. They are computed in the arrays' own dtype with
no rounding accounted for: ``lower_bound`` is a lower bound on the local
Lipschitz constant, and the two upper bounds are upper bounds, only up to
that rounding (in float64, a few ulps times the layer widths; in float32,
far more). Use them to train and to watch training; certified numbers come
from :func:`lipmip.lipschitz` on the trained network (``method="sample"`` or
``"ascent"`` for lower bounds, ``"interval"``, ``"naive"``, ``"bab"``, ``"mip"``
for upper bounds).

Norms are spelled as in lipmip (``"inf"``, ``2``, ``1``, ...). With ``c``
the number is about the scalar ``c·f`` (its gradient's dual norm);
without, about the Jacobian's operator norm ``‖J‖_{α→α}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lipmip.errors import ShapeError
from lipmip.jax.core import jacobian, query_gradient
from lipmip.jax.params import check_ball, check_c, check_norm, check_points, check_radius, resolve
from lipmip.norms import dual_norm

__all__ = [
    "local_values",
    "lower_bound",
    "product_upper_bound",
    "preactivation_bounds",
    "interval_jacobian_bound",
    "vector_norm",
    "operator_norm",
]

Interval = tuple[jax.Array, jax.Array]


# ---------------------------------------------------------------------- norms with finite gradients


def vector_norm(v: jax.Array, p: float, axis: int = -1) -> jax.Array:
    """``‖v‖_p`` along ``axis`` for p in {1, 2, inf}. Its gradient is finite
    everywhere (0 at ``v = 0`` for p = 2, where a plain ``sqrt`` gives NaN)."""
    if p == 1.0:
        return jnp.sum(jnp.abs(v), axis=axis)
    if p == math.inf:
        return jnp.max(jnp.abs(v), axis=axis)
    squares = jnp.sum(v * v, axis=axis)
    positive = squares > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def operator_norm(M: jax.Array, p: float) -> jax.Array:
    """``‖M‖_{p→p}`` of a matrix: max column sum (1), largest singular value
    (2, by an SVD), max row sum (inf)."""
    if p == 1.0:
        return jnp.max(jnp.sum(jnp.abs(M), axis=0))
    if p == math.inf:
        return jnp.max(jnp.sum(jnp.abs(M), axis=1))
    return jnp.linalg.norm(M, ord=2)


# ---------------------------------------------------------------------- pointwise values


def local_values(params: Any, xs: Any, *, c: Any = None, norm: Any = "inf",
                 activations: Sequence[str] | None = None) -> jax.Array:
    """The local Lipschitz value at each row of ``xs`` (shape ``(n,)``):
    ``‖∇(c·f)(x)‖_{α*}`` with ``c``, else ``‖J(x)‖_{α→α}``, α = ``norm``;
    the network's almost-everywhere derivative (slope 0 at a ReLU's kink),
    as :func:`lipmip.estimate.local_values`. ``xs``: ``(n, d)`` or ``(d,)``."""
    params, activations = resolve(params, activations)
    p = check_norm(norm)
    points = check_points(xs, params[0][0].shape[1], "points xs")
    c = check_c(c, params[-1][0].shape[0])

    def one(x: jax.Array) -> jax.Array:
        if c is not None:
            return vector_norm(query_gradient(params, c, x, activations), dual_norm(p))
        return operator_norm(jacobian(params, x, activations), p)

    return jax.vmap(one)(points)


def lower_bound(params: Any, xs: Any, *, c: Any = None, norm: Any = "inf",
                activations: Sequence[str] | None = None) -> jax.Array:
    """The largest local Lipschitz value over the points ``xs``
    (:func:`local_values`): a lower bound on the Lipschitz constant over any
    region holding them, up to floating-point rounding in the arrays' dtype.
    A training-time number: it certifies nothing. A certified lower bound
    (a witness pair re-checked in float64) comes from
    ``lipmip.lipschitz(net, region, query, method="sample")`` or ``"ascent"``."""
    return jnp.max(local_values(params, xs, c=c, norm=norm, activations=activations))


# ---------------------------------------------------------------------- global: the norm product


def product_upper_bound(params: Any, norm: Any = 2, *, c: Any = None,
                        activations: Sequence[str] | None = None) -> jax.Array:
    """``head · Π_{k<L} ‖W_k‖_{α→α}``, a global upper bound on the Lipschitz
    constant (every ReLU or identity slope lies in [0, 1]). The head is
    ``‖W_L‖_{α→α}`` without ``c``; with ``c``, ``‖W_Lᵀ c‖_{α*}``, or
    ``|c| · (‖row_i(W_L)‖_{α*})_i`` when the output has a ReLU. The same
    factors as :func:`lipmip.estimate.product_upper_bound`, without its
    rounding margins. The ℓ2 factors are exact largest singular values
    (an SVD per layer), differentiable wherever the largest singular value
    is simple."""
    params, activations = resolve(params, activations)
    p = check_norm(norm)
    c = check_c(c, params[-1][0].shape[0])
    W_last = params[-1][0]
    if c is None:
        head = operator_norm(W_last, p)
    elif activations[-1] == "relu":
        head = jnp.abs(c) @ vector_norm(W_last, dual_norm(p), axis=1)
    else:
        head = vector_norm(c @ W_last, dual_norm(p))
    value = head
    for W, _ in params[:-1]:
        value = value * operator_norm(W, p)
    return value


# ---------------------------------------------------------------------- local: interval bounds


def preactivation_bounds(params: Any, center: Any, radius: Any, *, ball: Any = "inf",
                         activations: Sequence[str] | None = None) -> list[Interval]:
    """``[(lower_k, upper_k)]`` bounding every layer's pre-activation over the
    ball ``‖x - center‖_ball <= radius``: the first layer exactly per neuron
    (``W c + b ± r ‖W_i‖_{ball*}``), later layers by interval arithmetic
    (``W⁺ u + W⁻ l + b`` on the activated bounds): the bounds of
    ``lipmip.bounds.compute(net, Ball(center, radius, ball), "interval")``
    without their rounding margins. For an ℓ∞ ball, ``radius`` may be a
    vector of per-coordinate radii (the box ``center ± radius``). One centre
    of shape ``(d,)``; ``jax.vmap`` it for a batch."""
    params, activations = resolve(params, activations)
    return _forward_bounds(params, activations, *_region(params, center, radius, ball))


def _region(params: list, center: Any, radius: Any, ball: Any) -> tuple[jax.Array, jax.Array, float]:
    p = check_ball(ball)
    d = params[0][0].shape[1]
    center = check_points(center, d, "center")
    if center.shape[0] != 1:
        raise ShapeError(f"center has shape {center.shape}; one centre of shape ({d},) is expected (jax.vmap for a batch)")
    return center[0], check_radius(radius, p, d), p


def _forward_bounds(params: list, activations: tuple[str, ...], center: jax.Array, radius: jax.Array,
                    p: float) -> list[Interval]:
    W, b = params[0]
    mid = W @ center + b
    spread = jnp.abs(W) @ radius if radius.ndim == 1 else radius * vector_norm(W, dual_norm(p), axis=1)
    bounds = [(mid - spread, mid + spread)]
    for (W, b), act in zip(params[1:], activations[:-1]):
        lo, hi = bounds[-1]
        if act == "relu":
            lo, hi = jax.nn.relu(lo), jax.nn.relu(hi)
        Wp, Wn = jnp.maximum(W, 0.0), jnp.minimum(W, 0.0)
        bounds.append((Wp @ lo + Wn @ hi + b, Wp @ hi + Wn @ lo + b))
    return bounds


def _slope_bounds(bounds: list[Interval], activations: tuple[str, ...]) -> list[Interval]:
    """Per layer ``(s_lo, s_hi)``: (1, 1) active or identity, (0, 0) inactive,
    (0, 1) unstable; constants (no gradient flows through them)."""
    slopes = []
    for (lo, hi), act in zip(bounds, activations):
        if act == "identity":
            one = jnp.ones_like(lo)
            slopes.append((one, one))
        else:
            slopes.append((jax.lax.stop_gradient((lo >= 0).astype(lo.dtype)),
                           jax.lax.stop_gradient((hi > 0).astype(hi.dtype))))
    return slopes


def _times_slopes(lo: jax.Array, hi: jax.Array, s_lo: jax.Array, s_hi: jax.Array) -> Interval:
    candidates = jnp.stack([lo * s_lo, lo * s_hi, hi * s_lo, hi * s_hi])
    return jnp.min(candidates, axis=0), jnp.max(candidates, axis=0)


def _interval_matmul(A_lo: jax.Array, A_hi: jax.Array, B: jax.Array) -> Interval:
    """Bounds on ``A B`` for ``A_lo <= A <= A_hi`` and a fixed matrix ``B``."""
    Bp, Bn = jnp.maximum(B, 0.0), jnp.minimum(B, 0.0)
    return A_lo @ Bp + A_hi @ Bn, A_hi @ Bp + A_lo @ Bn


def _matmul_interval(A: jax.Array, B_lo: jax.Array, B_hi: jax.Array) -> Interval:
    """Bounds on ``A B`` for a fixed matrix ``A`` and ``B_lo <= B <= B_hi``."""
    Ap, An = jnp.maximum(A, 0.0), jnp.minimum(A, 0.0)
    return Ap @ B_lo + An @ B_hi, Ap @ B_hi + An @ B_lo


def _input_gradient_bounds(params: list, slopes: list[Interval], C: jax.Array, bottom_up: bool) -> Interval:
    """Entrywise bounds on ``C J(x)`` over every slope pattern allowed:
    top-down (``C`` back to the input) intersected with bottom-up (the
    identity at the input forward to the output, then ``C``), as
    :func:`lipmip.bounds.backward.gradient_bounds` does for its input layer."""
    lo, hi = C, C
    for (W, _), (s_lo, s_hi) in zip(reversed(params), reversed(slopes)):
        lo, hi = _interval_matmul(*_times_slopes(lo, hi, s_lo, s_hi), W)
    if not bottom_up:
        return lo, hi
    eye = jnp.eye(params[0][0].shape[1], dtype=C.dtype)
    f_lo, f_hi = eye, eye
    for (W, _), (s_lo, s_hi) in zip(params, slopes):
        f_lo, f_hi = _times_slopes(*_matmul_interval(W, f_lo, f_hi), s_lo[:, None], s_hi[:, None])
    b_lo, b_hi = _matmul_interval(C, f_lo, f_hi)
    return jnp.maximum(lo, b_lo), jnp.minimum(hi, b_hi)


def interval_jacobian_bound(params: Any, center: Any, radius: Any, *, ball: Any = "inf", c: Any = None,
                            norm: Any = None, activations: Sequence[str] | None = None,
                            bottom_up: bool = True) -> jax.Array:
    """An upper bound on the local Lipschitz constant over the ball
    ``‖x - center‖_ball <= radius`` (``norm``, the input norm α, defaults to
    the ball's): interval bounds fix every stable ReLU's slope
    (:func:`preactivation_bounds`), interval back-propagation of ``c`` (or of
    the identity) bounds ``|C J(x)| <= B`` entrywise for every ``x`` in the
    ball, and the value is ``‖B‖_{α*}`` with ``c``, else ``‖B‖_{α→α}``.
    The number of ``lipmip.lipschitz(net, Ball(center, radius, ball), query,
    method="interval", bounds="interval")`` without its rounding margins
    (``bottom_up=False`` skips the second propagation: cheaper, looser).

    Differentiable in the parameters: the gradient flows through the weights
    of the back-propagation; the slopes (which neurons are stable) are
    piecewise constant and pass none (the stability regulariser is the term
    that moves them). One centre of shape ``(d,)``; ``jax.vmap`` it for a batch."""
    params, activations = resolve(params, activations)
    center, radius, p = _region(params, center, radius, ball)
    alpha = p if norm is None else check_norm(norm, "input norm")
    c = check_c(c, params[-1][0].shape[0])
    bounds = _forward_bounds(params, activations, center, radius, p)
    dtype = jnp.result_type(params[-1][0], *([] if c is None else [c]))
    C = jnp.eye(params[-1][0].shape[0], dtype=dtype) if c is None else c[None, :].astype(dtype)
    lo, hi = _input_gradient_bounds(params, _slope_bounds(bounds, activations), C, bottom_up)
    B = jnp.maximum(jnp.abs(lo), jnp.abs(hi))
    if radius.ndim == 1:
        B = B * (radius > 0).astype(B.dtype)[None, :]  # a coordinate with radius 0 is fixed
    if c is not None:
        return vector_norm(B[0], dual_norm(alpha))
    return operator_norm(B, alpha)

