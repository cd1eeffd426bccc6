"""The Lipschitz MIP (after LipMIP, Jordan and Dimakis 2020).

:func:`build_lipschitz_mip` writes the local Lipschitz constant of a query
over an input region as one mixed-integer program whose optimum is

    max over x in the region and over activation patterns a consistent with x
        of the query's local value at (x, a):  ‖Jᵀc‖_{α*}  or  ‖J‖_{α→α}

(an activation pattern is *consistent* with x when a = 1 for z(x) > 0 and
a = 0 for z(x) < 0, either value at z(x) = 0). The model has three parts:

* **Region**: the input x. A box or ℓ∞ ball gives variable bounds; an ℓ1
  ball adds t >= |x - c|, Σ t <= r; an ℓ2 ball adds d = x - c and the
  quadratic constraint Σ d² <= r² (an MIQCP), or, with
  ``l2_region="outer"``, the linear outer approximation ``|d_i| <= r`` and
  Σ |d_i| <= √n r (a MILP whose optimum is then only an upper bound).
* **Forward pass**: z_k = W_k h_{k-1} + b_k with z_k within the forward
  bounds, and h_k = σ(z_k) by a ReLU encoding of :mod:`lipmip.formulate.relu`
  with binaries a_k (a = 1 ⇔ active) for the unstable neurons.
* **Masked backward pass**: g_L = c (fixed; ``Query.vector`` gives one row
  per output, or for 2→2 a variable u with ‖u‖₂ <= 1), then for
  k = L .. 1: δ_k = a_k ⊙ g_k and g_{k-1} = W_kᵀ δ_k. The product of the binary
  a and the bounded continuous g (L <= g <= U from
  :func:`~lipmip.bounds.backward.gradient_bounds`) is linearised exactly::

      δ <= U a,   δ >= L a,   δ <= g - L (1 - a),   δ >= g - U (1 - a)

  (stably active and identity neurons: δ = g; inactive ones: δ = 0). The
  binaries a_k are the *same* variables as in the forward pass: that is
  what ties the gradient to an activation pattern the region can realise.

The objective is a norm of g_0 over the free input coordinates (a box
coordinate with lo == hi contributes nothing):

* input norm ∞ (scalar): ‖g_0‖₁ = Σ t_i with t_i = |g_0,i| (sign binary s_i
  where the bounds of g_0,i straddle 0; t_i = ±g_0,i otherwise);
* input norm 1 (scalar): ‖g_0‖_∞ = max_i |g_0,i| with one selection binary
  per (coordinate, sign) pair;
* input norm 2 (scalar): Σ g_0,i², a nonconvex quadratic objective (MIQCP;
  :attr:`LipschitzMIP.value_from_objective` takes the square root);
* vector ∞→∞: max_r ‖row_r(J)‖₁: a gradient pass per output row (sharing the
  binaries), t_rj = |J_rj| by sign binaries, and one row-selection binary
  e_r per row with τ <= Σ_j t_rj + T (1 - e_r), Σ e_r = 1 (T bounds every
  row sum); vector 1→1 is the same with columns;
* vector 2→2: ‖J‖₂² = max over ‖u‖₂ <= 1 of ‖Jᵀu‖₂²: the backward pass starts
  from the variable u (gradient bounds by Cauchy–Schwarz from the bounds on
  every output row), the objective is Σ g_0,i² (MIQCP).

What is guaranteed (exact arithmetic, exact solver): the MIP optimum is an
upper bound on the local Lipschitz constant L (every full-dimensional
activation region has an interior point whose pattern is feasible, with
objective its local value), and equals L for networks in general position
(Jordan and Dimakis, Thm. 2), where every pattern feasible at a point is
the pattern of a full-dimensional region touching it. With the outer ℓ2
approximation it is only an upper bound (``LipschitzMIP.exact`` is False).
Every big-M coefficient comes from the forward bounds or the gradient
bounds; a bound that is too tight would cut off true patterns and make the
optimum too small, so both are rigorous (rounded outward). Near-zero
bounds are tidied (:func:`~lipmip.formulate.relu.tidy_bounds`): gradient
bounds within 1e-9 of 0 become 0 (what HiGHS does to such coefficients
anyway; sound up to the solver's tolerances), other bounds below 1e-6 in
magnitude are widened to ±1e-4 (sound); the optimum is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from lipmip.activations import IDENTITY
from lipmip.bounds.backward import GradientBounds, gradient_bounds, interval_times_matrix, interval_times_slopes
from lipmip.bounds.base import Bounds
from lipmip.domains import Ball, Box, Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.formulate.model import MIPModel, QuadraticConstraint
from lipmip.formulate.relu import (
    ENCODINGS,
    PARTITION_STRATEGIES,
    TINY,
    WIDE,
    LayerEncoding,
    encode_layer,
    tidy_bounds,
)
from lipmip.network import Network
from lipmip.query import Query
from lipmip.rounding import UNIT_ROUNDOFF, gamma
from lipmip.solvers.base import MIPResult
from lipmip.witness import free_coordinates

__all__ = ["LipschitzMIP", "build_lipschitz_mip", "certified_upper", "L2_REGIONS", "OBJECTIVE_KINDS"]

L2_REGIONS = ("quadratic", "outer")
OBJECTIVE_KINDS = ("l1", "linf", "l2sq", "op_inf", "op_1", "op_2sq")
_SQUARED = ("l2sq", "op_2sq")
_SAFETY = 10.0  # the allowance of certified_upper, as in lipmip.bounds.lp._milp_margin

Filler = Callable[[np.ndarray, dict], None]


@dataclass(eq=False)
class LipschitzMIP:
    """A built Lipschitz MIP and the variable indices of each part.

    ``x``: input variables; ``layers[k]``: z/h/a of layer k+1
    (:class:`~lipmip.formulate.relu.LayerEncoding`, ``a = -1`` where a
    neuron has no binary); ``g[k]``: indices of the back-propagated
    gradient w.r.t. h_k, shape ``(rows, n_k)`` for k = 0 .. L; ``delta[k]``:
    δ of layer k+1, shape ``(rows, n_{k+1})`` (it may alias ``g`` or the zero
    variable); ``u``: the output-side variables of a 2→2 query (else None).
    """

    model: MIPModel
    net: Network
    region: Region
    query: Query
    forward: Bounds
    gradient: GradientBounds
    x: np.ndarray
    layers: tuple[LayerEncoding, ...]
    g: tuple[np.ndarray, ...]
    delta: tuple[np.ndarray, ...]
    u: np.ndarray | None
    zero: int
    objective_kind: str
    exact: bool
    free: np.ndarray
    encoding: str
    grad_lower: tuple[np.ndarray, ...]
    grad_upper: tuple[np.ndarray, ...]
    selection_bound: float = 0.0
    fillers: list[Filler] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ reading results
    @property
    def squared(self) -> bool:
        """Whether the objective is the square of the Lipschitz value."""
        return self.objective_kind in _SQUARED

    def value_from_objective(self, obj: float) -> float:
        """The Lipschitz value for the MIP objective value ``obj`` (its square
        root for the ℓ2 kinds; a monotone map, so it carries bounds over)."""
        obj = float(obj)
        if math.isnan(obj):
            return math.nan
        if self.squared:
            return math.sqrt(max(obj, 0.0))
        return obj

    def input_point(self, solution: np.ndarray) -> np.ndarray:
        """The input x of a solution vector."""
        return np.asarray(solution, dtype=np.float64)[self.x]

    def slopes(self, solution: np.ndarray) -> list[np.ndarray]:
        """The activation slope of every neuron in a solution: 1 for identity
        and stably active neurons, 0 for inactive ones, the rounded binary
        for unstable ones."""
        sol = np.asarray(solution, dtype=np.float64)
        out = []
        for k, enc in enumerate(self.layers):
            s = self.forward.slope_bounds(k)[0].copy()
            has = enc.a >= 0
            s[has] = np.round(sol[enc.a[has]])
            out.append(s)
        return out

    def jacobian_of_solution(self, solution: np.ndarray) -> np.ndarray:
        """The Jacobian ``df/dx`` of the activation pattern a solution chose
        (free input coordinates only; fixed ones are zeroed)."""
        J = np.eye(self.net.input_dim)
        for layer, s in zip(self.net.layers, self.slopes(solution)):
            J = s[:, None] * (layer.W @ J)
        return J * self.free[None, :]

    # ------------------------------------------------------------------ building solutions
    def assignment(self, x: Any, u: Any = None) -> np.ndarray:
        """A full assignment of the model's variables at input ``x`` (a point
        of the region), using the activation pattern of ``x`` (a = 0 on a
        kink), with every auxiliary variable set so that the objective equals
        the query's local value there (squared for the ℓ2 kinds). For a 2→2
        query ``u`` is the output-side unit vector (default: the top left
        singular vector of the Jacobian). Feasible up to float64 rounding:
        usable as a warm start."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        sol = np.zeros(self.model.num_variables)
        sol[self.x] = x
        h = x
        slopes = []
        for k, (layer, enc) in enumerate(zip(self.net.layers, self.layers)):
            z = layer.W @ h + layer.b
            s_lo, s_hi = self.forward.slope_bounds(k)
            s = np.where(s_lo == s_hi, s_lo, (z > 0).astype(np.float64))
            h = np.where(s > 0, z, 0.0) if layer.activation is not IDENTITY else z
            sol[enc.z] = z
            sol[enc.h] = h
            has = enc.a >= 0
            sol[enc.a[has]] = s[has]
            slopes.append(s)
        if self.u is not None:
            if u is None:
                J = self.net.jacobian(x) * self.free[None, :]
                u = np.linalg.svd(J)[0][:, 0]
            G = np.asarray(u, dtype=np.float64).reshape(1, -1)
            sol[self.u] = G[0]
        else:
            G = np.asarray(self.grad_lower[-1], dtype=np.float64)
        sol[self.g[-1]] = G
        for k in range(len(self.layers), 0, -1):
            D = G * slopes[k - 1]
            sol[self.delta[k - 1]] = D
            G = D @ self.net.layers[k - 1].W
            sol[self.g[k - 1]] = G
        sol[self.zero] = 0.0
        state = {"x": x, "g0": G}
        for fill in self.fillers:
            fill(sol, state)
        return sol


