"""Certified lower bounds from points: difference quotients checked in float64.

For any two points ``a != b`` of the region, ``‖q(a) - q(b)‖ / ‖a - b‖_α`` is
at most the Lipschitz constant ``L`` of the query ``q`` over the region. This
module turns a candidate point (where the local gradient norm is large) into
such a pair, evaluates it with a plain float64 forward pass, and subtracts a
rigorous bound on the rounding error of that pass, so the number it returns
is a lower bound on ``L`` in exact arithmetic, not only in floating point.

Inside one activation region the network is affine, so a pair that stays in
the region of the candidate, along the query's steepest direction, gives back
the local value of that region exactly (up to rounding).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from lipmip.domains import Ball, Box, Region
from lipmip.network import Network
from lipmip.norms import vector_norm
from lipmip.query import Query
from lipmip.result import Witness
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma as _gamma

__all__ = ["forward_with_error", "certified_quotient", "witness_from_point", "free_coordinates", "best_witness",
           "recertified"]

_SUBNORMAL = np.finfo(np.float64).smallest_subnormal
_FLOOR = 1e-290  # lower bounds below this are not certified (reported as 0)
_EXACT_WHEN_LOST = 1e-10  # evaluate a pair exactly when rounding costs more than this share of its quotient
EXACT_MAX_PARAMETERS = 300_000  # ... and the network has at most this many weights and biases




def forward_with_error(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y, e)``: the float64 output ``y = f(x)`` and a bound ``e >= |y - f(x)|``
    (elementwise, exact-arithmetic ``f``) on its rounding error.

    Uses the standard dot-product bound ``|fl(w·h + b) - (w·h + b)| <=
    γ_{n+1} (|w|·|h| + |b|)`` for each layer, whatever the summation order,
    plus ``(n+2)`` times the smallest subnormal for underflow, and propagates
    earlier errors through ``|W|``; activations here are 1-Lipschitz and
    exact. The bound is doubled to cover the rounding of its own computation.
    """
    h = np.asarray(x, dtype=np.float64).reshape(-1)
    e = np.zeros_like(h)
    for layer in net.layers:
        n = layer.in_features + 1
        absW = np.abs(layer.W)
        z = layer.W @ h + layer.b
        e = absW @ e + _gamma(n) * (absW @ np.abs(h) + np.abs(layer.b)) + (n + 2) * _SUBNORMAL
        h = layer.activation.forward(z)
    return h, 2.0 * e


def free_coordinates(region: Region) -> np.ndarray:
    """Mask of the input coordinates the region lets vary (a box coordinate
    with ``lo == hi`` is fixed; the Lipschitz constant is taken over the rest)."""
    if isinstance(region, Box):
        return region.hi > region.lo
    return np.ones(region.dim, dtype=bool)


