"""Enumeration of the activation regions of a ReLU network inside an input region.

An *activation region* is the set of inputs with one activation pattern
(which ReLUs are on). With the pattern fixed the network is affine, so each
region is a convex polyhedron (the same pattern cannot occur on two separate
pieces) and the network's Jacobian is constant on it. :func:`enumerate_regions`
lists every region that meets the input region with full dimension (within the
free coordinates of a box).

The search is a depth-first tree over the neurons, layer by layer in network
order. A node fixes the states of the neurons so far; with all earlier layers
fixed, the current layer's pre-activations are affine in ``x`` and are carried
along as ``(A, a)`` with elementwise bounds on their float64 error. A neuron
gets its state without branching when

* ``lipmip.bounds.compute(net, region, "linear")`` proves it stable over the
  whole region, or
* the node's affine map proves it stable over the whole region, or
* its float64 gradient on the free coordinates is zero: its sign is read off
  its value when that is clear of rounding, and otherwise from the exact
  rational map of the cell (an exactly constant neuron takes the exact sign of
  the constant, 0 counting as inactive; a gradient that only cancelled in
  float64 is replaced by its correctly rounded exact value and branched on).

Otherwise the node branches. Each node carries a point with (ideally) positive
slack (see :mod:`lipmip.regions.geometry`); the child on that point's side
inherits it with no LP, the other child gets one LP (:meth:`RegionGeometry.max_slack`):

* a concrete point whose slack, recomputed from a float64 forward pass minus a
  rigorous bound on its rounding, exceeds a small ``eps`` makes the child
  feasible, with that point as its interior point (``certified_interior``);
* a rigorous LP bound ``<= 0`` on the slack proves the child empty: pruned;
* so does an exact rational Farkas certificate that no point has positive
  slack (:meth:`RegionGeometry.certify_no_interior`), tried when the LP is
  inconclusive: it settles cells whose largest slack is exactly 0
  (coinciding hyperplanes, hyperplanes through one point, hyperplanes on the
  region's boundary), which float bounds can never rule out;
* anything else (a cell thinner than ``eps``, or solver trouble) is kept with
  ``certified_interior=False``.

What is guaranteed: every activation region meeting the input region with
full dimension is in the list (in exact arithmetic, for the float64 weights),
once, and each listed region's affine map is within its stated error bounds of
the exact one. Regions with ``certified_interior=True`` are genuine: their
``point`` lies in the interior of the region with the stated pattern (checked
with a rigorous bound on the rounding of the forward pass). The others may be
empty or lower-dimensional; they are kept so that maxima over the list stay
upper bounds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Iterator

import numpy as np

from lipmip.activations import IDENTITY
from lipmip.bounds import Bounds, compute
from lipmip.domains import Region, as_region
from lipmip.errors import AmbiguousRegionsError, InvalidQueryError, LipmipError, RegionLimitError
from lipmip.network import Network
from lipmip.norms import vector_norm
from lipmip.regions.geometry import ExactRow, NeuronRows, RegionGeometry
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma as _gamma

__all__ = [
    "ActivationRegion",
    "AmbiguousRegionsError",
    "EnumerationStats",
    "RegionEnumerator",
    "enumerate_regions",
    "count_regions",
    "pre_activations_with_error",
]

_SUBNORMAL = np.finfo(np.float64).smallest_subnormal




@dataclass(frozen=True, eq=False)
class ActivationRegion:
    """One activation region met by the input region.

    ``pattern``: one bool array per layer, True = active (identity layers all
    True). On the region ``f(x) = jacobian @ x + offset`` (float64), with
    ``|exact - computed| <= jacobian_error`` and ``offset_error`` elementwise.
    ``point``: an interior point when ``certified_interior``, else the best
    point the LP found. ``slack``: the point's slack (a Euclidean margin to
    the region's boundary and to every branched neuron's hyperplane, after
    subtracting rounding; positive when certified).
    """

    pattern: tuple[np.ndarray, ...]
    jacobian: np.ndarray
    offset: np.ndarray
    jacobian_error: np.ndarray
    offset_error: np.ndarray
    point: np.ndarray
    slack: float
    certified_interior: bool

    def pattern_key(self) -> bytes:
        """A hashable key of the pattern (equal keys, equal patterns)."""
        return np.concatenate(self.pattern).tobytes()


@dataclass
class EnumerationStats:
    """Counters of one enumeration."""

    regions: int = 0
    ambiguous: int = 0
    nodes: int = 0
    lps: int = 0
    lp_solves: int = 0
    pruned_by_lp: int = 0
    pruned_exactly: int = 0
    unstable_neurons: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def pre_activations_with_error(
    net: Network, x: np.ndarray, abs_weights: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All pre-activations at ``x`` concatenated (network order) and a bound
    on their float64 rounding error, elementwise (exact-arithmetic network).

    Per layer, ``|fl(W h + b) - (W h + b)| <= γ_{n+1} (|W| |h| + |b|)``; the
    error of ``h`` is pushed through ``|W|`` (activations are 1-Lipschitz);
    the bound is inflated to cover its own rounding and underflow.
    """
    h = np.asarray(x, dtype=np.float64)
    e = np.zeros_like(h)
    zs, errs = [], []
    for i, layer in enumerate(net.layers):
        absW = np.abs(layer.W) if abs_weights is None else abs_weights[i]
        n = layer.in_features + 2
        z = layer.W @ h + layer.b
        err = (absW @ e + _gamma(n) * (absW @ np.abs(h) + np.abs(layer.b))) * (1 + _gamma(n + 2)) + n * _SUBNORMAL
        zs.append(z)
        errs.append(err)
        h = layer.activation.forward(z)
        e = err
    return np.concatenate(zs), np.concatenate(errs)


