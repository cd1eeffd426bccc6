"""Quadratically constrained reformulations of the Lipschitz MIP (after Sbihi, Jan and Couëllan).

Source: M. Sbihi, S. Jan, N. Couëllan, "MIQCQP reformulation of the ReLU
neural networks Lipschitz constant estimation problem", arXiv:2402.01199
(2024); journal version "Mixed integer quadratically constrained quadratic
programming for neural network Lipschitz constant computation", European
Journal of Operational Research 331(3), 916-924 (2026). Their idea, as the
abstracts state it: write the *activation region* of every layer as
constraints of the optimisation problem, which makes it quadratically
constrained; one version's optimum is a lower bound on the Lipschitz
constant, another's an upper bound, and the two coincide with the constant
for almost every choice of the network's parameters. Only the abstracts
could be consulted while writing this module, not the full text, so the
formulation below is lipmip's own rendering of that idea (no equation of the
paper is reproduced or cited by number); where a choice matters for
soundness it is argued here.

The model (scalar queries ``c·f`` only; layers k = 1 .. L, ``z_k = W_k h_{k-1} + b_k``)::

    maximise    ‖g_0‖_{α*}                           (over the free input coordinates)
    subject to  x ∈ X                                (the region, as in lipschitz.py)
                z_k = W_k h_{k-1} + b_k,   l_k <= z_k <= u_k
                h_k = a_k ⊙ z_k                      (bilinear: binary × continuous)
                (2 a_k - 1) ⊙ z_k >= m_k             (the activation region of a_k)
                g_L = c,   δ_k = a_k ⊙ g_k,   g_{k-1} = W_kᵀ δ_k      (bilinear)
                a_k ∈ {0, 1}  (unstable neurons; stable ones are fixed by [l_k, u_k])

with ``h_0 = x``. Given ``h = a ⊙ z``, the region constraint
``(2a - 1) ⊙ z >= m`` is the same set as the *linear* row ``2h - z >= m``, which
is how it is written (a solver handles a linear row better; the quadratic
equality ``h = a z`` carries the product). There is no big-M row anywhere in
the constraints: the only constants are the variable bounds ``[l_k, u_k]`` of
``z_k`` (lipmip's rigorous forward bounds, :mod:`lipmip.bounds`) and the
bounds of ``g_k`` and ``δ_k`` (the rigorous backward bounds of
:func:`~lipmip.bounds.backward.gradient_bounds`). A solver's own relaxation
of ``h = a z`` over these boxes (McCormick) is the big-M relaxation with the
same bounds. The objective is that of :mod:`lipmip.formulate.lipschitz`:
``‖g_0‖₁`` (input norm ∞, sign binaries), ``‖g_0‖_∞`` (input norm 1,
selection binaries) and ``‖g_0‖₂²`` (input norm 2, a nonconvex quadratic
objective; :meth:`~lipmip.formulate.lipschitz.LipschitzMIP.value_from_objective`
takes the square root). The margin of neuron j is ``m_j = margin · (u_j - l_j)``
(relative to the width of its bounds, so ``margin`` has no unit).

The two versions (what holds in exact arithmetic, for an exact solver):

* ``version="upper"``, ``margin = 0`` (default): a feasible ``a`` is any
  pattern consistent with ``x`` (either value where ``z = 0``), which is
  exactly the feasible set of the LipMIP model. The optimum is an upper
  bound on the local Lipschitz constant L (every full-dimensional
  activation region has an interior point, feasible with its own pattern)
  and equals L for networks in general position (Jordan and Dimakis 2020,
  Thm. 2). A negative ``margin`` lets patterns violate their region by
  ``|m_j|``: a relaxation, still an upper bound (``h`` may then be as low as
  ``m_j``), never smaller than the ``margin = 0`` optimum; ``exact`` is
  then False. This version's bound is certified by
  :func:`certified_upper_bound`.
* ``version="lower"``, ``margin > 0`` (default 1e-6): every feasible
  ``(x, a)`` has each unstable neuron at least ``m_j`` on its pattern's side,
  so ``x`` lies in the *interior* of the activation region of ``a`` and
  the network is affine with that pattern's Jacobian on a neighbourhood of
  ``x`` in X (stable neurons keep ``relu(z) = z`` resp. ``0`` on all of X);
  so every feasible objective value is the gradient norm on an open piece of
  X and is <= L. The optimum is a lower bound on L. It equals L as soon as a
  region attaining L contains a point where every unstable neuron clears its
  margin (margin small relative to that region's depth); as ``margin → 0``
  it tends to L for every network except degenerate ones in which an
  unstable neuron is identically 0 on a whole region (such a region cannot
  clear a positive margin). The solver's bound on this version proves
  nothing about L and is never used; a lower bound is only ever reported
  from a witness re-checked in float64 (:func:`verified_witness`), which
  does not trust the solver at all.

So the lower and upper optima coincide (with L) when the network is in
general position and the margin is below the depth of an optimal region:
for all but a null set of parameters once the margin is small enough, which
is what the paper's abstract claims ("almost everywhere in the parameter
space"). Vector queries (operator norms) are not covered here and raise
:class:`~lipmip.errors.InvalidQueryError`: use
:func:`~lipmip.formulate.lipschitz.build_lipschitz_mip` for them.

Solving needs a solver for nonconvex quadratic constraints (SCIP, or
Gurobi); HiGHS cannot take this model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from lipmip.activations import IDENTITY
from lipmip.bounds.base import Bounds
from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, SolverUnavailableError
from lipmip.formulate.lipschitz import (
    LipschitzMIP,
    _check_inputs,
    _encode_region,
    _gradient_bounds,
    _objective_kind,
    _set_objective,
    _transpose_rows,
    certified_upper,
)
from lipmip.formulate.model import MIPModel, QuadraticConstraint
from lipmip.formulate.relu import LayerEncoding, tidy_bounds
from lipmip.network import Network
from lipmip.query import Query
from lipmip.regions.enumerate import pre_activations_with_error
from lipmip.regions.pattern import interior_point_for_pattern
from lipmip.result import Witness
from lipmip.solvers.base import MIPResult, SolveOptions
from lipmip.solvers.registry import solve_with_fallback
from lipmip.witness import best_witness, free_coordinates, witness_from_point

__all__ = [
    "MIQCQP",
    "VERSIONS",
    "DEFAULT_MARGINS",
    "build_miqcqp",
    "certified_upper_bound",
    "verified_witness",
    "pattern_is_realised",
    "realise_pattern",
]

VERSIONS = ("upper", "lower")
#: The default relative margin of each version (``m_j = margin · (u_j - l_j)``).
DEFAULT_MARGINS = {"upper": 0.0, "lower": 1e-6}


@dataclass(eq=False)
class MIQCQP(LipschitzMIP):
    """A built MIQCQP (see the module docstring): a
    :class:`~lipmip.formulate.lipschitz.LipschitzMIP` with the same variable
    layout (``x``, ``layers`` with z/h/a, ``g``, ``delta``), so
    ``value_from_objective``, ``input_point``, ``slopes``, ``assignment`` and
    ``jacobian_of_solution`` read and build its solutions, and
    ``solve_with_fallback(mip.model, solver, options)`` solves it.

    ``version``: ``"upper"`` (optimum >= L) or ``"lower"`` (optimum <= L);
    ``margin``: the relative margin it was built with; ``margins[k]``: the
    absolute margin ``m_j`` of every neuron of layer k+1 (0 where a neuron has
    no binary). ``exact`` is True only for the upper version with margin 0
    and an exact region encoding: its optimum is an upper bound on L that
    equals L for networks in general position. The lower version's optimum
    is a lower bound (``exact`` False): see :attr:`optimum_side`.
    """

    version: str = "upper"
    margin: float = 0.0
    margins: tuple[np.ndarray, ...] = field(default_factory=tuple)

    @property
    def optimum_side(self) -> str:
        """``"upper"`` when the model's optimum is >= L, ``"lower"`` when it is <= L."""
        return self.version