def certified_quotient(net: Network, query: Query, region: Region, a: np.ndarray, b: np.ndarray, *,
                       exact: bool = True) -> float:
    """A number ``v`` with ``v <= ‖q(a) - q(b)‖ / ‖a - b‖_α`` in exact arithmetic,
    hence ``v <= L``. Returns 0.0 when the pair is unusable (equal points, a
    point outside the region) and for quotients below 1e-290, where
    subnormal rounding would make the certificate fragile. ``exact=False``
    skips the exact rational evaluation that recovers what rounding costs
    (milliseconds to a second on large networks): the value is then lower by
    that share, still certified; use it to compare candidates, then
    :func:`recertified` on the best."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not (region.contains(a) and region.contains(b)):
        return 0.0
    ya, ea = forward_with_error(net, a)
    yb, eb = forward_with_error(net, b)
    dy = ya - yb  # each entry within a relative u of the exact difference of ya and yb
    err = ea + eb
    m = dy.size
    if query.c is None:
        # ‖exact dy‖ >= ‖fl(dy)‖ (1 - γ) - ‖ea + eb‖ (1 + γ), γ covering the subtraction and the norm
        g = _gamma(m + 2)
        numerator = float(vector_norm(dy, query.output_norm)) * (1 - g) - float(vector_norm(err, query.output_norm)) * (1 + g)
    else:
        g = _gamma(m + 2)
        absc = np.abs(query.c)
        numerator = abs(float(query.c @ dy)) - g * float(absc @ np.abs(dy)) - (1 + g) * float(absc @ err)
    # the computed distance may be a few ulps low: inflate it
    dist = float(vector_norm(a - b, query.input_norm)) * (1 + _gamma(a.size + 2))
    if not dist > 0.0:
        return 0.0
    value = max(numerator, 0.0) / dist * (1 - 4 * _U)
    # rounding ate a visible share of the quotient (points close together, large hidden values):
    # evaluate the pair exactly instead, when the network is small enough for that to be quick
    lost = (1 + g) * float(np.abs(query.c) @ err if query.c is not None else vector_norm(err, query.output_norm))
    if exact and lost > _EXACT_WHEN_LOST * max(numerator, 0.0) and net.num_parameters <= EXACT_MAX_PARAMETERS:
        value = max(value, _exact_quotient(net, query, a, b))
    return value if value >= _FLOOR else 0.0


# ------------------------------------------------------------------ exact evaluation
def _dyadic(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``(n, e)`` with ``values == n · 2**e`` exactly: ``n`` an object array of
    Python ints (every float64 is a dyadic rational)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    ratios = [float(v).as_integer_ratio() for v in flat]
    shift = max((den.bit_length() - 1 for _, den in ratios), default=0)
    ints = np.empty(flat.size, dtype=object)
    ints[:] = [num << (shift - (den.bit_length() - 1)) for num, den in ratios]
    return ints.reshape(np.shape(values)), -shift


def _exact_forward(net: Network, x: np.ndarray) -> tuple[np.ndarray, int]:
    """``f(x) = n · 2**e`` exactly (ReLU and identity layers), as ``(n, e)``."""
    h, eh = _dyadic(x)
    for layer in net.layers:
        W, eW = _dyadic(layer.W)
        b, eb = _dyadic(layer.b)
        e = min(eW + eh, eb)
        z = (W.dot(h) << (eW + eh - e)) + np.array([v << (eb - e) for v in b], dtype=object)
        h = np.array([max(v, 0) for v in z], dtype=object) if layer.activation.kinks else z
        eh = e
    return h, eh


def _exact_quotient(net: Network, query: Query, a: np.ndarray, b: np.ndarray) -> float:
    """``‖q(a) - q(b)‖ / ‖a - b‖_α`` from an exact rational evaluation of the
    network at both points, rounded down (ℓ2 norms: the numerator rounded down
    and the distance up by integer square roots). 0.0 when not positive."""
    dy, e = _difference(*_exact_forward(net, a), *_exact_forward(net, b))
    if query.c is None:
        top, top_exp = _integer_norm(dy, query.output_norm, up=False), e
    else:
        c, ec = _dyadic(query.c)
        top, top_exp = abs(int(c.dot(dy))), ec + e
    diff, bottom_exp = _difference(*_dyadic(a), *_dyadic(b))
    bottom = _integer_norm(diff, query.input_norm, up=True)
    if top <= 0 or bottom <= 0:
        return 0.0
    value = Fraction(top, bottom) * Fraction(2) ** (top_exp - bottom_exp)
    down = float(value)
    return float(np.nextafter(down, 0.0)) if Fraction(down) > value else down


def _difference(u: np.ndarray, eu: int, v: np.ndarray, ev: int) -> tuple[np.ndarray, int]:
    """``u · 2**eu - v · 2**ev`` exactly, as ``(n, e)`` (integer object arrays)."""
    e = min(eu, ev)
    return np.array([t << (eu - e) for t in u], dtype=object) - np.array([t << (ev - e) for t in v], dtype=object), e


def _integer_norm(v: np.ndarray, p: float, *, up: bool) -> int:
    """The ``p``-norm of the integer vector ``v`` where it is an integer (ℓ1,
    ℓ∞); for ℓ2 the integer square root, rounded up (``up``) or down, so
    that ``n · 2**e`` bounds ``‖v · 2**e‖`` from that side."""
    mags = [abs(int(t)) for t in v]
    if p == math.inf:
        return max(mags, default=0)
    if p == 1.0:
        return sum(mags)
    total = sum(m * m for m in mags)
    root = math.isqrt(total)
    return root + 1 if up and root * root != total else root


def _max_step(region: Region, x: np.ndarray, d: np.ndarray) -> float:
    """Largest ``t >= 0`` with ``x + t d`` in the region (approximately; the
    caller re-checks membership)."""
    if isinstance(region, Box):
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(d > 0, (region.hi - x) / d, np.inf)
            dn = np.where(d < 0, (region.lo - x) / d, np.inf)
        return float(max(0.0, min(up.min(), dn.min())))
    assert isinstance(region, Ball)
    lo, hi = 0.0, 2 * region.radius / max(float(np.linalg.norm(d, ord=region.p)), 1e-300)
    for _ in range(60):
        mid = (lo + hi) / 2
        if region.contains(x + mid * d):
            lo = mid
        else:
            hi = mid
    return lo


def witness_from_point(net: Network, query: Query, region: Region, x: np.ndarray, *,
                       exact: bool = True) -> Witness | None:
    """A certified pair around ``x`` along the query's steepest direction.

    ``x`` is first pulled a hair toward the region's centre (so it is
    interior), then the pair ``x ± t d`` is chosen to stay inside both the
    region and, when possible, the activation region of ``x``; then its
    quotient is certified by :func:`certified_quotient` (``exact`` as
    there). Returns ``None`` when no positive value can be certified (e.g. a
    zero gradient).
    """
    c = region.center
    x = c + (1 - 1e-7) * (np.asarray(x, dtype=np.float64) - c)
    free = free_coordinates(region)
    J = net.jacobian(x) * free[None, :]
    d = query.steepest_direction(J) * free
    if not np.any(d):
        return None
    # steps that keep every pre-activation on its side (net is affine along the line there)
    t_pattern = math.inf
    h = x
    dh = d
    for layer in net.layers:
        z = layer.W @ h + layer.b
        dz = layer.W @ dh
        moving = dz != 0
        if np.any(moving) and layer.activation.kinks:
            t_pattern = min(t_pattern, float(np.min(np.abs(z[moving]) / np.abs(dz[moving]))))
        slope = layer.activation.slope(z)
        h = layer.activation.forward(z)
        dh = slope * dz
    t_plus = _max_step(region, x, d)
    t_minus = _max_step(region, x, -d)
    best: Witness | None = None
    for shrink in (0.5, 0.05, 1e-3):
        tp = shrink * min(t_plus, t_pattern) if t_pattern > 0 else shrink * t_plus * 1e-6
        tm = shrink * min(t_minus, t_pattern) if t_pattern > 0 else shrink * t_minus * 1e-6
        if tp + tm <= 0:
            continue
        a, b = x - tm * d, x + tp * d
        value = certified_quotient(net, query, region, a, b, exact=exact)
        if value > 0 and (best is None or value > best.value):
            best = Witness(a=a, b=b, value=value)
        expected = float(query.local_value(J))
        if best is not None and best.value >= expected * (1 - 1e-9):
            break
    return best


def best_witness(*witnesses: Witness | None) -> Witness | None:
    """The witness with the largest finite value among ``witnesses`` (Nones
    and non-finite values skipped; the first of equals), or None."""
    best: Witness | None = None
    for w in witnesses:
        if w is not None and math.isfinite(w.value) and (best is None or w.value > best.value):
            best = w
    return best


def recertified(net: Network, query: Query, region: Region, witness: Witness | None) -> Witness | None:
    """``witness`` (from elsewhere: another method, a caller) checked afresh
    for this network, query and region: the same pair with the value
    :func:`certified_quotient` gives it here, or None when it certifies
    nothing (a point outside the region, a zero quotient). The stated value
    of ``witness`` is not trusted."""
    if witness is None:
        return None
    value = certified_quotient(net, query, region, witness.a, witness.b)
    return Witness(a=np.asarray(witness.a, dtype=np.float64), b=np.asarray(witness.b, dtype=np.float64),
                   value=value) if value > 0 else None