@dataclass(frozen=True, eq=False)
class _LayerMap:
    """One layer's pre-activations on a cell: ``z = A x + a`` in float64 with
    ``|Â - A| <= EA``, ``|â - a| <= Ea`` (hats: exact arithmetic), plus what
    the search derives from it (all per neuron):

    ``beta``/``err``: ``z(x) = A (x - c) + beta`` within ``err`` for every x
    of the region; ``scale``: 2-norm of the gradient on the free coordinates
    (positive for every neuron that is not ``forced``); ``forced`` /
    ``forced_state``: neurons whose state needs no branching, and their state;
    ``z_lo``/``z_hi``: the map's range over the region (ReLU layers only).
    """

    A: np.ndarray
    a: np.ndarray
    EA: np.ndarray
    Ea: np.ndarray
    beta: np.ndarray
    err: np.ndarray
    scale: np.ndarray
    forced: np.ndarray
    forced_state: np.ndarray
    z_lo: np.ndarray | None = None  # rigorous bounds on ``A x + a`` over the whole region (ReLU layers)
    z_hi: np.ndarray | None = None


@dataclass(eq=False)
class _Node:
    """A node of the search tree (mutable; copied when it branches)."""

    k: int  # current layer
    p: int  # position in that layer's list of branching neurons
    patterns: tuple[np.ndarray, ...]  # finished layers
    state: np.ndarray  # current layer (forced entries already set)
    lmap: _LayerMap
    rows: NeuronRows
    point: np.ndarray
    z: np.ndarray  # pre-activations at point (flat) and their error bound
    z_err: np.ndarray
    slack: float
    certified: bool
    needs_lp: bool = False
    parent_point: np.ndarray | None = field(default=None)