# ---------------------------------------------------------------------------------- building


def build_miqcqp(
    net: Network,
    region: Region,
    query: Query,
    forward: Bounds,
    *,
    version: str = "upper",
    margin: float | None = None,
) -> MIQCQP:
    """The MIQCQP of a scalar ``query`` over ``region`` (see the module docstring).

    ``forward``: rigorous pre-activation bounds of ``net`` over ``region``
    (``lipmip.bounds.compute``); they decide which ReLUs get binaries and are
    the only constants of the forward part (variable bounds of ``z``): a
    bound that is too tight cuts off true points and makes the upper
    version's optimum too small. ``version``: ``"upper"`` or ``"lower"``.
    ``margin`` (relative, ``m_j = margin · (u_j - l_j)``): for ``"upper"`` a
    number in ``[-0.5, 0]`` (default 0; negative = a looser relaxation), for
    ``"lower"`` a number in ``(0, 0.5)`` (default 1e-6).

    Raises :class:`~lipmip.errors.InvalidQueryError` for a vector query, an
    unknown version or a margin out of range, and the errors of
    :func:`~lipmip.formulate.lipschitz.build_lipschitz_mip` for a bad
    network, region or bounds.
    """
    region = as_region(region)
    _check_inputs(net, region, query, forward, "bigm", 2, "equal_size", "quadratic")
    if not query.is_scalar:
        raise InvalidQueryError(
            "the MIQCQP formulation covers scalar queries c·f only; for an operator norm use the LipMIP formulation"
        )
    margin = _check_version_margin(version, margin)
    model = MIPModel()
    zero = int(model.add_variables(0.0, 0.0, name="zero")[0])
    x, region_fill, region_exact = _encode_region(model, region, "quadratic")
    prev = x
    layers: list[LayerEncoding] = []
    margins: list[np.ndarray] = []
    for k, layer in enumerate(net.layers):
        z_lo, z_hi = tidy_bounds(forward.lower[k], forward.upper[k])
        enc, m = _encode_layer(model, layer, z_lo, z_hi, prev, zero, margin)
        layers.append(enc)
        margins.append(m)
        prev = enc.h
    gb, lower, upper = _gradient_bounds(query, forward)
    for k in range(net.depth):  # the output row c is kept as it is
        lower[k], upper[k] = tidy_bounds(lower[k], upper[k], snap=True)
    g, delta = _encode_backward(model, net, layers, lower, upper, zero)
    mip = MIQCQP(
        model=model, net=net, region=region, query=query, forward=forward, gradient=gb, x=x, layers=tuple(layers),
        g=tuple(g), delta=tuple(delta), u=None, zero=zero, objective_kind=_objective_kind(query),
        exact=bool(version == "upper" and margin == 0.0 and region_exact), free=free_coordinates(region),
        encoding="quadratic", grad_lower=tuple(lower), grad_upper=tuple(upper), fillers=[region_fill],
        version=version, margin=margin, margins=tuple(margins),
    )
    _set_objective(mip)
    return mip


