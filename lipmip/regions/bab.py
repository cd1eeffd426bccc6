"""The exact local Lipschitz constant by branch and bound over activation regions (``method="bab"``).

The search tree is the one of :class:`~lipmip.regions.enumerate.RegionEnumerator`
(and reuses its machinery): a node fixes the states of some unstable ReLUs,
layer by layer; it stays alive only while its cell (the inputs with those
states) meets the input region with full dimension, shown by a point whose
rigorous slack (margin to every fixed neuron's hyperplane and to the region's
boundary) is positive, or refuted by the same maximum-slack LP as the
enumeration, warm-started from the parent's point (and, for cells of zero
width, its exact Farkas certificate). The child on the side of the parent's
interior point inherits it; the other child is settled lazily, when it is
taken off the queue (so nodes pruned by their bound never cost an LP), first
by trying points across the new hyperplane from the parent's point (its
mirror image and nearer ones: one forward pass each), then by the LP.

**Node bound.** At a node of layer ``k`` the cell's map ``z_k = A x + a`` is
known (rigorous float64 error bounds ``EA``, ``Ea``), and the input gradient
of ``c·f`` is ``g = Σ_j H_j d_j A_j``, with ``d_j`` the slope of neuron ``j``
(fixed by the node, or either of {0, 1} for a neuron not branched yet) and
``H`` the gradient with respect to the layer's outputs. ``H`` is bounded by
interval back-propagation from ``C`` (``c``, or the identity for a Jacobian)
through the later layers, with their slopes taken from forward bounds
recomputed over the node: the next layer's pre-activations are the node's
exact affine map of the fixed neurons plus an interval for the unbranched
ones, bounded over the region; deeper layers by interval propagation; all
intersected with the global (``bounds``) ones, and ``H`` with the global
backward bounds. For the (up to ``vertices``) unbranched neurons of largest
weight every 0/1 choice of their slopes is enumerated, the other unbranched
ones enter as intervals: for each choice this gives entrywise ``|g| <= B``
(``|J| <= B`` for a Jacobian), every product rounded outward, and the node
bound is the largest over the choices of the dual norm ``‖B‖_{α*}`` (scalar
query) or the operator norm ``‖B‖_{α→α}`` (``∞→∞``: max row sum, ``1→1``:
max column sum, ``2→2``: a Collatz-Wielandt bound on the spectral norm of the
nonnegative ``B``, which dominates ``‖J‖₂``). It bounds the local value of
every activation region inside the node, in exact arithmetic.

**Leaves.** A node with every neuron fixed is one activation region. Its upper
side is :func:`~lipmip.regions.exact.local_value_upper` of its Jacobian and
error bound. When the cell has a certified interior point, the lower side is
the better of :func:`~lipmip.regions.exact.best_region_witness` (difference quotients
of two float64 forward passes, rounding subtracted) and :func:`_affine_witness`
(a chord of the cell whose two ends are checked, by a forward pass with
rigorous error bounds, to have the cell's pattern; the quotient then follows
from the cell's Jacobian to about 1e-13 relative, where two forward passes
lose up to ~1e-8 on small regions). Leaves without a certified interior point
(cells too thin to certify or rule out) count for the upper bound only.

**Search.** The incumbent (a verified lower bound) is seeded by
:func:`lipmip.estimate.sample_lower_bound`. Nodes are taken best-first (largest
bound); each is followed by a depth-first dive along the children that contain
the node's interior point (free of LPs), which reaches leaves, hence
incumbents, early; the other children go on the queue with their bounds. A
node whose bound is at most the incumbent (times ``1 + 1e-10``) is pruned. The
next neuron to split is, within the node's layer, the one with the largest
contribution ``Σ_rows max|H_j| ‖A_j‖_{α*}`` to the bound
(``branching="order"``: the lowest index). When the queue holds ``max_queue``
nodes the search turns depth-first (new children are taken first) until it
shrinks again, which bounds its memory.

**Guarantees.** ``lower`` is the best verified witness (never a bound or a
solver number). ``upper`` is the largest of the bounds of the open nodes, of
the upper values of the finished leaves and of the bounds of pruned nodes
(each at most the incumbent at the time): every full-dimensional activation
region lies in one of those, so ``lower <= L <= upper`` in exact arithmetic
for the float64 weights, whether the search finished or stopped at a limit
(``status="time_limit"`` / ``"node_limit"``). When it finishes, ``status`` is
``"optimal"`` if the two sides agree to 1e-9 relative, or if the upper side
is a certified leaf whose float64 value the lower side reaches (the gap is
then that leaf's own rounding bound, e.g. for a gradient that cancels to
~0); else ``"bounded"`` (an ambiguous leaf holds the upper side).
"""

from __future__ import annotations

import heapq
import inspect
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lipmip.activations import IDENTITY
from lipmip.bounds import METHODS as BOUND_METHODS
from lipmip.bounds import compute
from lipmip.bounds.backward import gradient_bounds, interval_times_matrix, interval_times_slopes
from lipmip.bounds.base import Bounds
from lipmip.bounds.interval import propagate_interval
from lipmip.domains import Ball, Box, Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.estimate.sampling import sample_lower_bound
from lipmip.network import Network
from lipmip.norms import vector_norm
from lipmip.query import Query
from lipmip.regions.enumerate import (
    ActivationRegion,
    EnumerationStats,
    RegionEnumerator,
    _Node,
    pre_activations_with_error,
)
from lipmip.regions.exact import best_region_witness, kink_step, local_value_upper, region_step
from lipmip.result import LipschitzBound, Witness
from lipmip.rounding import UNIT_ROUNDOFF as _U
from lipmip.rounding import gamma as _gamma
from lipmip.witness import free_coordinates, recertified

