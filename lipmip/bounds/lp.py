"""Optimisation-based bound tightening: LP (and optionally MILP) bounds.

Layer by layer, every ReLU neuron that is still unstable (``l < 0 < u``) gets
its pre-activation bounds re-computed as the minimum and maximum of
``z_k,i = W_k[i] h_{k-1} + b_k[i]`` over a linear relaxation of the network
up to layer ``k - 1``:

* the input ``x`` in the region's bounding box, plus the region's own
  constraints: nothing more for a box or an ℓ∞ ball; ``t_i >= |x_i - c_i|``,
  ``Σ t_i <= r`` for an ℓ1 ball; for an ℓ2 ball, cutting planes on the first
  layer's pre-activation ``z_0 = W_0 x + b_0`` (see :class:`_L2Cuts`);
* for each earlier layer ``j``: ``z_j = W_j h_{j-1} + b_j`` (exact equality
  rows), ``l_j <= z_j <= u_j``, and ``h_j = z_j`` (identity, stably active),
  ``h_j = 0`` (stably inactive) or the ReLU triangle ``h >= z``, ``h >= 0``,
  ``h <= u (z - l) / (u - l)`` (unstable).

What is guaranteed: every returned bound holds in exact arithmetic for every
point of the region. Three things make that so. The relaxation is valid in
exact arithmetic: its coefficients are the float64 weights themselves, and
the computed ones (the chord slope ``s = fl(u / (u - l))``, the ℓ2 cut
directions) come with right-hand sides enlarged to be valid for the float64
coefficients actually used (:func:`_chord`, :meth:`_L2Cuts.support`).
Second, the optimum is never taken from the solver: the bound is
:attr:`LPResult.bound`, a weak-duality bound rounded upward, valid for
whatever multipliers HiGHS returns. Third, the result is intersected with the
starting bounds, so it is never looser than them; stopping early
(``time_limit``) or an LP that ends badly only costs tightness.

Which neurons are tightened: layer 0 never (``linear_range`` is already exact
per neuron for boxes and balls); in later layers only ReLU neurons that are
unstable under the current bounds, the output layer included when it has a
ReLU. Stable neurons and identity layers (an identity output layer included)
keep their starting bounds: their bounds enter later relaxations only as
column bounds that the LP rows already imply, so tightening them could not
change any later bound.

The MILP option (``milp_time_limit > 0``) solves, for the neurons the LP
left unstable, the exact big-M mixed-integer encoding of the earlier ReLUs
and uses HiGHS's MIP dual bound widened by :func:`_milp_margin`. Branch and
bound works with tolerances and has no rigorous certificate, so those bounds
are *sound up to HiGHS's tolerances*, not rigorous like the LP ones; they are
only used when asked for, and always intersected with the LP bounds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lipmip.activations import IDENTITY, RELU
from lipmip.bounds.base import Bounds
from lipmip.bounds.linear import linear_bounds, relaxation
from lipmip.domains import Ball, Region, as_region
from lipmip.errors import InvalidQueryError
from lipmip.lp import LinearProgram, highs_model, highspy_module
from lipmip.network import Layer, Network
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma as _gamma

__all__ = ["lp_bounds"]

_TINY = 1e-300  # absolute slack against underflow in the padded sums
_L2_ROUNDS = 20  # cutting-plane rounds per objective for an ℓ2 ball
_L2_SLACK = 1e-9  # a cut must be violated by this much (relative) to be added
_L2_STALL = 1e-6  # relative gain below which a cutting-plane round counts as stalled
_MILP_SAFETY = 10.0  # multiplier of HiGHS's tolerances in the MILP margin


# ============================================================================ public entry point
def lp_bounds(
    net: Network,
    region: Region,
    *,
    base: Bounds | None = None,
    milp_time_limit: float = 0.0,
    time_limit: float | None = None,
    progress: bool = False,
) -> Bounds:
    """LP-tightened pre-activation bounds of every layer of ``net`` over ``region``.

    ``base``: valid bounds of the same network over the same region (or a
    larger one) to start from (default:
    :func:`lipmip.bounds.linear.linear_bounds`); their validity is the
    caller's promise (only their shapes are checked), and the result is
    contained in them neuron by neuron. ``milp_time_limit``: seconds per MILP
    solve (one neuron, one side) for the neurons the LP leaves unstable; 0
    turns the MILP off. ``time_limit``: overall seconds (the starting bounds
    included); neurons not reached keep their current bounds. ``progress``:
    show a tqdm bar when tqdm is installed.

    Guarantee: ``lower[k] <= z_k(x) <= upper[k]`` for every ``x`` in the
    region and every layer, in exact arithmetic (with the MILP: up to
    HiGHS's tolerances, see the module docstring). The method is ``"lp"``,
    or ``"lp+milp"`` when a MILP was solved. ``details`` holds the counts
    of solves, of neurons tightened and stabilised, of ℓ2 cuts, and
    ``timed_out``.
    """
    start = time.perf_counter()
    _check_options(milp_time_limit, time_limit)
    budget = _Budget(start, None if time_limit is None else float(time_limit))
    region = as_region(region)
    region.check_network(net)
    if base is None:
        base = linear_bounds(net, region)
    _check_base(net, base)
    state = _State(net, region, [np.array(a) for a in base.lower], [np.array(a) for a in base.upper], budget)
    if all(np.all(np.isfinite(a)) for a in state.lower + state.upper):
        with _ProgressBar(progress, int(sum(int(u.sum()) for u in base.unstable[1:]))) as bar:
            for k in range(1, net.depth):
                _tighten_layer(state, k, float(milp_time_limit), bar)
    else:
        state.details["skipped"] = "non-finite starting bounds"
    method = "lp+milp" if state.details["milp_solves"] else "lp"
    seconds = time.perf_counter() - start
    return Bounds(net, region, tuple(state.lower), tuple(state.upper), method, seconds, state.summary(base))


# ============================================================================ bookkeeping
@dataclass
class _Budget:
    """The overall time limit (``None``: unlimited)."""

    start: float
    limit: float | None

    def left(self) -> float:
        if self.limit is None:
            return math.inf
        return self.limit - (time.perf_counter() - self.start)


@dataclass
class _State:
    """The bounds being tightened, the ℓ2 cuts, and the counters."""

    net: Network
    region: Region
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    budget: _Budget
    details: dict = field(default_factory=lambda: {"lp_solves": 0, "milp_solves": 0, "timed_out": False})
    l2: "_L2Cuts | None" = None

    def __post_init__(self) -> None:
        if isinstance(self.region, Ball) and self.region.p == 2.0:
            self.l2 = _L2Cuts(self.net.layers[0], self.region)

    def out_of_time(self) -> bool:
        if self.budget.left() <= 0:
            self.details["timed_out"] = True
            return True
        return False

    def unstable(self, k: int) -> np.ndarray:
        return np.flatnonzero((self.lower[k] < 0) & (self.upper[k] > 0))

    def open(self, k: int, i: int) -> bool:
        """Whether neuron ``i`` of layer ``k`` is still unstable."""
        return bool(self.lower[k][i] < 0 < self.upper[k][i])

    def summary(self, base: Bounds) -> dict:
        changed = stabilised = 0
        for k, layer in enumerate(self.net.layers):
            changed += int(((self.lower[k] != base.lower[k]) | (self.upper[k] != base.upper[k])).sum())
            if layer.activation is RELU:
                was = (base.lower[k] < 0) & (base.upper[k] > 0)
                now = (self.lower[k] < 0) & (self.upper[k] > 0)
                stabilised += int((was & ~now).sum())
        out = dict(self.details)
        out.update(
            base=base.method,
            tightened=changed,
            stabilised=stabilised,
            unstable_before=base.num_unstable,
            l2_cuts=0 if self.l2 is None else len(self.l2.cuts),
            time_limit=self.budget.limit,
        )
        return out


def _check_options(milp_time_limit: Any, time_limit: Any) -> None:
    if not _is_number(milp_time_limit) or not (0 <= float(milp_time_limit) < math.inf):
        raise InvalidQueryError(f"milp_time_limit must be a finite number >= 0, got {milp_time_limit!r}")
    if time_limit is not None and (not _is_number(time_limit) or not float(time_limit) > 0):
        raise InvalidQueryError(f"time_limit must be a number > 0 or None, got {time_limit!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_base(net: Network, base: Any) -> None:
    if not isinstance(base, Bounds):
        raise InvalidQueryError(f"base must be a lipmip Bounds object, got {type(base).__name__}")
    shapes = tuple(a.shape for a in base.lower) + tuple(a.shape for a in base.upper)
    if shapes != tuple((layer.out_features,) for layer in net.layers) * 2:
        raise InvalidQueryError("base bounds do not match the network's layer sizes")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


class _ProgressBar:
    """A tqdm bar when asked for and importable, otherwise a silent stand-in."""

    def __init__(self, enabled: bool, total: int):
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc="lp bounds", unit="neuron", leave=False)

    def __enter__(self) -> Any:
        return self._bar if self._bar is not None else _NoBar()

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()


# ============================================================================ one layer
def _tighten_layer(state: _State, k: int, milp_time_limit: float, bar: Any) -> None:
    """Tighten the unstable ReLU neurons of layer ``k`` (the model holds layers < k)."""
    if state.net.layers[k].activation is not RELU or state.out_of_time():
        return
    todo = state.unstable(k)
    if todo.size == 0:
        return
    spec = _build(state, k, milp=False)
    lp = LinearProgram(spec.A, spec.row_lo, spec.row_hi, spec.col_lo, spec.col_hi)
    for i in todo:
        if state.out_of_time():
            return
        _lp_neuron(state, lp, spec, k, int(i))
        bar.update(1)
    if milp_time_limit > 0:
        _milp_layer(state, k, milp_time_limit)


def _sides(lo: float, hi: float) -> list[bool]:
    """Which side to solve first (``True``: maximise): the one closer to 0,
    the likelier to prove the neuron stable and save the other solve."""
    return [True, False] if hi <= -lo else [False, True]


def _objective(spec: "_Spec", W_row: np.ndarray, k: int) -> np.ndarray:
    """The cost vector of ``W_row · h_{k-1}`` over the model's columns."""
    c = np.zeros(spec.num_cols)
    c[spec.h[k - 1]] = W_row
    return c


def _lp_neuron(state: _State, lp: LinearProgram, spec: "_Spec", k: int, i: int) -> None:
    """Both bounds of neuron ``i`` of layer ``k`` by LP, the second skipped
    when the first already makes the neuron stable (a minimum is solved as
    the maximum of the negated objective)."""
    layer = state.net.layers[k]
    c = _objective(spec, layer.W[i], k)
    for maximize in _sides(state.lower[k][i], state.upper[k][i]):
        if not state.open(k, i) or state.out_of_time():
            return
        sign = 1.0 if maximize else -1.0
        value = sign * _lp_max(state, lp, spec, k, sign * layer.W[i], sign * c)
        _record(state, k, i, value, layer.b[i], maximize)


def _record(state: _State, k: int, i: int, value: float, bias: float, maximize: bool) -> None:
    """Intersect bound ``i`` of layer ``k`` with ``value + bias`` (rounded outward)."""
    if not math.isfinite(value):
        return
    if maximize:
        state.upper[k][i] = min(state.upper[k][i], float(np.nextafter(value + bias, np.inf)))
    else:
        state.lower[k][i] = max(state.lower[k][i], float(np.nextafter(value + bias, -np.inf)))
    if state.lower[k][i] > state.upper[k][i]:  # impossible for valid bounds of a non-empty region
        raise RuntimeError(
            f"lipmip bug: bounds of layer {k} neuron {i} cross ({state.lower[k][i]!r} > {state.upper[k][i]!r})"
        )


def _lp_max(state: _State, lp: LinearProgram, spec: "_Spec", k: int, W_row: np.ndarray, c: np.ndarray) -> float:
    """A rigorous upper bound on ``max c·v`` over the model (``c`` is
    ``W_row`` on the columns of ``h_{k-1}``).

    For an ℓ2 ball, first a cut along the back-substituted objective, then
    up to ``_L2_ROUNDS`` rounds of cuts at the LP optimum while it lies
    outside the ball's image and the bound still improves (two rounds in a
    row gaining less than ``_L2_STALL`` relative end it). Every round's bound
    is valid; the best is returned.
    """
    cuts = state.l2
    if cuts is not None:
        _add_cut(lp, spec, cuts.along(_back_substitute(state, k, W_row)))
    best = math.inf
    stalled = 0
    for _ in range(_L2_ROUNDS if cuts is not None else 1):
        res = lp.maximize(c)
        state.details["lp_solves"] += 1
        gain = best - res.bound
        best = min(best, res.bound)
        stalled = stalled + 1 if gain <= _L2_STALL * (1.0 + abs(best)) else 0
        if cuts is None or res.x is None or stalled >= 2 or state.out_of_time():
            break
        cut = cuts.separate(res.x[spec.z0])
        if cut is None:
            break
        _add_cut(lp, spec, cut)
    return best


def _add_cut(lp: LinearProgram, spec: "_Spec", cut: tuple[np.ndarray, float] | None) -> None:
    if cut is None:
        return
    w, rhs = cut
    row = sp.csr_matrix((w, (np.zeros(w.size, dtype=np.int64), spec.z0)), shape=(1, spec.num_cols))
    lp.add_rows(row, [-np.inf], [rhs])


def _back_substitute(state: _State, k: int, W_row: np.ndarray) -> np.ndarray:
    """Coefficients ``a`` on ``z_0`` such that ``W_row · h_{k-1} <= a · z_0 + const``
    under the current bounds (the CROWN upper relaxation). Only a direction
    for a cut, so computed without any care for rounding."""
    lam = np.asarray(W_row, dtype=np.float64)
    for j in range(k - 1, -1, -1):
        a_lo, _, a_up, _ = relaxation(state.lower[j], state.upper[j], state.net.layers[j].activation is IDENTITY)
        lam = np.maximum(lam, 0.0) * a_up + np.minimum(lam, 0.0) * a_lo  # now on z_j
        if j > 0:
            lam = lam @ state.net.layers[j].W
    return lam


# ============================================================================ ℓ2 ball
class _L2Cuts:
    """Cutting planes for an ℓ2 ball, on the first layer's pre-activation.

    HiGHS has no cones, so the ball is replaced by an outer polyhedral
    approximation. Only ``z_0 = W_0 x + b_0`` matters to every later layer, so
    the cuts live there: a cut ``w · z_0 <= R`` with ``R`` a rigorous upper
    bound on ``max w · (W_0 x + b_0)`` over the ball (:meth:`support`), valid
    whatever ``w`` is. Directions come from the back-substituted objective
    (:meth:`along`, which makes the LP at least as tight as the linear
    bounds in that direction) and from the normal of the ellipsoid
    ``{W_0 x + b_0 : x in ball}`` at the ray through the LP optimum
    (:meth:`separate`, Kelley's cutting planes, in the space of ``z_0``:
    at most ``out_features`` dimensions instead of the input's). Cuts found
    are kept for every later objective and layer.

    In practice: on low-dimensional inputs the cuts tighten well beyond the
    bounding box; on MNIST-sized inputs (784-D, radius 0.5) the LP reaches
    the linear bounds through the first cut and the Kelley rounds then add
    almost nothing (they stop once stalled), so expect few stabilised
    neurons there. An exact ℓ2 treatment would need a conic solver.
    """

    def __init__(self, layer: Layer, region: Ball):
        self.W, self.b, self.region = layer.W, layer.b, region
        box = region.bounding_box()
        self.x_abs = np.maximum(np.abs(box.lo), np.abs(box.hi))
        self.mid = self.W @ region.center + self.b  # image of the centre (direction finding only)
        u, s, _ = np.linalg.svd(self.W, full_matrices=False)
        keep = s > s.max(initial=0.0) * max(self.W.shape) * 2 * _U
        self.u, self.s = u[:, keep], s[keep]
        self.cuts: list[tuple[np.ndarray, float]] = []

    def support(self, w: np.ndarray) -> float:
        """An upper bound on ``w · (W_0 x + b_0)`` for every ``x`` in the ball,
        in exact arithmetic.

        With ``g = fl(wᵀ W_0)``: ``wᵀW_0 x <= g·x + |wᵀW_0 - g|·|x|``; the
        first term is bounded by ``linear_range`` (rigorous for the float
        ``g``), the second by ``γ_{m+2} (|w|ᵀ|W_0|) · max|x|`` over the
        bounding box; ``w · b_0`` and the final sum carry their own rounding
        allowance, and the result is rounded up once more.
        """
        m = w.size
        g = w @ self.W
        _, hi = self.region.linear_range(g[None, :])
        g_err = float((_gamma(m + 2) * (np.abs(w) @ np.abs(self.W))) @ self.x_abs)
        wb = float(w @ self.b)
        total = float(hi[0]) + g_err + wb
        magnitude = abs(float(hi[0])) + g_err + float(np.abs(w) @ np.abs(self.b))
        pad = 2 * _gamma(m + self.x_abs.size + 6) * magnitude + _TINY
        return float(np.nextafter(total + pad, np.inf))

    def along(self, w: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The cut ``w · z_0 <= support(w)`` (kept), or ``None`` for ``w = 0``."""
        scale = float(np.abs(w).max(initial=0.0))
        if not (scale > 0 and math.isfinite(scale)):
            return None
        w = w / scale
        cut = (w, self.support(w))
        self.cuts.append(cut)
        return cut

    def separate(self, z_star: np.ndarray) -> tuple[np.ndarray, float] | None:
        """A kept cut that ``z_star`` violates by more than ``_L2_SLACK``
        (relative), or ``None``: the ellipsoid's normal ``(W_0 W_0ᵀ)⁺ (z* - mid)``."""
        d = z_star - self.mid
        w = self.u @ ((self.u.T @ d) / self.s**2)
        scale = float(np.abs(w).max(initial=0.0))
        if not (scale > 0 and math.isfinite(scale)):
            return None
        w = w / scale
        rhs = self.support(w)
        if float(w @ z_star) - rhs <= _L2_SLACK * (abs(rhs) + float(np.abs(w) @ np.abs(z_star))):
            return None
        self.cuts.append((w, rhs))
        return w, rhs


# ============================================================================ the relaxation
@dataclass
class _Spec:
    """A built model: ``row_lo <= A v <= row_hi``, ``col_lo <= v <= col_hi``,
    ``integer`` marking binary columns; ``x`` is columns ``0..n-1``, ``z0``
    the columns of the first pre-activation, ``h[j]`` those of layer ``j``'s
    post-activation."""

    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    z0: np.ndarray
    h: list[np.ndarray]

    @property
    def num_cols(self) -> int:
        return int(self.col_lo.size)


class _Builder:
    """Collects columns and sparse rows, then makes a :class:`_Spec`."""

    def __init__(self) -> None:
        self._col_lo: list[np.ndarray] = []
        self._col_hi: list[np.ndarray] = []
        self._integer: list[np.ndarray] = []
        self._n = 0
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self._m = 0

    def cols(self, lo: Any, hi: Any, integer: bool = False) -> np.ndarray:
        lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(hi, dtype=np.float64).reshape(-1)
        idx = np.arange(self._n, self._n + lo.size)
        self._n += lo.size
        self._col_lo.append(lo)
        self._col_hi.append(hi)
        self._integer.append(np.full(lo.size, integer))
        return idx

    def rows(self, blocks: list[tuple[Any, np.ndarray]], lo: Any, hi: Any) -> None:
        """Append rows ``lo <= Σ M @ v[cols] <= hi`` over ``(M, cols)`` blocks."""
        lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), lo.shape).copy()
        for M, cols in blocks:
            coo = sp.coo_matrix(M)
            self._entries.append((coo.row + self._m, np.asarray(cols)[coo.col], coo.data.astype(np.float64)))
        self._row_lo.append(lo)
        self._row_hi.append(hi)
        self._m += lo.size

    def spec(self, z0: np.ndarray, h: list[np.ndarray]) -> _Spec:
        r, c, v = (np.concatenate(parts) for parts in zip(*self._entries))
        A = sp.csr_matrix((v, (r, c)), shape=(self._m, self._n))
        return _Spec(A, np.concatenate(self._row_lo), np.concatenate(self._row_hi), np.concatenate(self._col_lo),
                     np.concatenate(self._col_hi), np.concatenate(self._integer).astype(bool), z0, h)