def _check_version_margin(version: object, margin: object) -> float:
    if not isinstance(version, str) or version not in VERSIONS:
        raise InvalidQueryError(f"unknown MIQCQP version {version!r}; use one of {', '.join(VERSIONS)}")
    if margin is None:
        return DEFAULT_MARGINS[version]
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.integer, np.floating)):
        raise InvalidQueryError(f"margin must be a number, got {margin!r}")
    value = float(margin)
    if not math.isfinite(value):
        raise InvalidQueryError(f"margin must be finite, got {margin!r}")
    if version == "lower" and not 0.0 < value < 0.5:
        raise InvalidQueryError(
            f"the lower MIQCQP needs a margin in (0, 0.5) (a feasible point must lie strictly inside its "
            f"activation region), got {value!r}"
        )
    if version == "upper" and not -0.5 <= value <= 0.0:
        raise InvalidQueryError(
            f"the upper MIQCQP needs a margin in [-0.5, 0] (a positive margin would cut off true patterns), got {value!r}"
        )
    return value


def _products(model: MIPModel, out: np.ndarray, a: np.ndarray, y: np.ndarray, y_lo: np.ndarray,
              y_hi: np.ndarray) -> None:
    """``out_i = a_i · y_i`` for each i: a quadratic equality, or the linear row
    ``out_i - v a_i = 0`` when ``y_i`` is fixed at ``v`` (``y_lo == y_hi``)."""
    fixed = y_lo == y_hi
    if np.any(fixed):
        k = int(fixed.sum())
        model.add_row_entries(np.stack([out[fixed], a[fixed]], 1), np.stack([np.ones(k), -y_lo[fixed]], 1), 0.0, 0.0)
    nv = model.num_variables
    for o, ai, yi in zip(out[~fixed].tolist(), a[~fixed].tolist(), y[~fixed].tolist()):
        Q = sp.csr_matrix(([-1.0], ([ai], [yi])), shape=(nv, nv))
        lin = np.zeros(o + 1)
        lin[o] = 1.0
        model.quadratic_constraints.append(QuadraticConstraint(Q=Q, a=lin, lo=0.0, hi=0.0))