__all__ = ["bab_lipschitz", "check_workers", "BRANCHING_RULES"]

Progress = Callable[[float, float | None, float | None], None]

BRANCHING_RULES = ("gradient", "order")
PRUNE_RTOL = 1e-10  # a node whose bound is within this (relative) of the incumbent is pruned
OPTIMAL_RTOL = 1e-9  # status "optimal" when the finished search's sides agree to this
PROGRESS_EVERY = 0.5  # seconds between progress calls (at most)
_TINY = 1e-300
_FLOOR = 1e-290  # smaller witness values are not certified (as in lipmip.witness)
_MAX_VERTICES = 10
# all 0/1 vectors of each length up to _MAX_VERTICES (rows), for the exhaustive part of a node bound
_VERTICES = [((np.arange(2**t)[:, None] >> np.arange(t)[None, :]) & 1).astype(np.float64) for t in range(_MAX_VERTICES + 1)]


@dataclass
class _Counters:
    """What the search did (reported in the result's ``details``)."""

    nodes: int = 0  # nodes expanded (split on one neuron)
    bound_evaluations: int = 0
    leaves: int = 0  # activation regions reached and evaluated
    ambiguous_leaves: int = 0  # of those, without a certified interior point
    pruned: int = 0  # nodes (leaves included) discarded by their bound
    infeasible: int = 0  # children proved empty (LP bound or exact certificate)
    max_queue_size: int = 0  # most open nodes at once
    depth_first_pops: int = 0  # nodes taken depth-first because the queue was full
    mirror_hits: int = 0  # children shown full-dimensional by a point across the parent's hyperplane (no LP)
    lps: int = 0  # feasibility LPs (from the enumerator's statistics)
    lp_solves: int = 0
    chunks: int = 0  # parts of the tree handed to worker processes (workers > 1)

    def add(self, other: "_Counters") -> None:
        """Add ``other``'s counts (the largest queue: the larger)."""
        for name, value in other.__dict__.items():
            current = getattr(self, name)
            setattr(self, name, max(current, value) if name == "max_queue_size" else current + value)


@dataclass
class Outcome:
    """Where a search (or a part of one) ended: everything the result needs.
    ``open_bound`` is the largest bound of a node still open (-inf: none),
    ``leaf_upper`` the largest upper value of a finished leaf with
    ``best_leaf_value`` its float64 local value (inf when not certified),
    ``pruned_bound`` the largest bound of a pruned node, ``stopped`` the limit
    that stopped it (None: finished)."""

    witness: Witness | None
    leaf_upper: float
    best_leaf_value: float
    pruned_bound: float
    open_bound: float
    open_nodes: int
    count: _Counters
    stopped: str | None

    @property
    def incumbent(self) -> float:
        return 0.0 if self.witness is None else float(self.witness.value)

    @property
    def upper(self) -> float:
        """The rigorous upper bound of the module docstring."""
        return max(self.open_bound, self.leaf_upper, self.pruned_bound)

    def merge(self, other: "Outcome") -> "Outcome":
        """Both parts together (disjoint parts of one search tree)."""
        witness = other.witness if other.incumbent > self.incumbent else self.witness
        leaf = other if other.leaf_upper > self.leaf_upper else self
        count = _Counters()
        count.add(self.count)
        count.add(other.count)
        return Outcome(witness=witness, leaf_upper=leaf.leaf_upper, best_leaf_value=leaf.best_leaf_value,
                       pruned_bound=max(self.pruned_bound, other.pruned_bound),
                       open_bound=max(self.open_bound, other.open_bound), open_nodes=self.open_nodes + other.open_nodes,
                       count=count, stopped=self.stopped or other.stopped)


@dataclass(eq=False)
class _Open:
    """An open node with its bound and the neuron to split next (None: the
    layer is complete)."""

    node: _Node
    bound: float
    j: int | None


class _OpenNodes:
    """The open nodes: a max-heap on the bound, and a depth-first stack used
    while the heap holds ``cap`` nodes or more (bounds the memory)."""

    def __init__(self, cap: int):
        self.cap = cap
        self._heap: list[tuple[float, int, _Open]] = []
        self._stack: list[_Open] = []
        self._seq = 0
        self.largest = 0

    def __len__(self) -> int:
        return len(self._heap) + len(self._stack)

    def push(self, item: _Open) -> None:
        if len(self._heap) >= self.cap:
            self._stack.append(item)
        else:
            self._seq += 1
            heapq.heappush(self._heap, (-item.bound, self._seq, item))
        self.largest = max(self.largest, len(self))

    def pop(self) -> tuple[_Open, bool]:
        """The next node: the newest of the depth-first stack when it is not
        empty, else the one with the largest bound; and whether it came from
        the stack."""
        if self._stack:
            return self._stack.pop(), True
        return heapq.heappop(self._heap)[2], False

    def max_bound(self) -> float:
        """The largest bound of an open node (-inf when none is open)."""
        best = -self._heap[0][0] if self._heap else -math.inf
        return max([best] + [item.bound for item in self._stack])