class RegionEnumerator:
    """Depth-first enumeration of the activation regions of ``net`` that meet
    ``region`` with full dimension. Iterate over it for the regions;
    ``stats`` holds the counters. See the module docstring for guarantees.

    Raises :class:`RegionLimitError` when more than ``max_regions`` regions
    are found or ``time_limit`` seconds pass (the number of regions grows
    exponentially with the number of unstable neurons: this is meant for
    small networks).
    """

    def __init__(
        self,
        net: Network,
        region: Region,
        *,
        max_regions: int | None = 10_000,
        time_limit: float | None = None,
        bounds: Bounds | None = None,
    ):
        if not isinstance(net, Network):
            raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__}")
        region = as_region(region)
        region.check_network(net)
        self.max_regions = _check_limit(max_regions, "max_regions", integer=True)
        self.time_limit = _check_limit(time_limit, "time_limit", integer=False)
        self.net = net
        self.region = region
        self.geometry = RegionGeometry(region)
        self.bounds = compute(net, region, "linear") if bounds is None else _check_bounds(bounds, net)
        self.stats = EnumerationStats(unstable_neurons=self.bounds.num_unstable)
        self._abs_weights = [np.abs(layer.W) for layer in net.layers]
        self._offsets = np.cumsum([0] + [layer.out_features for layer in net.layers])
        self._exact_cache: dict[int, tuple[list[list[Fraction]], list[Fraction]]] = {}
        self._start = 0.0

    # ------------------------------------------------------------------ public
    def __iter__(self) -> Iterator[ActivationRegion]:
        self._start = time.perf_counter()
        self.stats = EnumerationStats(unstable_neurons=self.bounds.num_unstable)
        stack = [self._root()]
        try:
            while stack:
                self._tick()
                node = stack.pop()
                if node.needs_lp and not self._solve_child(node):
                    continue
                yield from self._advance(node, stack)
        finally:
            self.stats.seconds = time.perf_counter() - self._start

    def run(self) -> list[ActivationRegion]:
        """All regions, as a list."""
        return list(self)

    # ------------------------------------------------------------------ search
    def _root(self) -> _Node:
        net, g = self.net, self.geometry
        first = net.layers[0]
        zero = np.zeros_like(first.W)
        lmap = self._layer_map(0, first.W, first.b, zero, np.zeros(first.out_features), ())
        x = g.center.copy()
        z, z_err = pre_activations_with_error(net, x, self._abs_weights)
        slack = g.region_slack(x)
        return _Node(0, 0, (), lmap.forced_state.copy(), lmap, NeuronRows.empty(net.input_dim), x, z, z_err,
                     slack, slack > g.eps)

    def _advance(self, node: _Node, stack: list[_Node]) -> Iterator[ActivationRegion]:
        """Carry ``node`` down the tree, pushing the children it branches off
        onto ``stack``; yields the region when it reaches the output."""
        net = self.net
        while True:
            self._tick()
            layer = net.layers[node.k]
            branching = np.flatnonzero(~node.lmap.forced)
            while node.p < branching.size:
                j = int(branching[node.p])
                node.p += 1
                if self._branch(node, j, stack) is None:
                    return
            if node.k + 1 == net.depth:
                yield self._finish(node)
                return
            self._next_layer(node, layer.activation is IDENTITY)

    def _branch(self, node: _Node, j: int, stack: list[_Node]) -> _Node | None:
        """Split ``node`` on neuron ``j`` of its layer. The child on the side of
        the node's point continues in place (returned); the other side (both
        sides when the point is not clearly on one) goes onto the stack to be
        settled by an LP. Returns None when nothing continues in place."""
        self.stats.nodes += 1
        flat = int(self._offsets[node.k]) + j
        s = float(node.lmap.scale[j])
        z, err = float(node.z[flat]), float(node.z_err[flat])
        margin = (abs(z) - err) / s
        point_side = (z > 0) if node.certified and margin > self.geometry.eps else None
        for active in (False, True):
            if active == point_side:
                continue
            child = self._child(node, j, active)
            child.needs_lp = True
            child.parent_point = node.point
            stack.append(child)
        if point_side is None:
            return None
        inline = self._child(node, j, point_side, in_place=True)
        inline.slack = min(node.slack, margin)
        return inline

    def _child(self, node: _Node, j: int, active: bool, in_place: bool = False) -> _Node:
        lm = node.lmap
        sign = 1.0 if active else -1.0
        coef, tcoef, rhs = self.geometry.neuron_row(lm.A[j], float(lm.beta[j]), float(lm.err[j]), sign, float(lm.scale[j]))
        rows = node.rows.with_row(coef, tcoef, rhs, int(self._offsets[node.k]) + j, sign, float(lm.scale[j]))
        child = node if in_place else replace(node, state=node.state.copy())
        child.state[j] = active
        child.rows = rows
        return child

    def _solve_child(self, node: _Node) -> bool:
        """Settle a child by one LP (see the module docstring). Returns False
        when the child is proved empty."""
        g = self.geometry
        res = g.max_slack(node.rows, node.parent_point)
        self.stats.lps += 1
        self.stats.lp_solves += res.solves
        node.needs_lp = False
        x = res.x if res.x is not None else node.point
        z, z_err = pre_activations_with_error(self.net, x, self._abs_weights)
        slack = self._slack(node.rows, x, z, z_err)
        if not slack > g.eps:
            if res.bound <= 0:
                self.stats.pruned_by_lp += 1
                return False
            # tiny pre-activations can have a clear margin that rounding hides
            slack = max(slack, self._exact_slack(node.rows, x))
        node.point, node.z, node.z_err, node.slack = x, z, z_err, slack
        node.certified = slack > g.eps
        if not node.certified and g.certify_no_interior(self._exact_rows(node)):
            self.stats.pruned_exactly += 1
            return False
        return True

    def _exact_rows(self, node: _Node) -> list[ExactRow]:
        """The node's branched constraints ``σ_j ẑ_j(x) >= 0`` with the exact
        (rational) affine maps ``ẑ_j`` of the float64 network on the cell."""
        layer_of = np.searchsorted(self._offsets, node.rows.flat, side="right") - 1
        maps = self._exact_maps(node.patterns, int(layer_of.max()))
        rows = []
        for flat, layer, sign in zip(node.rows.flat, layer_of, node.rows.sign):
            A, a = maps[layer]
            j = int(flat - self._offsets[layer])
            s = Fraction(int(sign))
            rows.append(([s * v for v in A[j]], s * a[j]))
        return rows

    def _exact_maps(self, patterns: tuple[np.ndarray, ...], upto: int) -> list[tuple[list[list[Fraction]], list[Fraction]]]:
        """Exact ``(Â_k, â_k)`` with ``z_k = Â_k x + â_k`` on the cell of
        ``patterns``, for layers ``0..upto``."""
        A, a = self._exact_weights(0)
        maps = [(A, a)]
        for k in range(1, upto + 1):
            W, b = self._exact_weights(k)
            on = np.flatnonzero(patterns[k - 1]).tolist()
            A = [[sum((W[o][i] * A[i][c] for i in on), Fraction(0)) for c in range(self.net.input_dim)] for o in range(len(W))]
            a = [sum((W[o][i] * a[i] for i in on), b[o]) for o in range(len(W))]
            maps.append((A, a))
        return maps

    def _exact_weights(self, k: int) -> tuple[list[list[Fraction]], list[Fraction]]:
        if k not in self._exact_cache:
            layer = self.net.layers[k]
            self._exact_cache[k] = (
                [[Fraction(float(w)) for w in row] for row in layer.W],
                [Fraction(float(v)) for v in layer.b],
            )
        return self._exact_cache[k]

    def _exact_slack(self, rows: NeuronRows, x: np.ndarray) -> float:
        """Like :meth:`_slack` with the pre-activations at ``x`` computed in
        exact rational arithmetic (rounded down to float64 at the end)."""
        layer_of = np.searchsorted(self._offsets, rows.flat, side="right") - 1
        h = [Fraction(float(v)) for v in x]
        zs: list[Fraction] = []
        for k in range(int(layer_of.max(initial=-1)) + 1):
            W, b = self._exact_weights(k)
            z = [sum((w * v for w, v in zip(row, h)), bk) for row, bk in zip(W, b)]
            zs.extend(z)
            h = [max(v, Fraction(0)) for v in z] if self.net.layers[k].activation is not IDENTITY else z
        margins = [int(sign) * zs[flat] / Fraction(float(s)) for flat, sign, s in zip(rows.flat, rows.sign, rows.scale)]
        margin = float(min(margins)) if margins else math.inf
        return min(self.geometry.region_slack(x), float(np.nextafter(margin, -np.inf)))

    def _slack(self, rows: NeuronRows, x: np.ndarray, z: np.ndarray, z_err: np.ndarray) -> float:
        """Slack of ``x`` in the cell of ``rows``: the region's and each row's
        margin, with the rounding of the forward pass subtracted."""
        region_slack = self.geometry.region_slack(x)
        if not len(rows):
            return region_slack
        margins = (rows.sign * z[rows.flat] - z_err[rows.flat]) / rows.scale
        return min(region_slack, float(margins.min()))

    def _next_layer(self, node: _Node, identity: bool) -> None:
        """Fix the current layer's pattern and move ``node`` to the next layer:
        ``A' = W D A``, ``a' = W D a + b`` with their error bounds."""
        lm = node.lmap
        d = np.ones(lm.a.size, dtype=bool) if identity else node.state.copy()
        k = node.k + 1
        A, a, EA, Ea = self._compose(k, lm, d)
        node.patterns = node.patterns + (d,)
        node.k, node.p = k, 0
        node.lmap = self._layer_map(k, A, a, EA, Ea, node.patterns)
        node.state = node.lmap.forced_state.copy()

    def _compose(self, k: int, lm: _LayerMap, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Layer ``k``'s map ``A' = W D A``, ``a' = W D a + b`` from layer ``k-1``'s
        map ``lm`` and slopes ``d`` (bool; False rows are dropped), with bounds
        ``EA'``, ``Ea'`` on its float64 error."""
        layer = self.net.layers[k]
        absW = self._abs_weights[k]
        DA, Da = lm.A * d[:, None], lm.a * d
        n = layer.in_features + 2
        grow = 1 + _gamma(n + 2)
        A = layer.W @ DA
        a = layer.W @ Da + layer.b
        EA = (absW @ (lm.EA * d[:, None]) + _gamma(n) * (absW @ np.abs(DA))) * grow
        Ea = (absW @ (lm.Ea * d) + _gamma(n) * (absW @ np.abs(Da) + np.abs(layer.b))) * grow + n * _SUBNORMAL
        return A, a, EA, Ea

    def _finish(self, node: _Node) -> ActivationRegion:
        """The region of a leaf: the output layer's map after its activation."""
        lm = node.lmap
        identity = self.net.layers[-1].activation is IDENTITY
        d = np.ones(lm.a.size, dtype=bool) if identity else node.state.copy()
        self.stats.regions += 1
        if not node.certified:
            self.stats.ambiguous += 1
        if self.max_regions is not None and self.stats.regions > self.max_regions:
            raise RegionLimitError(
                f"activation-region enumeration found more than max_regions={self.max_regions} regions "
                f"({self.stats.regions} so far, {self.stats.unstable_neurons} unstable ReLUs over the region) "
                "and stopped; the number of regions grows exponentially with the unstable ReLUs, so "
                "enumeration is meant for small networks or small regions (raise max_regions to go on)"
            )
        return ActivationRegion(
            pattern=node.patterns + (d,),
            jacobian=lm.A * d[:, None],
            offset=lm.a * d,
            jacobian_error=lm.EA * d[:, None],
            offset_error=lm.Ea * d,
            point=node.point,
            slack=float(node.slack),
            certified_interior=bool(node.certified),
        )

    def _layer_map(
        self, k: int, A: np.ndarray, a: np.ndarray, EA: np.ndarray, Ea: np.ndarray, patterns: tuple[np.ndarray, ...]
    ) -> _LayerMap:
        """Wrap layer ``k``'s affine map (on the cell of ``patterns``) with its
        derived per-neuron data and the states that need no branching."""
        if self.net.layers[k].activation is IDENTITY:
            beta, err, scale = self._derived(A, a, EA, Ea)
            ones = np.ones(a.size, dtype=bool)
            return _LayerMap(A, a, EA, Ea, beta, err, scale, ones, ones)
        A, a, EA, Ea, const_on, const_off = self._settle_flat_neurons(k, A, a, EA, Ea, patterns)
        beta, err, scale = self._derived(A, a, EA, Ea)
        z_lo, z_hi = self._range(A, a, EA, Ea)
        off = const_off | (self.bounds.upper[k] <= 0) | (z_hi <= 0)
        on = ~off & (const_on | (self.bounds.lower[k] >= 0) | (z_lo >= 0))
        return _LayerMap(A, a, EA, Ea, beta, err, scale, on | off, on, z_lo, z_hi)

    def _derived(self, A: np.ndarray, a: np.ndarray, EA: np.ndarray, Ea: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``beta = A c + a``, ``err`` (bound on ``|ẑ(x) - A (x - c) - beta|``
        over the region) and ``scale`` (2-norm of the free part of each row)."""
        g = self.geometry
        n = A.shape[1] + 2
        beta = A @ g.center + a
        err = (EA @ g.abs_max + Ea + _gamma(n) * (np.abs(A) @ g.abs_center + np.abs(a))) * (1 + _gamma(n + 2))
        free_A = A[:, g.free]
        scale = vector_norm(free_A, 2.0, axis=1) if free_A.shape[1] else np.zeros(A.shape[0])
        return beta, err + n * _SUBNORMAL, scale

    def _settle_flat_neurons(
        self, k: int, A: np.ndarray, a: np.ndarray, EA: np.ndarray, Ea: np.ndarray, patterns: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Neurons whose float64 gradient on the free coordinates is zero.

        Their value is ``beta`` within ``err`` on the whole region; when that
        leaves the sign open, the exact rational map of the cell decides: an
        exactly zero gradient gives a constant whose exact sign is the state
        (0 counts as inactive), and a nonzero one replaces the row by its
        correctly rounded value (error half an ulp), which makes it an
        ordinary neuron. Returns the (possibly refined) map and the masks of
        neurons settled active and inactive.
        """
        beta, err, scale = self._derived(A, a, EA, Ea)
        flat = ~(scale > 0)
        const_on = flat & (beta - err >= 0)
        const_off = flat & (beta + err <= 0)
        unsure = np.flatnonzero(flat & ~const_on & ~const_off)
        if not unsure.size:
            return A, a, EA, Ea, const_on, const_off
        exact_A, exact_a = self._exact_maps(patterns, k)[k]
        A, a, EA, Ea = A.copy(), a.copy(), EA.copy(), Ea.copy()
        free = np.flatnonzero(self.geometry.free).tolist()
        fixed = np.flatnonzero(~self.geometry.free).tolist()
        for j in unsure:
            row = exact_A[j]
            if any(row[i] != 0 for i in free):
                A[j] = [float(v) for v in row]
                a[j] = float(exact_a[j])
                EA[j] = 2 * _U * np.abs(A[j]) + _SUBNORMAL
                Ea[j] = 2 * _U * abs(a[j]) + _SUBNORMAL
                continue
            value = exact_a[j] + sum((row[i] * Fraction(float(self.region.lo[i])) for i in fixed), Fraction(0))
            const_on[j], const_off[j] = value > 0, value <= 0
        return A, a, EA, Ea, const_on, const_off

    def _range(self, A: np.ndarray, a: np.ndarray, EA: np.ndarray, Ea: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rigorous bounds on the cell's affine map ``A x + a`` (exact) over the
        whole region: a superset of its values on the cell."""
        g = self.geometry
        lo, hi = self.region.linear_range(A)
        slop = (EA @ g.abs_max + Ea) * (1 + _gamma(A.shape[1] + 2)) + 2 * _U * (np.abs(lo) + np.abs(hi) + np.abs(a)) + 1e-300
        return lo + a - slop, hi + a + slop

    def _tick(self) -> None:
        if self.time_limit is None:
            return
        elapsed = time.perf_counter() - self._start
        if elapsed > self.time_limit:
            raise RegionLimitError(
                f"activation-region enumeration passed its time_limit of {self.time_limit:g} s "
                f"({elapsed:.2f} s) with {self.stats.regions} regions found so far "
                f"({self.stats.unstable_neurons} unstable ReLUs over the region); the number of regions "
                "grows exponentially with the unstable ReLUs, so enumeration is meant for small networks "
                "or small regions"
            )


def _check_limit(value: object, name: str, integer: bool) -> float | int | None:
    if value is None:
        return None
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, bool) or not ok_type or not value > 0 or (not integer and not math.isfinite(float(value))):
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise InvalidQueryError(f"{name} must be {kind} or None, got {value!r}")
    return int(value) if integer else float(value)


def _check_bounds(bounds: Bounds, net: Network) -> Bounds:
    if not isinstance(bounds, Bounds) or bounds.net.widths != net.widths or bounds.net.activations != net.activations:
        raise InvalidQueryError("bounds must be a lipmip.bounds.Bounds computed for this network and region")
    return bounds


def enumerate_regions(
    net: Network,
    region: Region,
    *,
    max_regions: int | None = 10_000,
    time_limit: float | None = None,
    bounds: Bounds | None = None,
) -> list[ActivationRegion]:
    """Every activation region of ``net`` meeting ``region`` with full
    dimension (see the module docstring for what is guaranteed), in
    depth-first order. ``bounds`` (optional) are pre-activation bounds valid
    over ``region``; by default ``lipmip.bounds.compute(net, region, "linear")``.
    Raises :class:`RegionLimitError` past ``max_regions`` regions or
    ``time_limit`` seconds."""
    return RegionEnumerator(net, region, max_regions=max_regions, time_limit=time_limit, bounds=bounds).run()


def count_regions(
    net: Network,
    region: Region,
    *,
    max_regions: int | None = 10_000,
    time_limit: float | None = None,
    bounds: Bounds | None = None,
    strict: bool = True,
) -> int:
    """The number of activation regions meeting ``region`` with full dimension.

    Exact when every region found has a certified interior point. Otherwise
    (cells too thin to certify or rule out) ``strict=True`` raises
    :class:`AmbiguousRegionsError`, and ``strict=False`` returns the number of
    certified regions, a lower bound on the true count (the count with the
    ambiguous ones added is an upper bound).
    """
    enumerator = RegionEnumerator(net, region, max_regions=max_regions, time_limit=time_limit, bounds=bounds)
    regions = enumerator.run()
    certified = sum(r.certified_interior for r in regions)
    ambiguous = len(regions) - certified
    if ambiguous and strict:
        raise AmbiguousRegionsError(
            f"{ambiguous} of {len(regions)} cells could be neither certified nor ruled out (thinner than the "
            f"enumeration's tolerance); the count lies between {certified} and {len(regions)}"
        )
    return certified