def _encode_layer(model: MIPModel, layer, lo: np.ndarray, hi: np.ndarray, prev: np.ndarray, zero: int,
                  margin: float) -> tuple[LayerEncoding, np.ndarray]:
    """One layer: ``z = W h_prev + b`` within ``[lo, hi]``; stable neurons as in
    :func:`lipmip.formulate.relu.encode_layer` (``h`` aliases ``z`` or the zero
    variable, no binary); each unstable neuron gets ``h``, a binary ``a``, the
    product ``h = a z`` and the region row ``2h - z >= m`` with
    ``m = margin (hi - lo)``. Returns the encoding and the margins."""
    n_out = layer.out_features
    z = model.add_variables(lo, hi, name="z")
    keep = prev != zero
    cols = np.concatenate([z[:, None], np.broadcast_to(prev[keep], (n_out, int(keep.sum())))], axis=1)
    coefs = np.concatenate([np.ones((n_out, 1)), -layer.W[:, keep]], axis=1)
    model.add_row_entries(cols, coefs, layer.b, layer.b)  # z - W h_prev = b
    a = np.full(n_out, -1, dtype=np.int64)
    m = np.zeros(n_out)
    if layer.activation is IDENTITY:
        return LayerEncoding(z=z, h=z.copy(), a=a), m
    active = lo >= 0
    unstable = ~active & (hi > 0)
    h = np.where(active, z, zero).astype(np.int64)
    idx = np.flatnonzero(unstable)
    if idx.size:
        m[idx] = margin * (hi[idx] - lo[idx])
        h[idx] = model.add_variables(np.minimum(m[idx], 0.0), hi[idx], name="h")
        a[idx] = model.add_binaries(idx.size, name="a")
        _products(model, h[idx], a[idx], z[idx], lo[idx], hi[idx])
        ones = np.ones(idx.size)
        model.add_row_entries(np.stack([h[idx], z[idx]], 1), np.stack([2 * ones, -ones], 1), m[idx], np.inf)
    return LayerEncoding(z=z, h=h, a=a), m