# ---------------------------------------------------------------------------------- building


def build_lipschitz_mip(
    net: Network,
    region: Region,
    query: Query,
    forward: Bounds,
    *,
    encoding: str = "bigm",
    partitions: int | str = 2,
    partition_strategy: str = "equal_size",
    l2_region: str = "quadratic",
) -> LipschitzMIP:
    """The Lipschitz MIP of ``query`` over ``region`` (see the module docstring).

    ``forward``: pre-activation bounds of ``net`` over ``region`` (e.g.
    ``lipmip.bounds.compute(net, region, "linear")``); they fix which ReLUs
    get binaries and are the big-M coefficients of the forward part.
    ``encoding``: ``"bigm"`` or ``"partition"`` (with ``partitions`` groups
    per neuron, an int >= 1 or ``"fan_in"``, split by ``partition_strategy``).
    ``l2_region``: ``"quadratic"`` (exact, MIQCP) or ``"outer"`` (linear
    outer approximation, upper bound only) for ℓ2 balls.
    """
    region = as_region(region)
    _check_inputs(net, region, query, forward, encoding, partitions, partition_strategy, l2_region)
    model = MIPModel()
    zero = int(model.add_variables(0.0, 0.0, name="zero")[0])
    x, region_fill, exact = _encode_region(model, region, l2_region)
    fillers: list[Filler] = [region_fill]
    options = {"partitions": partitions, "strategy": partition_strategy} if encoding == "partition" else {}
    box = region.bounding_box()
    prev, prev_lo, prev_hi = x, box.lo, box.hi
    layers = []
    for k, layer in enumerate(net.layers):
        z_lo, z_hi = tidy_bounds(forward.lower[k], forward.upper[k])
        enc = encode_layer(model, layer, z_lo, z_hi, prev, prev_lo, prev_hi, zero, encoding=encoding, **options)
        layers.append(enc)
        fillers.append(_partition_filler(enc))
        prev = enc.h
        prev_lo, prev_hi = layer.activation.forward(z_lo), layer.activation.forward(z_hi)
    gb, lower, upper = _gradient_bounds(query, forward)
    for k in range(net.depth):  # the output row (c, or the u of a 2→2 query) is kept as it is
        lower[k], upper[k] = tidy_bounds(lower[k], upper[k], snap=True)
    g, delta, u = _encode_backward(model, net, forward, layers, lower, upper, zero)
    free = free_coordinates(region)
    mip = LipschitzMIP(
        model=model, net=net, region=region, query=query, forward=forward, gradient=gb, x=x, layers=tuple(layers),
        g=tuple(g), delta=tuple(delta), u=u, zero=zero, objective_kind=_objective_kind(query), exact=exact,
        free=free, encoding=encoding, grad_lower=tuple(lower), grad_upper=tuple(upper), fillers=fillers,
    )
    _set_objective(mip)
    return mip