class _Pusher:
    """Stands in for the enumerator's stack in :meth:`RegionEnumerator._branch`:
    each child it pushes is bounded and queued (or pruned) instead."""

    def __init__(self, search: "_BranchAndBound"):
        self.search = search

    def append(self, child: _Node) -> None:
        self.search._offer(child)


class _BranchAndBound(RegionEnumerator):
    """The search of the module docstring on top of the enumerator's tree."""

    def __init__(
        self,
        net: Network,
        region: Region,
        query: Query,
        *,
        forward: Bounds,
        max_queue: int,
        branching: str,
        vertices: int,
    ):
        super().__init__(net, region, max_regions=None, time_limit=None, bounds=forward)
        self.query = query
        self.branching = branching
        self.free = free_coordinates(region)
        self.C = np.eye(net.output_dim) if query.c is None else query.c[None, :].astype(np.float64)
        self.global_grad = gradient_bounds(forward, self.C)
        self.dual = query.dual_input_norm
        self.vertices = vertices
        self.open = _OpenNodes(max_queue)
        self.count = _Counters()
        self.incumbent = 0.0
        self.witness: Witness | None = None
        self.leaf_upper = -math.inf  # largest upper value of a finished leaf
        self.best_leaf_value = math.inf  # that leaf's float64 local value (inf: not certified)
        self.pruned_bound = -math.inf  # largest bound of a pruned node (each <= the incumbent then)
        self.root_bound = math.inf
        self.stopped: str | None = None
        self._pusher = _Pusher(self)
        self._start = 0.0
        self._deadline = math.inf
        self._node_limit: int | None = None
        self._progress: Progress | None = None
        self._stop: Callable[[], bool] | None = None
        self._last_progress = 0.0
        # set by the parallel driver (lipmip.regions.bab_parallel): the incumbent value and the node count
        # shared by every worker (objects with a .value and a .get_lock()), or None
        self.shared_incumbent: Any = None
        self.shared_nodes: Any = None

    # ------------------------------------------------------------------ driver
    def search(
        self,
        seed: Witness | None,
        *,
        start: float,
        time_limit: float | None,
        node_limit: int | None,
        progress: Progress | None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Run the search from the root (``seed``: a verified starting
        incumbent) until it finishes or a limit stops it (``self.stopped``)."""
        self.search_begin(seed, start=start, time_limit=time_limit, node_limit=node_limit, progress=progress,
                          stop=stop)
        self.run()

    def search_begin(self, seed: Witness | None, *, start: float, time_limit: float | None, node_limit: int | None,
                     progress: Progress | None, stop: Callable[[], bool] | None = None) -> None:
        """Set the limits, take ``seed`` as the incumbent and queue the root
        with its bound; :meth:`run` goes on from there."""
        self.set_limits(start=start, time_limit=time_limit, node_limit=node_limit, progress=progress, stop=stop)
        if seed is not None:
            self._improve(seed)
        root = self._root()
        bound, j = self._evaluate(root)
        self.root_bound = bound
        self._queue_or_prune(_Open(root, bound, j))

    def reset(self, open_nodes: _OpenNodes) -> None:
        """Forget every result and counter (not the network's set-up), with
        ``open_nodes`` as the (empty) queue: a worker's state before it takes
        the next part of the tree."""
        self.open = open_nodes
        self.count = _Counters()
        self.stats = EnumerationStats(unstable_neurons=self.bounds.num_unstable)
        self.incumbent, self.witness = 0.0, None
        self.leaf_upper, self.best_leaf_value, self.pruned_bound = -math.inf, math.inf, -math.inf
        self.stopped = None

    def set_limits(self, *, start: float, time_limit: float | None, node_limit: int | None,
                   progress: Progress | None, stop: Callable[[], bool] | None = None) -> None:
        """The limits (counted from ``start``, a ``time.perf_counter()``), the
        progress callback and the ``stop`` request (checked before each node)
        of the next :meth:`run`."""
        self._start = start
        self._deadline = math.inf if time_limit is None else start + time_limit
        self._node_limit = node_limit
        self._progress = progress
        self._stop = stop
        self._last_progress = time.perf_counter()

    def run(self, *, until_open: int | None = None) -> None:
        """Take open nodes until none is left, a limit stops the search, or
        (``until_open``) that many nodes are open."""
        while self.open and self.stopped is None:
            if until_open is not None and len(self.open) >= until_open:
                return
            reason = self._limit_reached()
            if reason is not None:
                self.stopped = reason
                break
            self._report()
            item, from_stack = self.open.pop()
            self.count.depth_first_pops += from_stack
            if self._prunable(item.bound):
                self._prune(item.bound)
                continue
            if item.node.needs_lp and not self._settle(item):
                self.count.infeasible += 1
                continue
            self._dive(item)

    def upper(self) -> float:
        """The rigorous upper bound of the module docstring."""
        return max(self.open.max_bound(), self.leaf_upper, self.pruned_bound)

    def outcome(self) -> Outcome:
        """Where the search stands (counters include the enumerator's LPs)."""
        count = _Counters(**self.count.__dict__)
        count.lps, count.lp_solves = self.stats.lps, self.stats.lp_solves
        return Outcome(witness=self.witness, leaf_upper=self.leaf_upper, best_leaf_value=self.best_leaf_value,
                       pruned_bound=self.pruned_bound, open_bound=self.open.max_bound(), open_nodes=len(self.open),
                       count=count, stopped=self.stopped)

    def take_open(self) -> list[_Open]:
        """Remove and return every open node, largest bound first."""
        items = []
        while self.open:
            items.append(self.open.pop()[0])
        return sorted(items, key=lambda item: -item.bound)

    def _dive(self, item: _Open) -> None:
        """Carry a node down along the children holding its interior point;
        the other children are queued by :meth:`_offer`."""
        depth = self.net.depth
        node = item.node
        while True:
            if item.j is None:  # the current layer is complete
                if node.k + 1 == depth:
                    self._leaf(node)
                    return
                self._next_layer(node, self.net.layers[node.k].activation is IDENTITY)
                item.bound, item.j = self._evaluate(node)
                if self._prunable(item.bound):
                    self._prune(item.bound)
                    return
                continue
            reason = self._limit_reached()
            if reason is not None:
                self.stopped = reason
                self.open.push(item)
                return
            self.count.nodes += 1
            if self.shared_nodes is not None:
                with self.shared_nodes.get_lock():
                    self.shared_nodes.value += 1
            inline = self._branch(node, item.j, self._pusher)
            if inline is None:
                return
            item.bound, item.j = self._evaluate(inline)
            if self._prunable(item.bound):
                self._prune(item.bound)
                return

    def _offer(self, child: _Node) -> None:
        """Bound a new child that still needs its LP and queue it (or prune it)."""
        bound, j = self._evaluate(child)
        self._queue_or_prune(_Open(child, bound, j))

    def _queue_or_prune(self, item: _Open) -> None:
        if self._prunable(item.bound):
            self._prune(item.bound)
        else:
            self.open.push(item)
            self.count.max_queue_size = max(self.count.max_queue_size, self.open.largest)

    def _prunable(self, bound: float) -> bool:
        """Whether no region below a node with this bound can beat the
        incumbent: this search's, or any worker's (each verified)."""
        incumbent = self.incumbent
        if self.shared_incumbent is not None:
            incumbent = max(incumbent, self.shared_incumbent.value)
        return bound <= incumbent * (1 + PRUNE_RTOL)

    def _prune(self, bound: float) -> None:
        self.count.pruned += 1
        self.pruned_bound = max(self.pruned_bound, bound)

    def _improve(self, witness: Witness) -> None:
        if witness.value > self.incumbent:
            self.incumbent = float(witness.value)
            self.witness = witness
            if self.shared_incumbent is not None:
                with self.shared_incumbent.get_lock():
                    self.shared_incumbent.value = max(self.shared_incumbent.value, self.incumbent)

    def _limit_reached(self) -> str | None:
        nodes = self.count.nodes if self.shared_nodes is None else self.shared_nodes.value
        if self._node_limit is not None and nodes >= self._node_limit:
            return "node_limit"
        if time.perf_counter() > self._deadline:
            return "time_limit"
        if self._stop is not None and self._stop():
            return "stopped"
        return None

    def _report(self) -> None:
        if self._progress is None:
            return
        now = time.perf_counter()
        if now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            report_progress(self._progress, now - self._start, self.incumbent if self.witness is not None else None,
                            self.upper(), len(self.open))

    # ------------------------------------------------------------------ feasibility
    def _settle(self, item: _Open) -> bool:
        """Settle a child's feasibility: a point across the new hyperplane
        (:meth:`_mirror`) or the enumerator's LP test. False: proved empty."""
        node = item.node
        if self._mirror(node):
            self.count.mirror_hits += 1
            return True
        return self._solve_child(node)

    def _mirror(self, node: _Node) -> bool:
        """Try points across the child's new hyperplane from the parent's
        point (its mirror image, and nearer ones): one with a rigorous slack
        above ``eps`` in the child's cell proves it full-dimensional."""
        parent = node.parent_point
        if parent is None:
            return False
        g = self.geometry
        rows = node.rows
        flat, scale = int(rows.flat[-1]), float(rows.scale[-1])
        j = flat - int(self._offsets[node.k])
        z = float(node.z[flat])  # the parent's pre-activation at its point (children share it)
        grad = node.lmap.A[j] * self.free
        step = z / (scale * scale)
        for tau in (1.0, 0.5, 0.125):
            x = parent - (1 + tau) * step * grad
            x = np.where(self.free, x, g.center)
            zs, z_err = pre_activations_with_error(self.net, x, self._abs_weights)
            slack = self._slack(rows, x, zs, z_err)
            if slack > g.eps:
                node.point, node.z, node.z_err, node.slack = x, zs, z_err, slack
                node.certified, node.needs_lp = True, False
                return True
        return False

    # ------------------------------------------------------------------ leaves
    def _leaf(self, node: _Node) -> None:
        """Evaluate one activation region: rigorous upper value, and a verified
        witness at its certified interior point."""
        region = self._finish(node)
        J = region.jacobian * self.free
        E = region.jacobian_error * self.free
        upper = float(local_value_upper(self.query, J, E))
        if self._prunable(upper):
            self._prune(upper)
            return
        self.count.leaves += 1
        value = np.asarray(self.query.local_value(J), dtype=np.float64).reshape(1)
        if upper > self.leaf_upper:
            self.leaf_upper = upper
            self.best_leaf_value = float(value[0]) if region.certified_interior else math.inf
        if not region.certified_interior:
            self.count.ambiguous_leaves += 1
            return
        for witness in (best_region_witness(self.net, self.query, self.region, [region], value),
                        _affine_witness(self.net, self.query, self.region, region, self.free)):
            if witness is not None:
                self._improve(witness)
        self._report()

    # ------------------------------------------------------------------ node bound
    def _evaluate(self, node: _Node) -> tuple[float, int | None]:
        """``(bound, j)``: an upper bound on the local value of every activation
        region inside ``node`` (module docstring), and the neuron of the node's
        layer to split next (None when the layer is complete)."""
        self.count.bound_evaluations += 1
        k, lm = node.k, node.lmap
        n_k = lm.a.size
        if self.net.layers[k].activation is IDENTITY:
            on = np.ones(n_k, dtype=bool)
            unknown = np.zeros(n_k, dtype=bool)
        else:
            fixed = lm.forced.copy()
            flat = node.rows.flat
            fixed[flat[flat >= self._offsets[k]] - self._offsets[k]] = True
            unknown = ~fixed
            on = fixed & node.state
        H_lo, H_hi = self._output_gradient(node, on, unknown)
        candidates = np.flatnonzero(unknown)
        score = None
        if candidates.size:
            weight = np.maximum(np.abs(H_lo), np.abs(H_hi)).sum(axis=0)[candidates]
            score = weight * np.linalg.norm(lm.A[candidates] * self.free, ord=self.dual, axis=1)  # a heuristic: plain float
        # exhaustive over the slopes of the (up to) `vertices` unbranched neurons that weigh most
        top = candidates[np.argsort(-score, kind="stable")[: self.vertices]] if score is not None else candidates
        rest = unknown.copy()
        rest[top] = False
        # P = H D with D_j in {0, 1} for the other unbranched neurons, 0 for the enumerated ones
        P_lo = np.where(on, H_lo, np.where(rest, np.minimum(H_lo, 0.0), 0.0))
        P_hi = np.where(on, H_hi, np.where(rest, np.maximum(H_hi, 0.0), 0.0))
        g_lo, g_hi = interval_times_matrix(P_lo, P_hi, lm.A)
        # the float64 map A is within EA of the exact one (enumerated neurons included)
        P_abs = np.maximum(np.abs(P_lo), np.abs(P_hi))
        P_abs[:, top] = np.maximum(np.abs(H_lo[:, top]), np.abs(H_hi[:, top]))
        slop = (P_abs @ lm.EA) * (1 + _gamma(n_k + 2))
        g_lo, g_hi = np.nextafter(g_lo - slop, -np.inf), np.nextafter(g_hi + slop, np.inf)
        if top.size:
            # each enumerated neuron, when active, adds H_j A_j (an interval, rows x inputs)
            A_top = lm.A[top][:, None, :]
            prods = np.stack([H_lo.T[top][:, :, None] * A_top, H_hi.T[top][:, :, None] * A_top])
            M_lo, M_hi = prods.min(axis=0), prods.max(axis=0)
            D = _VERTICES[top.size]
            lo = g_lo + np.einsum("vt,tmn->vmn", D, M_lo)
            hi = g_hi + np.einsum("vt,tmn->vmn", D, M_hi)
            pad = _gamma(top.size + 3) * (np.maximum(np.abs(M_lo), np.abs(M_hi)).sum(axis=0)
                                          + np.maximum(np.abs(g_lo), np.abs(g_hi)))
            lo, hi = lo - pad, hi + pad
        else:
            lo, hi = g_lo[None], g_hi[None]
        B = np.maximum(np.abs(lo), np.abs(hi)) * self.free
        bound = self._norm_upper(B)
        if not candidates.size:
            return bound, None
        if self.branching == "order":
            return bound, int(candidates[0])
        return bound, int(candidates[int(np.argmax(score))])

    def _output_gradient(self, node: _Node, on: np.ndarray, unknown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on ``H``, the gradient of ``C f`` with respect to the outputs
        of the node's layer, over every pattern of the later layers that the
        node's forward bounds allow."""
        k, L = node.k, self.net.depth
        if k + 1 == L:
            return self.C, self.C
        forward = self._node_forward(node, on, unknown)
        H_lo, H_hi = self.C, self.C
        for i in range(L - 1, k, -1):
            lo, hi = forward[i - k - 1]
            if self.net.layers[i].activation is IDENTITY:
                s_lo = s_hi = np.ones(lo.size)
            else:
                s_lo, s_hi = (lo >= 0).astype(np.float64), (hi > 0).astype(np.float64)
            H_lo, H_hi = interval_times_matrix(*interval_times_slopes(H_lo, H_hi, s_lo, s_hi), self.net.layers[i].W)
            # the global backward bounds hold over a superset of patterns: intersect
            H_lo = np.maximum(H_lo, self.global_grad.lower[i])
            H_hi = np.minimum(H_hi, self.global_grad.upper[i])
        return H_lo, H_hi

    def _node_forward(self, node: _Node, on: np.ndarray, unknown: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Bounds on the pre-activations of layers ``k+1 .. L-1`` valid on the
        node's cell: layer ``k+1`` from the cell's exact map of the fixed active
        neurons (range over the region) plus an interval for the unbranched
        ones; later layers by interval propagation; all intersected with the
        global bounds."""
        k, lm = node.k, node.lmap
        A, a, EA, Ea = self._compose(k + 1, lm, on)
        lo, hi = self._range(A, a, EA, Ea)
        if unknown.any():
            h_hi = np.maximum(np.minimum(lm.z_hi[unknown], self.bounds.upper[k][unknown]), 0.0)
            W = self.net.layers[k + 1].W[:, unknown]
            u_lo, u_hi = propagate_interval(W, np.zeros(W.shape[0]), np.zeros(h_hi.size), h_hi)
            lo = np.nextafter(lo + u_lo, -np.inf)
            hi = np.nextafter(hi + u_hi, np.inf)
        lo = np.maximum(lo, self.bounds.lower[k + 1])
        hi = np.minimum(hi, self.bounds.upper[k + 1])
        out = [(lo, hi)]
        for i in range(k + 2, self.net.depth):
            act = self.net.layers[i - 1].activation
            layer = self.net.layers[i]
            lo, hi = propagate_interval(layer.W, layer.b, act.forward(lo), act.forward(hi))
            lo = np.maximum(lo, self.bounds.lower[i])
            hi = np.minimum(hi, self.bounds.upper[i])
            out.append((lo, hi))
        return out

    def _norm_upper(self, B: np.ndarray) -> float:
        """A rigorous upper bound on the query's norm of any matrix ``J`` with
        ``|C J| <= B[v]`` entrywise for some ``v`` (``B`` nonnegative, shape
        ``(vertices, rows, n)``): the largest over ``v``."""
        _, m, n = B.shape
        if not np.any(B):
            return 0.0
        if self.query.c is not None:
            value = float(vector_norm(B[:, 0, :], self.dual, axis=-1).max()) * (1 + _gamma(n + 4))
        elif self.query.input_norm == math.inf:
            value = float(B.sum(axis=2).max()) * (1 + _gamma(n + 2))
        elif self.query.input_norm == 1.0:
            value = float(B.sum(axis=1).max()) * (1 + _gamma(m + 2))
        else:
            value = max(_spectral_upper(b) for b in B)
        return float(np.nextafter(value, np.inf)) + _TINY


def _affine_witness(net: Network, query: Query, region: Region, leaf: ActivationRegion, free: np.ndarray) -> Witness | None:
    """A witness pair on the chord through a leaf's interior point along the
    query's steepest direction, certified through the leaf's exact affine map.

    Both ends are checked to lie in the region and to have the leaf's
    activation pattern, from a float64 forward pass with a rigorous bound on
    its rounding (:func:`~lipmip.regions.enumerate.pre_activations_with_error`;
    a pre-activation of 0 fits either state). The cell of a pattern is convex
    and the network equals the cell's affine map ``Ĵ x + â`` on it (ReLU is
    continuous), so ``q(b) - q(a) = Ĵ (b - a)`` exactly, with ``|Ĵ - J| <= E``
    (the enumerator's error bound). The quotient is then bounded below from
    the float64 product ``J (b - a)`` and rigorous bounds on every rounding.
    Unlike a difference of two forward passes, whose rounding error is
    relative to the outputs, this error is relative to the quotient itself,
    so the witness reproduces the leaf's value to about 1e-13 even on tiny
    regions. ``None`` when no end point passes the checks.
    """
    J = leaf.jacobian * free
    E = leaf.jacobian_error * free
    d = query.steepest_direction(J) * free
    x = leaf.point
    if not np.any(d) or not np.all(np.isfinite(d)):
        return None
    forward = min(kink_step(net, x, d), region_step(region, x, d))
    backward = min(kink_step(net, x, -d), region_step(region, x, -d))
    if not (math.isfinite(forward) and math.isfinite(backward)) or forward + backward <= 0:
        return None
    relu = np.concatenate([np.full(layer.out_features, layer.activation is not IDENTITY) for layer in net.layers])
    on = np.concatenate(leaf.pattern)[relu]
    for shrink in (1 - 1e-7, 1 - 1e-4, 0.9, 0.5):
        a = np.where(free, x - shrink * backward * d, x)
        b = np.where(free, x + shrink * forward * d, x)
        if _in_cell(net, region, a, relu, on) and _in_cell(net, region, b, relu, on):
            value = _affine_quotient(query, J, E, a, b)
            return Witness(a=a, b=b, value=value) if value > 0 else None
    return None


def _in_cell(net: Network, region: Region, x: np.ndarray, relu: np.ndarray, on: np.ndarray) -> bool:
    """Whether ``x`` lies in ``region`` and every ReLU's pre-activation at
    ``x`` (exact arithmetic) has the sign of the pattern ``on`` (0 fits both)."""
    if not _inside(region, x):
        return False
    z, err = pre_activations_with_error(net, x)
    z, err = z[relu], err[relu]
    return bool(np.all(np.where(on, z - err >= 0, z + err <= 0)))


def _inside(region: Region, x: np.ndarray) -> bool:
    """Rigorous membership (a ball's norm is computed with rounding: a
    relative margin covers it)."""
    if isinstance(region, Box):
        return bool(np.all((x >= region.lo) & (x <= region.hi)))
    assert isinstance(region, Ball)
    n = x.size
    dist = float(vector_norm(x - region.center, region.p))
    return dist * (1 + _gamma(2 * n + 4)) + _TINY <= region.radius * (1 - 2 * _U)


def _affine_quotient(query: Query, J: np.ndarray, E: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """A lower bound on ``‖Ĵ (b - a)‖ / ‖b - a‖_α`` (``|c·Ĵ (b - a)|`` for a
    scalar query) for every ``Ĵ`` with ``|Ĵ - J| <= E``, in exact arithmetic."""
    m, n = J.shape
    delta = b - a  # |exact - delta| <= u |delta| (one rounding)
    abs_delta = np.abs(delta)
    absJ = np.abs(J)
    if query.c is not None:
        absc = np.abs(query.c)
        g = query.c @ J
        q = float(g @ delta)
        err = (float(absc @ E @ abs_delta) * (1 + _U) + (_U + _gamma(m + 1)) * float(absc @ absJ @ abs_delta)
               + _gamma(n + 1) * float(np.abs(g) @ abs_delta)) * (1 + _gamma(m + n + 4))
        numerator = (abs(q) - err) * (1 - 2 * _U)
    else:
        v = J @ delta
        e = (E @ abs_delta * (1 + _U) + (_U + _gamma(n + 1)) * (absJ @ abs_delta)) * (1 + _gamma(n + 4))
        g = _gamma(m + 4)
        numerator = float(vector_norm(v, query.output_norm)) * (1 - g) - float(vector_norm(e, query.output_norm)) * (1 + g)
    dist = float(vector_norm(delta, query.input_norm)) * (1 + _U) * (1 + _gamma(n + 2))
    if not dist > 0 or not numerator > 0:
        return 0.0
    value = numerator / dist * (1 - 4 * _U)
    return value if value >= _FLOOR else 0.0


def _spectral_upper(B: np.ndarray) -> float:
    """A rigorous upper bound on ``‖B‖₂`` for a nonnegative matrix ``B``.

    Collatz-Wielandt: for a nonnegative square ``M`` and any positive ``v``,
    ``ρ(M) <= max_i (M v)_i / v_i``. With ``M = BᵀB`` (``ρ(M) = ‖B‖₂²``) and
    ``v`` near the top right singular vector the bound is tight. Every
    quantity is a sum of nonnegative terms, so the float64 results are within
    a relative ``γ`` of the exact ones, which the final factor covers.
    """
    m, n = B.shape
    scale = float(B.max())
    if not scale > 0:
        return 0.0
    S = B / scale  # the true maximum is attained at a float: no overflow below, and exact up to rounding
    try:
        _, _, vt = np.linalg.svd(S, full_matrices=False)
        v = np.abs(vt[0])
    except np.linalg.LinAlgError:  # pragma: no cover - SVD failures are very rare
        v = np.ones(n)
    v = np.maximum(v, 1e-8 * float(v.max()) if v.max() > 0 else 1.0)
    for _ in range(2):  # a little power iteration on BᵀB polishes v
        w = S.T @ (S @ v)
        if not np.all(np.isfinite(w)) or w.max() <= 0:
            break
        w = w / w.max()
        v = np.maximum(w, 1e-8)
    ratio = float(np.max((S.T @ (S @ v)) / v))
    ratio *= 1 + 2 * _gamma(m + n + 8)
    value = math.sqrt(ratio) * (1 + 4 * _U) * scale
    return value * (1 + 4 * _U)


def _check_options(
    time_limit: Any, node_limit: Any, max_queue: Any, branching: Any, bounds: Any, vertices: Any, progress: Any,
    stop: Any,
) -> None:
    if time_limit is not None and (
        isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.integer, np.floating))
        or not time_limit > 0 or not math.isfinite(float(time_limit))
    ):
        raise InvalidQueryError(f"time_limit must be a positive number of seconds or None, got {time_limit!r}")
    if node_limit is not None and (
        isinstance(node_limit, bool) or not isinstance(node_limit, (int, np.integer)) or node_limit < 0
    ):
        raise InvalidQueryError(f"node_limit must be an integer >= 0 or None, got {node_limit!r}")
    if isinstance(max_queue, bool) or not isinstance(max_queue, (int, np.integer)) or max_queue < 1:
        raise InvalidQueryError(f"max_queue must be a positive integer, got {max_queue!r}")
    if branching not in BRANCHING_RULES:
        raise InvalidQueryError(f"unknown branching rule {branching!r}; available: {', '.join(BRANCHING_RULES)}")
    if not isinstance(bounds, str) or bounds not in BOUND_METHODS:
        raise InvalidQueryError(f"unknown bound method {bounds!r}; available: {', '.join(BOUND_METHODS)}")
    if vertices is not None and (
        isinstance(vertices, bool) or not isinstance(vertices, (int, np.integer)) or not 0 <= vertices <= _MAX_VERTICES
    ):
        raise InvalidQueryError(f"vertices must be an integer from 0 to {_MAX_VERTICES} or None, got {vertices!r}")
    if progress is not None and not callable(progress):
        raise InvalidQueryError(f"progress must be a callable (seconds, incumbent, bound) or None, got {progress!r}")
    if stop is not None and not callable(stop):
        raise InvalidQueryError(f"stop must be a callable returning a bool, or None, got {stop!r}")


def report_progress(progress: Progress, seconds: float, incumbent: float | None, bound: float, open_nodes: int) -> None:
    """``progress(seconds, incumbent, bound)``, with ``open_nodes=`` as well
    when the callback takes that keyword (as :class:`lipmip.progress.SolveProgress` does)."""
    try:
        takes = "open_nodes" in inspect.signature(progress).parameters
    except (TypeError, ValueError):  # a callable without a signature
        takes = False
    if takes:
        progress(seconds, incumbent, bound, open_nodes=open_nodes)
    else:
        progress(seconds, incumbent, bound)


def check_workers(workers: Any) -> None:
    """Refuse a worker count that is not an integer >= 1."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InvalidQueryError(f"workers must be an integer >= 1, got {workers!r}")


def bab_lipschitz(
    net: Network,
    region: Region,
    query: Query,
    *,
    time_limit: float | None = None,
    node_limit: int | None = None,
    samples: int = 2000,
    seed: int = 0,
    bounds: str = "linear",
    branching: str = "gradient",
    max_queue: int = 20_000,
    vertices: int | None = None,
    incumbent: Witness | None = None,
    workers: int = 1,
    stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> LipschitzBound:
    """Certified ``[lower, upper]`` on the local Lipschitz constant of ``query``
    over ``region`` by branch and bound over activation regions (see the module
    docstring for the algorithm and what is guaranteed); exact when it
    finishes (``status="optimal"``).

    ``time_limit`` (seconds, including the bounds and the sampling) and
    ``node_limit`` (nodes split; 0 gives the root bound) stop the search
    early with a sound bracket (``status="time_limit"`` / ``"node_limit"``).
    ``samples``/``seed``: the sampled incumbent
    (:func:`lipmip.estimate.sample_lower_bound`); ``incumbent``: a starting
    witness from elsewhere (e.g. another method's), re-certified here and
    used instead of sampling. ``bounds``: the global
    forward bounds (``"interval"``, ``"linear"``, ``"lp"``). ``branching``:
    ``"gradient"`` (largest contribution to the node bound) or ``"order"``.
    ``max_queue``: open nodes kept best-first before the search turns
    depth-first. ``progress(seconds, incumbent, bound)`` is called at most
    every 0.5 s with the verified incumbent (None before there is one) and
    the current rigorous upper bound. ``workers``: processes that share the
    search (:mod:`lipmip.regions.bab_parallel`); the value does not depend
    on it (when the search finishes, every worker count gives the exact
    value), only the time, the counters and which witness attains it.

    Box coordinates with ``lo == hi`` are constants: the constant is over the
    free coordinates (``details["fixed_coordinates"]`` counts the others).
    """
    start = time.perf_counter()
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__}")
    region = as_region(region)
    region.check_network(net)
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    query.check_network(net)
    _check_options(time_limit, node_limit, max_queue, branching, bounds, vertices, progress, stop)
    check_workers(workers)
    if incumbent is None:
        seed_witness, seed_from = sample_lower_bound(net, region, query, samples=samples, seed=seed).witness, "sample"
    else:
        seed_witness, seed_from = recertified(net, query, region, incumbent), "incumbent"
    if vertices is None:
        vertices = 3 if query.c is None and query.input_norm == 2.0 else 8
    options = {"max_queue": int(max_queue), "branching": branching, "vertices": int(vertices)}
    search = _BranchAndBound(net, region, query, forward=compute(net, region, bounds), **options)
    limits = {"time_limit": None if time_limit is None else float(time_limit),
              "node_limit": None if node_limit is None else int(node_limit)}
    if workers == 1:
        search.search(seed_witness, start=start, progress=progress, stop=stop, **limits)
        outcome = search.outcome()
    else:
        from lipmip.regions.bab_parallel import parallel_search

        outcome = parallel_search(search, seed_witness, workers=int(workers), options=options, start=start,
                                  progress=progress, stop=stop, **limits)
    lower = outcome.incumbent
    upper = outcome.upper
    if not upper >= 0:  # pragma: no cover - some cell of a region with interior always survives
        raise LipmipError(f"internal error: branch and bound ended with no upper bound ({upper!r})")
    if outcome.stopped is not None:
        status = outcome.stopped
    else:
        # the sides agree to 1e-9; or the upper side is a certified leaf whose float64 value the lower side
        # reaches, and the gap is only that leaf's rounding bound (e.g. a gradient that cancels to ~0, whose
        # value no witness can certify)
        rounding_only = upper == outcome.leaf_upper and outcome.best_leaf_value <= lower * (1 + OPTIMAL_RTOL)
        status = "optimal" if upper - lower <= OPTIMAL_RTOL * upper or rounding_only else "bounded"
    fixed = int(np.count_nonzero(~search.free))
    count = outcome.count
    details: dict[str, Any] = {
        "nodes": count.nodes,
        "bound_evaluations": count.bound_evaluations,
        "leaves": count.leaves,
        "ambiguous_leaves": count.ambiguous_leaves,
        "pruned": count.pruned,
        "infeasible": count.infeasible,
        "open_nodes": outcome.open_nodes,
        "max_queue_size": count.max_queue_size,
        "depth_first_pops": count.depth_first_pops,
        "mirror_hits": count.mirror_hits,
        "lps": count.lps,
        "lp_solves": count.lp_solves,
        "unstable_neurons": search.bounds.num_unstable,
        "bounds": search.bounds.method,
        "branching": branching,
        "root_bound": search.root_bound,
        "sampled_lower" if seed_from == "sample" else "incumbent_lower": 0.0 if seed_witness is None else seed_witness.value,
        "lower_from": seed_from if outcome.witness is seed_witness else "bab",
        "workers": int(workers),
        "chunks": count.chunks,
        "fixed_coordinates": fixed,
        "seconds": time.perf_counter() - start,
    }
    if fixed:
        details["note"] = (f"{fixed} box coordinate(s) with lo == hi are constants: the Lipschitz constant is "
                           "over the free coordinates only")
    return LipschitzBound(
        lower=lower,
        upper=upper,
        method="bab",
        seconds=time.perf_counter() - start,
        witness=outcome.witness,
        query=query.to_dict(),
        region=region.to_dict(),
        details=details,
        status=status,
    )