def _build(state: _State, k: int, milp: bool) -> _Spec:
    """The relaxation (``milp``: the exact big-M encoding) of layers ``< k``
    under the current bounds, with the region's constraints and ℓ2 cuts."""
    b = _Builder()
    prev = _region_part(b, state.region)
    hs: list[np.ndarray] = []
    z0 = prev
    for j in range(k):
        z, prev = _layer_part(b, state.net.layers[j], prev, state.lower[j], state.upper[j], milp)
        hs.append(prev)
        if j == 0:
            z0 = z
    if state.l2 is not None:
        for w, rhs in state.l2.cuts:
            b.rows([(w.reshape(1, -1), z0)], [-np.inf], [rhs])
    return b.spec(z0, hs)


def _region_part(b: _Builder, region: Region) -> np.ndarray:
    """Input columns ``x`` (first), bounded by the bounding box, and an ℓ1
    ball's constraints ``t >= |x - c|``, ``Σ t <= r``."""
    box = region.bounding_box()
    x = b.cols(box.lo, box.hi)
    if isinstance(region, Ball) and region.p == 1.0:
        n, c, r = x.size, region.center, region.radius
        t = b.cols(np.zeros(n), np.full(n, r))  # |x_i - c_i| <= r on the ball
        eye = sp.identity(n)
        b.rows([(eye, t), (-eye, x)], -c, np.inf)  # t - x >= -c
        b.rows([(eye, t), (eye, x)], c, np.inf)  # t + x >= c
        b.rows([(np.ones((1, n)), t)], [-np.inf], [r])
    return x