def _check_inputs(net: Network, region: Region, query: Query, forward: Bounds, encoding: str,
                  partitions: Any, strategy: str, l2_region: str) -> None:
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__}")
    region.check_network(net)
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    query.check_network(net)
    if not isinstance(forward, Bounds) or forward.net is not net and not forward.net.allclose(net):
        raise LipmipError("the forward bounds were computed for another network")
    if encoding not in ENCODINGS:
        raise InvalidQueryError(f"unknown ReLU encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if not (partitions == "fan_in" or (isinstance(partitions, (int, np.integer)) and not isinstance(partitions, bool)
                                       and partitions >= 1)):
        raise InvalidQueryError(f"partitions must be an integer >= 1 or 'fan_in', got {partitions!r}")
    if strategy not in PARTITION_STRATEGIES:
        raise InvalidQueryError(f"unknown partition strategy {strategy!r}; use one of {', '.join(PARTITION_STRATEGIES)}")
    if l2_region not in L2_REGIONS:
        raise InvalidQueryError(f"l2_region must be one of {', '.join(L2_REGIONS)}, got {l2_region!r}")


def _objective_kind(query: Query) -> str:
    p = query.input_norm
    if query.is_scalar:
        return {math.inf: "l1", 1.0: "linf", 2.0: "l2sq"}[p]
    return {math.inf: "op_inf", 1.0: "op_1", 2.0: "op_2sq"}[p]