def _encode_backward(model: MIPModel, net: Network, layers: list[LayerEncoding], lower: list[np.ndarray],
                     upper: list[np.ndarray], zero: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The masked backward pass of a scalar query: ``g_L = c``, then per layer
    ``δ = a ⊙ g`` (a product for unstable neurons, ``δ = g`` for active ones
    and identity layers, ``δ = 0`` for inactive ones) and ``g_{k-1} = W_kᵀ δ``."""
    L = net.depth
    g: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * (L + 1)
    delta: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * L
    g[L] = model.add_variables(lower[L], upper[L], name="g")
    for k in range(L, 0, -1):
        enc = layers[k - 1]
        gk = g[k]
        inactive = (enc.a < 0) & (enc.h == zero)
        d = np.where(inactive[None, :], zero, gk).astype(np.int64)
        idx = np.flatnonzero(enc.a >= 0)
        if idx.size:
            lo, hi = lower[k][:, idx], upper[k][:, idx]
            dv = model.add_variables(np.minimum(lo, 0.0), np.maximum(hi, 0.0), name="delta")
            d[:, idx] = dv
            _products(model, dv.reshape(-1), enc.a[idx], gk[:, idx].reshape(-1), lo.reshape(-1), hi.reshape(-1))
        delta[k - 1] = d
        g[k - 1] = model.add_variables(lower[k - 1], upper[k - 1], name="g")
        _transpose_rows(model, g[k - 1], net.layers[k - 1].W, d, zero)
    return g, delta


# ---------------------------------------------------------------------------------- certification


def certified_upper_bound(result: MIPResult, mip: MIQCQP) -> float:
    """An upper bound on L from a solver's result on the *upper* version,
    sound up to the solver's stated tolerances; ``inf`` for the lower version
    (its optimum bounds L from below, so its solver bound proves nothing).

    This is :func:`~lipmip.formulate.lipschitz.certified_upper` unchanged: the
    solver's proven bound (never its incumbent) widened by
    ``10·(objective_margin + τ·Σ ranges + τ·|bound|)``. Its error analysis
    holds here as it stands: the only rows the objective depends on are the
    backward rows and the objective's own, and a point that satisfies
    ``δ = a g`` to within τ with ``a`` within ι of a binary has
    ``|δ - round(a) g| <= τ + ι·max|g|``, the same per-neuron error as the
    linearised rows of the LipMIP model; the transposed rows and the
    objective are the same rows. What it trusts: the solver's dual bound
    (SCIP's spatial branch and bound of the products, or Gurobi's) up to its
    stated tolerances, like every MIP bound in lipmip, and the rigor of the
    forward and gradient bounds that are the variables' boxes.
    """
    if mip.version != "upper":
        return math.inf
    return certified_upper(result, mip)


def verified_witness(result: MIPResult, mip: LipschitzMIP, net: Network | None = None, *,
                     solver: str | None = None, time_limit: float = 10.0, output_scale: float = 1.0) -> Witness | None:
    """A lower bound on L from a solver's incumbent (either version, or any
    :class:`~lipmip.formulate.lipschitz.LipschitzMIP`), checked in float64.

    The incumbent's activation pattern gets a deep interior point
    (:func:`~lipmip.regions.interior_point_for_pattern`); that point and the
    incumbent's own input point are turned into certified difference
    quotients (:func:`~lipmip.witness.witness_from_point`), and the best is
    returned (``None`` without an incumbent or when nothing positive can be
    certified). When ``solver`` is given and neither reproduces the
    incumbent's value (to 1e-9 relative), a point of the pattern clearing
    the lower version's default margin is also tried
    (:func:`realise_pattern`, one solve of at most ``time_limit`` seconds;
    skipped when ``solver`` cannot take quadratic constraints, e.g. HiGHS):
    this settles incumbents on a kink at the edge of an ℓ2 ball, where the
    LP of ``interior_point_for_pattern`` (tangent cuts of the ball) can stop
    at a point outside the ball.

    ``witness.value <= L`` in exact arithmetic whatever the solver did:
    neither its objective value nor its tolerances enter. ``net``: the
    network to verify on (default ``mip.net``; pass the original when the
    model was built on a rescaled copy). ``output_scale``: the factor the
    model's network scaled the output of ``net`` by
    (:func:`lipmip.rescale.scale_output`); the incumbent is divided by it.
    """
    if result.x is None:
        return None
    net = mip.net if net is None else net
    x_solver = mip.input_point(result.x)
    pattern = [s > 0 for s in mip.slopes(result.x)]
    best = _best_witness(net, mip, interior_point_for_pattern(net, mip.region, pattern, x_ref=x_solver), x_solver)
    target = None if result.incumbent is None else mip.value_from_objective(result.incumbent) / output_scale
    short = best is None or (target is not None and best.value < target * (1 - 1e-9))
    if solver is not None and short and mip.query.is_scalar:
        try:
            deep = realise_pattern(mip, pattern, solver=solver, time_limit=time_limit)
        except SolverUnavailableError:  # e.g. HiGHS, which cannot take the quadratic model: no fallback
            deep = None
        best = best_witness(best, _best_witness(net, mip, deep))
    return best


def _best_witness(net: Network, mip: LipschitzMIP, *points: np.ndarray | None) -> Witness | None:
    """The best certified witness at ``points`` (Nones skipped)."""
    return best_witness(*(witness_from_point(net, mip.query, mip.region, p) for p in points if p is not None))


def realise_pattern(mip: LipschitzMIP, pattern: list[np.ndarray], *, solver: str = "scip",
                    time_limit: float = 10.0, margin: float = DEFAULT_MARGINS["lower"]) -> np.ndarray | None:
    """A point of the region inside the activation region of ``pattern`` (one
    bool array per layer, as from ``mip.slopes(x) > 0``), with every neuron
    that is unstable over the region at least ``margin · (u_j - l_j)`` on
    its side: the lower version of this module with its binaries fixed to
    the pattern and a zero objective, solved by ``solver``. ``None`` when
    no such point exists (the pattern is thinner than the margin) or the
    solver finds none in time. A candidate only: certify it with
    :func:`~lipmip.witness.witness_from_point`. ``solver`` must take
    quadratic constraints (SCIP, Gurobi); otherwise
    :class:`~lipmip.errors.SolverUnavailableError` is raised.
    """
    lower = build_miqcqp(mip.net, mip.region, mip.query, mip.forward, version="lower", margin=margin)
    model = lower.model
    for enc, on in zip(lower.layers, pattern):
        has = np.flatnonzero(enc.a >= 0)
        value = np.asarray(on, dtype=bool)[has].astype(np.float64)
        model.lb[enc.a[has]] = value
        model.ub[enc.a[has]] = value
    model.objective = np.zeros(model.num_variables)
    model.objective_quadratic = None
    result = solve_with_fallback(model, solver, SolveOptions(time_limit=time_limit))
    return None if result.x is None else lower.input_point(result.x)


def pattern_is_realised(mip: LipschitzMIP, solution: np.ndarray) -> bool:
    """Whether the input point of ``solution`` lies strictly inside the
    activation region of the solution's binaries: every neuron with a binary
    has its float64 pre-activation on the binary's side by more than a
    rigorous bound on the rounding of the forward pass (so the network's
    gradient there is the pattern's gradient, in exact arithmetic). The
    point must lie in the region; a solver's point on the region's boundary
    that rounding puts a hair outside is first pulled toward the centre by a
    relative 1e-9. This is what the lower version promises for its feasible
    points (when the solver's tolerances are small against the margins); for
    the upper version it may fail on a kink."""
    sol = np.asarray(solution, dtype=np.float64)
    x = mip.input_point(sol)
    if not mip.region.contains(x):
        c = mip.region.center
        x = c + (1 - 1e-9) * (x - c)
        if not mip.region.contains(x):
            return False
    z, err = pre_activations_with_error(mip.net, x)
    start = 0
    for enc in mip.layers:
        n = enc.z.size
        has = np.flatnonzero(enc.a >= 0)
        if has.size:
            on = np.round(sol[enc.a[has]]) > 0
            zk, ek = z[start + has], err[start + has]
            if not np.all(np.where(on, zk - ek, -zk - ek) > 0):
                return False
        start += n
    return True