def _layer_part(b: _Builder, layer: Layer, prev: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                milp: bool) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``z`` and ``h`` of one layer with their rows; returns both."""
    n = lo.size
    eye = sp.identity(n)
    z = b.cols(lo, hi)
    b.rows([(eye, z), (-layer.W, prev)], layer.b, layer.b)  # z - W h_prev = b, exactly
    if layer.activation is IDENTITY:
        h = b.cols(lo, hi)
        b.rows([(eye, h), (-eye, z)], np.zeros(n), np.zeros(n))
        return z, h
    h = b.cols(np.maximum(lo, 0.0), np.maximum(hi, 0.0))  # inactive: fixed at 0 by its bounds
    active = np.flatnonzero(lo >= 0)
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    if active.size:
        e = sp.identity(active.size)
        b.rows([(e, h[active]), (-e, z[active])], np.zeros(active.size), np.zeros(active.size))
    if unstable.size:
        e = sp.identity(unstable.size)
        b.rows([(e, h[unstable]), (-e, z[unstable])], np.zeros(unstable.size), np.inf)  # h >= z
        if milp:
            _big_m_rows(b, h[unstable], z[unstable], lo[unstable], hi[unstable])
        else:
            s, rhs = _chord(lo[unstable], hi[unstable])
            b.rows([(e, h[unstable]), (sp.diags(-s), z[unstable])], np.full(unstable.size, -np.inf), rhs)
    return z, h


def _chord(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, R)`` such that ``max(z, 0) - s z <= R`` for every real
    ``z ∈ [lo, hi]``, exactly: the ReLU's upper chord ``h <= s (z - lo)``
    with ``s = fl(hi / (hi - lo))``, its right-hand side ``-s lo`` enlarged so
    that rounding cannot cut off any point of the ReLU graph.

    ``max(z, 0) - s z`` is convex in ``z``, so its maximum over ``[lo, hi]``
    is at an end: ``-s lo`` or ``hi (1 - s)``. Both are evaluated in float64
    and the larger is padded by 4 ulps (``4 eps``) of the magnitudes
    involved, more than the three roundings (each at most half an ulp) lose.
    """
    s = hi / (hi - lo)
    at_lo = -s * lo
    at_hi = hi - s * hi
    magnitude = np.abs(s * lo) + np.abs(hi) + np.abs(s * hi)
    return s, np.maximum(at_lo, at_hi) + 8 * _U * magnitude + _TINY