def _encode_region(model: MIPModel, region: Region, l2_region: str) -> tuple[np.ndarray, Filler, bool]:
    """Input variables constrained to the region; returns ``(x, filler, exact)``."""
    box = region.bounding_box()
    x = model.add_variables(box.lo, box.hi, name="x")
    if isinstance(region, Box) or region.p == math.inf:
        return x, _no_fill, True
    assert isinstance(region, Ball)
    n, c, r = region.dim, region.center, region.radius
    if region.p == 1.0:
        t = _abs_of_difference(model, x, c, r)
        model.add_row_entries(t[None, :], np.ones((1, n)), -np.inf, r)

        def fill_l1(sol: np.ndarray, state: dict) -> None:
            sol[t] = np.abs(state["x"] - c)

        return x, fill_l1, True
    d = model.add_variables(np.full(n, -r), np.full(n, r), name="d")
    ones = np.ones(n)
    model.add_row_entries(np.stack([x, d], 1), np.stack([ones, -ones], 1), c, c)  # x - d = c
    fills: list[Filler] = [lambda sol, state: sol.__setitem__(d, state["x"] - c)]
    if l2_region == "quadratic":
        nv = model.num_variables
        Q = sp.csr_matrix((ones, (d, d)), shape=(nv, nv))
        model.quadratic_constraints.append(QuadraticConstraint(Q=Q, a=np.zeros(nv), lo=-np.inf, hi=r * r))
        exact = True
    else:
        # ‖d‖₁ <= √n ‖d‖₂ <= √n r: the outer approximation, rounded up
        t = _abs_of_difference(model, d, np.zeros(n), r)
        model.add_row_entries(t[None, :], np.ones((1, n)), -np.inf, r * math.sqrt(n) * (1 + 8 * UNIT_ROUNDOFF))
        fills.append(lambda sol, state: sol.__setitem__(t, np.abs(state["x"] - c)))
        exact = n == 1

    def fill_l2(sol: np.ndarray, state: dict) -> None:
        for f in fills:
            f(sol, state)

    return x, fill_l2, exact


def _abs_of_difference(model: MIPModel, x: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Variables ``t`` in ``[0, r]`` with ``t >= |x - c|`` (rows ``t - x >= -c``, ``t + x >= c``)."""
    n = x.size
    t = model.add_variables(np.zeros(n), np.full(n, r), name="t")
    ones = np.ones(n)
    model.add_row_entries(np.stack([t, x], 1), np.stack([ones, -ones], 1), -c, np.inf)
    model.add_row_entries(np.stack([t, x], 1), np.stack([ones, ones], 1), c, np.inf)
    return t


def _no_fill(sol: np.ndarray, state: dict) -> None:
    return None


def _partition_filler(enc: LayerEncoding) -> Filler:
    aux = enc.aux

    def fill(sol: np.ndarray, state: dict) -> None:
        for a, members, weights, v in aux:
            sol[v] = sol[a] * float(weights @ sol[members])

    return fill


def _gradient_bounds(query: Query, forward: Bounds) -> tuple[GradientBounds, list[np.ndarray], list[np.ndarray]]:
    """Bounds on the back-propagated rows, shape ``(rows, n_k)`` per k.

    Scalar: the query's ``c``. Vector ∞/1: one row per output (C = I). Vector
    2: a single row ``uᵀ G_k`` with ``‖u‖₂ <= 1``, bounded entrywise by the
    2-norm of the column bounds of G_k for C = I (Cauchy–Schwarz), rounded up;
    the last layer's bound is ``[-1, 1]``.
    """
    m = forward.net.output_dim
    if query.is_scalar:
        gb = gradient_bounds(forward, query.c[None, :])
        return gb, list(gb.lower), list(gb.upper)
    gb = gradient_bounds(forward, np.eye(m))
    if query.input_norm != 2.0:
        return gb, list(gb.lower), list(gb.upper)
    lower, upper = [], []
    for lo, hi in zip(gb.lower, gb.upper):
        mag = np.maximum(np.abs(lo), np.abs(hi))
        B = np.sqrt(np.sum(mag * mag, axis=0, keepdims=True)) * (1 + gamma(m + 4))
        lower.append(-B)
        upper.append(B)
    lower[-1] = -np.ones((1, m))
    upper[-1] = np.ones((1, m))
    return gb, lower, upper


def _encode_backward(model: MIPModel, net: Network, forward: Bounds, layers: list[LayerEncoding],
                     lower: list[np.ndarray], upper: list[np.ndarray], zero: int):
    """The masked backward pass; returns ``(g, delta, u)``."""
    L = net.depth
    g: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * (L + 1)
    delta: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * L
    g[L] = model.add_variables(lower[L], upper[L], name="g")
    u = None
    if not np.array_equal(lower[L], upper[L]):  # the 2→2 query: ‖u‖₂ <= 1
        u = g[L].reshape(-1)
        nv = model.num_variables
        Q = sp.csr_matrix((np.ones(u.size), (u, u)), shape=(nv, nv))
        model.quadratic_constraints.append(QuadraticConstraint(Q=Q, a=np.zeros(nv), lo=-np.inf, hi=1.0))
    for k in range(L, 0, -1):
        delta[k - 1] = _encode_mask(model, net.layers[k - 1], forward, k - 1, layers[k - 1], g[k], lower[k], upper[k], zero)
        g[k - 1] = model.add_variables(lower[k - 1], upper[k - 1], name="g")
        _transpose_rows(model, g[k - 1], net.layers[k - 1].W, delta[k - 1], zero)
    return g, delta, u


def _encode_mask(model: MIPModel, layer, forward: Bounds, k: int, enc: LayerEncoding, gk: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray, zero: int) -> np.ndarray:
    """δ = a ⊙ g for one layer (rows × neurons); returns δ's indices."""
    R = gk.shape[0]
    if layer.activation is IDENTITY:
        return gk.copy()
    active, inactive = forward.active[k], forward.inactive[k]
    delta = np.where(active[None, :], gk, zero).astype(np.int64)
    idx = np.flatnonzero(~active & ~inactive)
    if idx.size == 0:
        return delta
    Lb, Ub = lo[:, idx], hi[:, idx]
    d = model.add_variables(np.minimum(Lb, 0.0), np.maximum(Ub, 0.0), name="delta")
    delta[:, idx] = d
    a = np.broadcast_to(enc.a[idx], (R, idx.size)).reshape(-1)
    gg = gk[:, idx].reshape(-1)
    dd, Lf, Uf = d.reshape(-1), Lb.reshape(-1), Ub.reshape(-1)
    ones = np.ones(dd.size)
    model.add_row_entries(np.stack([dd, a], 1), np.stack([ones, -Uf], 1), -np.inf, 0.0)        # δ <= U a
    model.add_row_entries(np.stack([dd, a], 1), np.stack([ones, -Lf], 1), 0.0, np.inf)         # δ >= L a
    model.add_row_entries(np.stack([dd, gg, a], 1), np.stack([ones, -ones, -Lf], 1), -np.inf, -Lf)  # δ <= g - L(1-a)
    model.add_row_entries(np.stack([dd, gg, a], 1), np.stack([ones, -ones, -Uf], 1), -Uf, np.inf)   # δ >= g - U(1-a)
    return delta


def _transpose_rows(model: MIPModel, out: np.ndarray, W: np.ndarray, delta: np.ndarray, zero: int) -> None:
    """Rows ``out[r] - W_kᵀ delta[r] = 0`` for every row r (terms on the zero variable dropped)."""
    R, n_prev = out.shape
    rows, cols, vals = [], [], []
    for r in range(R):
        keep = delta[r] != zero
        Wt = W[keep].T  # (n_prev, kept)
        nz_i, nz_j = np.nonzero(Wt)
        base = r * n_prev
        rows.append(base + np.arange(n_prev))
        cols.append(out[r])
        vals.append(np.ones(n_prev))
        rows.append(base + nz_i)
        cols.append(delta[r][keep][nz_j])
        vals.append(-Wt[nz_i, nz_j])
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(R * n_prev, model.num_variables))
    model.add_rows(A, 0.0, 0.0)


# ---------------------------------------------------------------------------------- objective


def _set_objective(mip: LipschitzMIP) -> None:
    model, kind = mip.model, mip.objective_kind
    g0 = mip.g[0]
    lo, hi = mip.grad_lower[0], mip.grad_upper[0]
    free = np.flatnonzero(mip.free)
    if kind in _SQUARED:
        nv = model.num_variables
        v = g0[0, free]
        model.objective = np.zeros(nv)
        model.objective_quadratic = sp.csr_matrix((np.ones(v.size), (v, v)), shape=(nv, nv))
        return
    if kind == "linf":
        _objective_max_abs(mip, g0[0, free], lo[0, free], hi[0, free], free)
        return
    groups: list[list[tuple[int, int]]]
    if kind == "l1":
        groups = [[(0, j) for j in free]]
    elif kind == "op_inf":
        groups = [[(r, j) for j in free] for r in range(g0.shape[0])]
    else:  # op_1
        groups = [[(r, j) for r in range(g0.shape[0])] for j in free]
    entries = sorted({e for grp in groups for e in grp})
    terms = _abs_terms(mip, {e: (int(g0[e]), float(lo[e]), float(hi[e])) for e in entries})
    _objective_max_group_sum(mip, groups, terms)