def _big_m_rows(b: _Builder, h: np.ndarray, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """The exact MILP encoding of ``h = max(z, 0)`` on ``[lo, hi]`` with a
    binary ``a``: ``h <= hi a`` and ``h <= z - lo (1 - a)`` (with ``h >= z``
    and ``h >= 0`` already there). The coefficients are ``lo`` and ``hi``
    themselves, so no rounding enters."""
    n = lo.size
    a = b.cols(np.zeros(n), np.ones(n), integer=True)
    e = sp.identity(n)
    b.rows([(e, h), (sp.diags(-hi), a)], np.full(n, -np.inf), np.zeros(n))  # h - hi a <= 0
    b.rows([(e, h), (-e, z), (sp.diags(-lo), a)], np.full(n, -np.inf), -lo)  # h - z - lo a <= -lo




# ============================================================================ MILP
def _milp_layer(state: _State, k: int, seconds: float) -> None:
    """MILP bounds for the neurons of layer ``k`` that the LP left unstable."""
    todo = state.unstable(k)
    if todo.size == 0 or state.out_of_time():
        return
    spec = _build(state, k, milp=True)
    if not spec.integer.any():  # no unstable ReLU below: the MILP is the LP just solved
        return
    layer = state.net.layers[k]
    for i in todo:
        i = int(i)
        c = _objective(spec, layer.W[i], k)
        for maximize in _sides(state.lower[k][i], state.upper[k][i]):
            if not state.open(k, i) or state.out_of_time():
                break
            sign = 1.0 if maximize else -1.0
            value = sign * _milp_max(spec, sign * c, min(seconds, state.budget.left()), layer.b[i])
            state.details["milp_solves"] += 1
            _record(state, k, i, value, layer.b[i], maximize)


def _milp_max(spec: _Spec, c: np.ndarray, seconds: float, bias: float) -> float:
    """HiGHS's MIP dual bound on ``max c·v``, widened by :func:`_milp_margin`;
    ``inf`` when HiGHS gives none. Sound up to HiGHS's tolerances only.
    A fresh solver per call, so that its time limit is this call's."""
    highspy = highspy_module()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", max(float(seconds), 1e-3))
    h.passModel(highs_model(spec.A, spec.row_lo, spec.row_hi, spec.col_lo, spec.col_hi, c, spec.integer))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.run()
    status = h.modelStatusToString(h.getModelStatus()).lower()
    info = h.getInfo()
    dual = float(info.mip_dual_bound)
    if not math.isfinite(dual) or "infeasible" in status or "unbounded" in status:
        return math.inf
    if info.mip_node_count < 0 or (status == "optimal" and dual < float(info.objective_function_value)):
        return math.inf  # not a MIP run, or a dual bound below a feasible value: do not trust it
    tol = max(_option(h, name) for name in
              ("mip_feasibility_tolerance", "primal_feasibility_tolerance", "dual_feasibility_tolerance"))
    return dual + _milp_margin(c, bias, spec.col_lo, spec.col_hi, tol)


def _milp_margin(c: np.ndarray, bias: float, col_lo: np.ndarray, col_hi: np.ndarray, tol: float) -> float:
    """Safety margin added to a MIP dual bound:
    ``10 · tol · (Σ_j |c_j| max(1, |l_j|, |u_j|) + |b| + 1)``, ``tol`` the
    largest of HiGHS's MIP, primal and dual feasibility tolerances.

    HiGHS accepts points that violate rows and bounds by up to its
    feasibility tolerances (absolute, or relative to the values involved)
    and LP relaxations whose reduced costs are off by up to its dual
    tolerance. Either moves each objective variable, or its term, by about
    ``tol · max(1, |v_j|)``, hence the objective by the sum above; the factor
    10 allows for accumulation over the rows that define the variables. This
    is an allowance, not a proof.
    """
    scale = np.maximum(1.0, np.maximum(np.abs(col_lo), np.abs(col_hi)))
    return _MILP_SAFETY * tol * (float(np.abs(c) @ scale) + abs(float(bias)) + 1.0)


def _option(h: Any, name: str) -> float:
    value = h.getOptionValue(name)
    return float(value[1] if isinstance(value, tuple) else value)