def _abs_terms(mip: LipschitzMIP, entries: dict) -> dict:
    """For each entry ``(var, L, U)`` a pair ``(index, coef)`` with
    ``coef · x[index] = |g|`` at every feasible point: ``±g`` itself when the
    bounds do not straddle 0, else ``t`` with a sign binary ``s``::

        t <= g + 2B (1 - s),   t <= -g + 2B s,   t >= g,   t >= -g,   0 <= t <= B

    (B = max(|L|, |U|)): s = 1 forces t = g >= 0, s = 0 forces t = -g >= 0.
    """
    model = mip.model
    out: dict = {}
    split = []
    for key, (var, L, U) in entries.items():
        if L >= 0:
            out[key] = (var, 1.0)
        elif U <= 0:
            out[key] = (var, -1.0)
        else:
            split.append((key, var, max(-L, U)))
    if not split:
        return out
    keys = [s[0] for s in split]
    g = np.array([s[1] for s in split], dtype=np.int64)
    B = np.array([s[2] for s in split])
    t = model.add_variables(np.zeros(B.size), B, name="t_abs")
    s = model.add_binaries(B.size, name="s_sign")
    ones = np.ones(B.size)
    model.add_row_entries(np.stack([t, g, s], 1), np.stack([ones, -ones, 2 * B], 1), -np.inf, 2 * B)
    model.add_row_entries(np.stack([t, g, s], 1), np.stack([ones, ones, -2 * B], 1), -np.inf, 0.0)
    model.add_row_entries(np.stack([t, g], 1), np.stack([ones, -ones], 1), 0.0, np.inf)
    model.add_row_entries(np.stack([t, g], 1), np.stack([ones, ones], 1), 0.0, np.inf)
    for key, ti in zip(keys, t):
        out[key] = (int(ti), 1.0)

    def fill(sol: np.ndarray, state: dict) -> None:
        gv = sol[g]
        sol[t] = np.abs(gv)
        sol[s] = (gv >= 0).astype(np.float64)

    mip.fillers.append(fill)
    return out


def _objective_max_group_sum(mip: LipschitzMIP, groups: list, terms: dict) -> None:
    """Maximise ``max_group Σ_{e∈group} |g_e|``: the sum itself for one group,
    else ``τ`` with ``τ <= S_grp + T (1 - e_grp)``, ``Σ e_grp = 1`` (T bounds
    every group sum S_grp >= 0, so the rows of unselected groups are slack)."""
    model = mip.model
    mags = {e: max(-float(mip.grad_lower[0][e]), float(mip.grad_upper[0][e]), 0.0) for e in terms}
    if not groups:  # 1→1 with no free input coordinate (a box with lo == hi everywhere): the value is 0
        model.objective = np.zeros(model.num_variables)
        return
    if len(groups) == 1:
        c = np.zeros(model.num_variables)
        for e in groups[0]:
            idx, coef = terms[e]
            c[idx] += coef
        model.objective = c
        return
    T = max(sum(mags[e] for e in grp) for grp in groups)
    T = WIDE if 0 < T < TINY else T  # a larger bound is as valid; no near-zero coefficients
    mip.selection_bound = T
    tau = int(model.add_variables(0.0, T, name="tau")[0])
    sel = model.add_binaries(len(groups), name="e_sel")
    nv = model.num_variables
    rows, cols, vals = [], [], []
    for i, grp in enumerate(groups):
        idx = [terms[e][0] for e in grp]
        coef = [-terms[e][1] for e in grp]
        rows += [i] * (len(idx) + 2)
        cols += [tau, *idx, int(sel[i])]
        vals += [1.0, *coef, T]
    model.add_rows(sp.csr_matrix((vals, (rows, cols)), shape=(len(groups), nv)), -np.inf, T)
    model.add_row_entries(sel[None, :], np.ones((1, sel.size)), 1.0, 1.0)
    c = np.zeros(nv)
    c[tau] = 1.0
    model.objective = c

    def fill(sol: np.ndarray, state: dict) -> None:
        sums = [sum(terms[e][1] * sol[terms[e][0]] for e in grp) for grp in groups]
        best = int(np.argmax(sums))
        sol[sel] = 0.0
        sol[sel[best]] = 1.0
        sol[tau] = max(sums[best], 0.0)

    mip.fillers.append(fill)


def _objective_max_abs(mip: LipschitzMIP, g: np.ndarray, lo: np.ndarray, hi: np.ndarray, free: np.ndarray) -> None:
    """Maximise ``max_i |g_i|`` (input norm 1): τ in ``[0, T]`` (T = max_i B_i)
    and one selection binary per (coordinate, sign) pair that can be
    positive, ``Σ e = 1``::

        τ <= g_i + (T - L_i)(1 - e_i⁺),     τ <= -g_i + (T + U_i)(1 - e_i⁻)

    The constant of an unselected pair is at least T - (±g_i) >= τ - (±g_i):
    slack. The selected pair gives τ <= ±g_i, so the optimum is max_i |g_i|.
    """
    model = mip.model
    B = np.maximum(np.maximum(-lo, hi), 0.0)
    T = float(B.max(initial=0.0))
    mip.selection_bound = T
    pairs = [(i, 1.0, T - lo[i]) for i in range(g.size) if hi[i] > 0]
    pairs += [(i, -1.0, T + hi[i]) for i in range(g.size) if lo[i] < 0]
    tau = int(model.add_variables(0.0, T, name="tau")[0])
    if pairs:
        sel = model.add_binaries(len(pairs), name="e_sel")
        gi = np.array([g[p[0]] for p in pairs], dtype=np.int64)
        sign = np.array([p[1] for p in pairs])
        M = np.array([p[2] for p in pairs])
        M = np.where(M < TINY, WIDE, M)  # a larger big-M is as valid; no near-zero coefficients
        ones = np.ones(len(pairs))
        model.add_row_entries(np.stack([np.full(len(pairs), tau), gi, sel], 1), np.stack([ones, -sign, M], 1),
                              -np.inf, M)
        model.add_row_entries(sel[None, :], np.ones((1, sel.size)), 1.0, 1.0)

        def fill(sol: np.ndarray, state: dict) -> None:
            vals = sign * sol[gi]
            best = int(np.argmax(vals))
            sol[sel] = 0.0
            sol[sel[best]] = 1.0
            sol[tau] = max(float(vals[best]), 0.0)

        mip.fillers.append(fill)
    c = np.zeros(model.num_variables)
    c[tau] = 1.0
    model.objective = c


# ---------------------------------------------------------------------------------- certification


def objective_margin(mip: LipschitzMIP, feasibility: float, integrality: float | None = None) -> float:
    """How far a point satisfying every row and bound of the model only to
    within ``feasibility``, and the integrality of its binaries only to within
    ``integrality`` (default: ``feasibility``), can raise the objective above
    the exact value of its activation pattern (see :func:`certified_upper`).

    Error in the input gradient ``g_0`` (:func:`_gradient_error`): each layer's
    rows inject a residual ``ρ_{k-1} = |W_k|ᵀ (feas + int·M_k) + feas`` into
    ``g_{k-1}`` (for unstable neurons only, a row of ``δ = a ⊙ g`` off by
    ``feas`` and a binary ``int`` away from 0 or 1 moving δ by ``int·M``, M_k
    the big-M of δ; stable neurons have no such rows; then the row of
    ``g_{k-1} = W_kᵀ δ_k`` off by ``feas``), and the residual reaches ``g_0``
    through the rest of the masked backward pass, whose entries are bounded
    over every allowed pattern by interval propagation. The objective adds,
    per |g| term, ``e_0 + 2B·int + 2feas`` (the sign rows), and ``2T·int +
    feas`` for a selection (T the selection's big-M).
    """
    feas = float(feasibility)
    integ = feas if integrality is None else float(integrality)
    e = _gradient_error(mip, feas, integ)
    free = mip.free
    B = np.maximum(np.abs(mip.grad_lower[0]), np.abs(mip.grad_upper[0]))
    kind = mip.objective_kind
    per_entry = (e + 2 * B * integ + 2 * feas) * free[None, :]
    select = 2 * mip.selection_bound * integ + feas
    if kind == "l1":
        return float(per_entry.sum())
    if kind == "linf":
        return float((e * free[None, :]).max(initial=0.0)) + select
    if kind == "op_inf":
        return float(per_entry.sum(axis=1).max(initial=0.0)) + select
    if kind == "op_1":
        return float(per_entry.sum(axis=0).max(initial=0.0)) + select
    ef = e * free[None, :]
    return float(np.sum(2 * B * ef + ef * ef))


def _gradient_error(mip: LipschitzMIP, feas: float, integ: float) -> np.ndarray:
    """Entrywise bound on ``|ĝ_0 - g_0|`` (shape ``(rows, n_0)``): the solver's
    input gradient versus the exact one of the pattern it names, for a point
    feasible to ``feas`` and integral to ``integ`` (see :func:`objective_margin`).

    The smaller, entry by entry, of two valid bounds: residuals carried to
    the input through interval bounds on the partial masked products
    ``|W_1ᵀ D_1 ⋯ W_jᵀ D_j|`` (tight when the network's gradients are much
    smaller than its weight norms, as in deep networks), and the plain
    recursion ``e_{k-1} = (e_k + [feas + int·M_k]_unstable) |W_k| + feas``.
    """
    net, forward = mip.net, mip.forward
    plain = np.full(mip.g[-1].shape, feas)
    through = np.zeros((mip.g[-1].shape[0], net.input_dim))
    for k in range(net.depth, 0, -1):
        unstable = forward.unstable[k - 1][None, :]
        M = np.maximum(np.abs(mip.grad_lower[k]), np.abs(mip.grad_upper[k])) * unstable
        absW = np.abs(net.layers[k - 1].W)
        # δ of an unstable neuron is off a ⊙ g by feas + int·M; a stable one is g itself or 0 (no rows)
        delta_error = (feas + integ * M) * unstable
        plain = (plain + delta_error) @ absW + feas
        through = through + (delta_error @ absW + feas) @ _partial_product_abs(forward, k - 1)
    grow = 1 + 4 * UNIT_ROUNDOFF * (net.depth + max(net.widths))  # the float rounding of the two sums
    return np.minimum(plain, through) * grow


def _partial_product_abs(forward: Bounds, j: int) -> np.ndarray:
    """Entrywise bound ``(n_j, n_0)`` on ``|P_j|`` with ``P_j = D_j W_j ⋯ D_1 W_1``
    (rows: h_j; the map of a residual in ``g_j`` to ``g_0``), over every
    activation pattern ``forward`` allows; the identity for ``j = 0``."""
    lo = hi = np.eye(forward.net.widths[j])
    for i in range(j, 0, -1):
        lo, hi = interval_times_slopes(lo, hi, *forward.slope_bounds(i - 1))
        lo, hi = interval_times_matrix(lo, hi, forward.net.layers[i - 1].W)
    return np.maximum(np.abs(lo), np.abs(hi))


def certified_upper(result: MIPResult, mip: LipschitzMIP) -> float:
    """An upper bound on the Lipschitz value from a solver's result, sound up
    to the solver's stated tolerances (not a proof: solvers accept points
    that violate constraints by their tolerances).

    With ``τ`` = the largest of the feasibility-type tolerances in
    ``result.tolerances`` (every entry but ``integrality`` and those named
    ``*gap*``: the best bound already accounts for the gap; 1e-6 when none is
    stated), ``ι`` = the ``integrality`` tolerance (``τ`` when not stated) and
    ``D = best_bound`` (raised to the incumbent if that is higher by less
    than the margin; a larger excess means the solver's numbers are
    inconsistent and ``inf`` is returned)::

        upper = value_from_objective( D + 10·( objective_margin(τ, ι) + τ·Σ_j (ub_j - lb_j) + τ·|D| ) )

    * ``objective_margin(τ, ι)`` (:func:`objective_margin`) bounds how much a
      point feasible to within τ (rows, bounds) and integral to within ι
      raises the objective above its pattern's exact value: the big-M
      magnitudes enter through it;
    * ``τ·Σ_j (ub_j - lb_j)``: the LP bounds behind the dual bound are exact
      only up to reduced costs wrong by the dual feasibility tolerance, each
      moving the bound by at most τ times its variable's range;
    * ``τ·|D|``: relative tolerances (scaling);
    * the factor 10 allows for accumulation and for tolerances applied to
      the solver's scaled model (as in the LP-bound MILP of
      :mod:`lipmip.bounds.lp`).

    ``value_from_objective`` is monotone (square root for the ℓ2 kinds), so
    the mapped number is an upper bound on the value; it is rounded up.
    Statuses ``infeasible`` and ``error`` and a non-finite bound give ``inf``
    (the model is never infeasible in exact arithmetic).
    """
    if result.status not in ("optimal", "time_limit") or not math.isfinite(result.best_bound):
        return math.inf
    stated = {str(key).lower(): float(v) for key, v in result.tolerances.items()
              if isinstance(v, (int, float)) and math.isfinite(v)}
    tol = max((v for key, v in stated.items() if "gap" not in key and key != "integrality"), default=1e-6)
    integrality = stated.get("integrality", tol)
    bound = float(result.best_bound)
    model = mip.model
    margin = _SAFETY * (objective_margin(mip, tol, integrality) + tol * float(np.sum(model.ub - model.lb))
                        + tol * abs(bound))
    if result.incumbent is not None and result.incumbent > bound:
        if result.incumbent - bound > margin:
            return math.inf
        bound = float(result.incumbent)
    value = mip.value_from_objective(bound + margin)
    return float(np.nextafter(value * (1 + 4 * UNIT_ROUNDOFF), math.inf))
