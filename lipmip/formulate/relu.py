"""Mixed-integer encodings of ReLU neurons (the forward part of the Lipschitz MIP).

For one layer ``z = W h_prev + b``, ``h = σ(z)``, with pre-activation bounds
``l <= z <= u`` valid over the input region (from :mod:`lipmip.bounds`):

* identity layers and stably active neurons (``l >= 0``): ``h = z`` (the
  ``h`` index *is* the ``z`` index; no new variable, no binary);
* stably inactive neurons (``u <= 0``): ``h = 0`` (the model's shared
  variable fixed at zero);
* unstable neurons (``l < 0 < u``): a new ``h`` in ``[0, u]`` and a binary
  ``a`` (``a = 1`` ⇔ the neuron is active), linked to ``z`` and ``h`` by one
  of the encodings of :data:`ENCODINGS`.

Every encoding is *exact*: for binary ``a`` its feasible set is exactly
``{(z, h, a) : h = max(z, 0), a = 1 if z > 0, a = 0 if z < 0}`` (either value
of ``a`` at ``z = 0``), given that ``z`` and ``h_prev`` stay within the bounds
passed in. The encodings differ only in the strength of their LP relaxation.
Every big-M coefficient is a bound from :mod:`lipmip.bounds` (or an interval
sum of such bounds, rounded outward); none is an invented constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from lipmip.activations import IDENTITY
from lipmip.errors import InvalidQueryError
from lipmip.formulate.model import MIPModel
from lipmip.rounding import gamma

__all__ = [
    "ENCODINGS",
    "PARTITION_STRATEGIES",
    "UnstableNeurons",
    "LayerEncoding",
    "encode_bigm",
    "encode_partition",
    "encode_layer",
    "partition_inputs",
    "tidy_bounds",
    "SNAP",
    "TINY",
    "WIDE",
]

# bounds (big-M coefficients) of magnitude <= SNAP may be snapped to 0; those in (0, TINY) are
# widened to WIDE (see tidy_bounds)
SNAP = 1e-9
TINY = 1e-6
WIDE = 1e-4
_UNDERFLOW = 1e-300


@dataclass(frozen=True, eq=False)
class UnstableNeurons:
    """The unstable neurons of one layer, as an encoding sees them.

    ``z``, ``h``, ``a``: variable indices (one per neuron); ``lower < 0 < upper``
    their pre-activation bounds; ``W`` (rows of these neurons) and ``b`` the
    layer's affine map; ``prev``: indices of the previous layer's outputs
    (the input variables for the first layer) with ``prev_lo <= h_prev <=
    prev_hi``; ``zero``: index of the model's variable fixed at 0 (inputs
    aliased to it contribute nothing).
    """

    z: np.ndarray
    h: np.ndarray
    a: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    W: np.ndarray
    b: np.ndarray
    prev: np.ndarray
    prev_lo: np.ndarray
    prev_hi: np.ndarray
    zero: int


@dataclass(frozen=True, eq=False)
class LayerEncoding:
    """Variable indices of one encoded layer: ``z`` and ``h`` (one per neuron;
    ``h`` may alias ``z`` or the zero variable), ``a`` the binary of each
    neuron (``-1`` for stable neurons and identity layers), and ``aux``: for
    the partition encoding, ``(a, members, weights, v)`` tuples (``v`` is the
    active-branch copy ``a · Σ weights · h[members]`` of one input group's
    partial sum), used to complete a warm-start assignment."""

    z: np.ndarray
    h: np.ndarray
    a: np.ndarray
    aux: tuple = ()


def _sparse_rows(n_cols: int, rows: list[tuple[list[int], list[float]]]) -> sp.csr_matrix:
    """A CSR matrix from per-row (column, coefficient) lists."""
    data, cols, ptr = [], [], [0]
    for c, v in rows:
        cols.extend(c)
        data.extend(v)
        ptr.append(len(cols))
    return sp.csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(cols, dtype=np.int64), np.asarray(ptr)),
                         shape=(len(rows), n_cols))


def encode_bigm(model: MIPModel, n: UnstableNeurons) -> tuple:
    """The big-M encoding (four rows per neuron)::

        h >= z,    h >= 0,    h <= z - l (1 - a),    h <= u a,    a ∈ {0, 1}

    ``h >= 0`` is the variable's lower bound. With ``a = 1``: ``z <= h <= z``
    and ``h <= u``, so ``h = z >= 0``; with ``a = 0``: ``h <= u·0 = 0`` and
    ``h >= z``, so ``h = 0 >= z``. Exact whenever ``l <= z <= u``, which the
    variable bounds of ``z`` enforce. Returns no auxiliary variables.
    """
    k = n.z.size
    if k == 0:
        return ()
    ones = np.ones(k)
    # h - z >= 0
    model.add_row_entries(np.stack([n.h, n.z], 1), np.stack([ones, -ones], 1), 0.0, np.inf)
    # h - z - l a <= -l
    model.add_row_entries(np.stack([n.h, n.z, n.a], 1), np.stack([ones, -ones, -n.lower], 1), -np.inf, -n.lower)
    # h - u a <= 0
    model.add_row_entries(np.stack([n.h, n.a], 1), np.stack([ones, -n.upper], 1), -np.inf, 0.0)
    return ()


def partition_inputs(w: np.ndarray, parts: int, strategy: str = "equal_size") -> list[np.ndarray]:
    """Split the input positions with nonzero weight ``w`` into at most
    ``parts`` non-empty groups.

    * ``"equal_size"``: sort the inputs by weight value and cut the sorted list
      into ``parts`` contiguous pieces of (nearly) equal size (Tsay et al.'s
      equal-size partitioning);
    * ``"sorted"``: sort by ``|w|`` (largest first) and deal the inputs round
      robin, so every group gets a share of the large weights.
    """
    idx = np.flatnonzero(w)
    if idx.size == 0:
        return []
    parts = max(1, min(int(parts), idx.size))
    if strategy == "equal_size":
        order = idx[np.argsort(w[idx], kind="stable")]
        groups = np.array_split(order, parts)
    elif strategy == "sorted":
        order = idx[np.argsort(-np.abs(w[idx]), kind="stable")]
        groups = [order[p::parts] for p in range(parts)]
    else:
        raise InvalidQueryError(f"unknown partition strategy {strategy!r}; use one of {', '.join(PARTITION_STRATEGIES)}")
    return [np.sort(g) for g in groups if g.size]


def _group_range(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Rigorous ``[LB, UB]`` of ``Σ w_i h_i`` over ``lo <= h <= hi``, each side
    rounded outward by ``2 γ_{n+1} Σ |terms of that side|`` (so a side whose
    terms are all exactly 0, e.g. positive weights on ReLU outputs with lower
    bound 0, stays exactly 0), then tidied by :func:`tidy_bounds` (``snap=True``)."""
    t_lo = np.minimum(w * lo, w * hi)
    t_hi = np.maximum(w * lo, w * hi)
    g = 2 * gamma(w.size + 1)
    pad_lo = g * float(np.sum(np.abs(t_lo)))
    pad_hi = g * float(np.sum(np.abs(t_hi)))
    s_lo = float(np.sum(t_lo)) - (pad_lo + _UNDERFLOW if pad_lo > 0 else 0.0)
    s_hi = float(np.sum(t_hi)) + (pad_hi + _UNDERFLOW if pad_hi > 0 else 0.0)
    out_lo, out_hi = tidy_bounds(np.array([s_lo]), np.array([s_hi]), snap=True)
    return float(out_lo[0]), float(out_hi[0])


def tidy_bounds(lo: np.ndarray, hi: np.ndarray, *, snap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (big-M coefficients) kept clear of tiny magnitudes.

    * ``snap=True``: a bound with ``|b| <= SNAP`` (1e-9) becomes exactly 0.
      This is what HiGHS does to such a coefficient anyway (its
      ``small_matrix_value``), but applied consistently to the coefficient,
      the right-hand side and the variable bound. It moves a bound by at most
      1e-9, far inside every solver's feasibility tolerance, so the model
      stays sound up to those tolerances. Used for the gradient bounds and
      the partition group bounds, where such values are rounding pads
      around exact zeros. Never for the pre-activation bounds: moving those
      across 0 would change which neurons count as stable.
    * Then any bound with ``0 < |b| < TINY`` (1e-6) is widened to ``±WIDE``
      (1e-4; a lower bound in ``(0, TINY)`` becomes 0, an upper bound in
      ``(-TINY, 0)`` becomes 0). Widening is always sound and keeps every
      sign, hence every stability class.

    Every encoding here is exact for binary ``a`` with any valid bounds, so
    the MIP optimum does not change; only near-zero coefficients disappear.
    They matter: HiGHS 1.15's presolve probing returned wrong "optimal"
    values (e.g. 0 instead of 1.14) on Lipschitz MIPs with big-M
    coefficients of 1e-15 and 1e-7.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if snap:
        lo = np.where(np.abs(lo) <= SNAP, 0.0, lo)
        hi = np.where(np.abs(hi) <= SNAP, 0.0, hi)
    new_lo = np.where((lo > 0) & (lo < TINY), 0.0, np.where((lo < 0) & (lo > -TINY), -WIDE, lo))
    new_hi = np.where((hi < 0) & (hi > -TINY), 0.0, np.where((hi > 0) & (hi < TINY), WIDE, hi))
    return new_lo, new_hi


def encode_partition(model: MIPModel, n: UnstableNeurons, *, partitions: int | str = 2,
                     strategy: str = "equal_size") -> tuple:
    """The P-split encoding of Tsay, Kronqvist, Thebelt and Misener (2021,
    arXiv:2102.04373). The inputs of each neuron are split into groups
    ``S_1 .. S_P`` (:func:`partition_inputs`), with partial sums
    ``z_p = Σ_{i∈S_p} w_i h_prev_i`` bounded by ``LB_p <= z_p <= UB_p``
    (interval sums of the previous layer's output bounds, rounded outward).
    Auxiliary ``v_p`` is the active branch's copy of ``z_p`` in the convex
    hull of the disjunction ``[a = 0: h = 0 >= z] ∨ [a = 1: h = z >= 0]``::

        h = Σ_p v_p + b a
        h >= z                                   (inactive branch: z - h <= 0)
        LB_p a        <= v_p        <= UB_p a
        LB_p (1 - a)  <= z_p - v_p  <= UB_p (1 - a)
        h >= 0,   h <= u a,   h <= z - l (1 - a)     (the big-M rows, with the
                                                     tighter layer bounds l, u)

    ``a = 1`` forces ``v_p = z_p``, so ``h = z`` (and ``h >= 0`` gives
    ``z >= 0``); ``a = 0`` forces ``v_p = 0``, so ``h = 0 >= z``: exact. P = 1
    is the big-M formulation; P = fan-in (``partitions="fan_in"``) is the
    sharp (convex-hull over the input box) extended formulation, with a
    larger LP per node. P is capped at the number of nonzero weights; a
    neuron with no nonzero weight gets the big-M rows only.
    """
    if n.z.size == 0:
        return ()
    encode_bigm(model, n)  # valid for every P, and tighter than the group sums alone when l, u are
    aux = []
    for j in range(n.z.size):
        w = n.W[j].copy()
        w[n.prev == n.zero] = 0.0
        parts = w.size if partitions == "fan_in" else int(partitions)
        groups = partition_inputs(w, parts, strategy)
        if not groups:
            continue
        ranges = [_group_range(w[g], n.prev_lo[g], n.prev_hi[g]) for g in groups]
        lbs = np.array([r[0] for r in ranges])
        ubs = np.array([r[1] for r in ranges])
        v = model.add_variables(np.minimum(lbs, 0.0), np.maximum(ubs, 0.0), name=f"v{j}")
        nv = model.num_variables
        h, a = int(n.h[j]), int(n.a[j])
        rows: list[tuple[list[int], list[float]]] = []
        # h - Σ v_p - b a = 0
        rows.append(([h, *v.tolist(), a], [1.0, *([-1.0] * v.size), -float(n.b[j])]))
        model.add_rows(_sparse_rows(nv, rows), 0.0, 0.0)
        # v_p - LB_p a >= 0 ; v_p - UB_p a <= 0
        model.add_row_entries(np.stack([v, np.full(v.size, a)], 1), np.stack([np.ones(v.size), -lbs], 1), 0.0, np.inf)
        model.add_row_entries(np.stack([v, np.full(v.size, a)], 1), np.stack([np.ones(v.size), -ubs], 1), -np.inf, 0.0)
        # LB_p (1 - a) <= z_p - v_p <= UB_p (1 - a):
        #   z_p - v_p + LB_p a >= LB_p   and   z_p - v_p + UB_p a <= UB_p
        lo_rows, hi_rows = [], []
        for p, g in enumerate(groups):
            cols = [*n.prev[g].tolist(), int(v[p]), a]
            lo_rows.append((cols, [*w[g].tolist(), -1.0, float(lbs[p])]))
            hi_rows.append((cols, [*w[g].tolist(), -1.0, float(ubs[p])]))
            aux.append((a, n.prev[g].copy(), w[g].copy(), int(v[p])))
        model.add_rows(_sparse_rows(nv, lo_rows), lbs, np.inf)
        model.add_rows(_sparse_rows(nv, hi_rows), -np.inf, ubs)
    return tuple(aux)


Encoding = Callable[..., tuple]

ENCODINGS: dict[str, Encoding] = {"bigm": encode_bigm, "partition": encode_partition}
PARTITION_STRATEGIES = ("equal_size", "sorted")


def encode_layer(model: MIPModel, layer, lower: np.ndarray, upper: np.ndarray, prev: np.ndarray,
                 prev_lo: np.ndarray, prev_hi: np.ndarray, zero: int, *, encoding: str = "bigm",
                 **options) -> LayerEncoding:
    """Add one layer ``z = W h_prev + b``, ``h = σ(z)`` to ``model``.

    ``lower``/``upper``: bounds on ``z`` over the region (they become the
    bounds of the ``z`` variables and the big-M coefficients); ``prev``:
    indices of ``h_prev`` with bounds ``prev_lo``/``prev_hi``. Guarantee: for
    every input of the region, the true ``(z, h)`` with its activation
    pattern (``a = 1`` ⇔ ``z > 0``; either at ``z = 0``) is feasible, and
    every feasible point with binary ``a`` has ``h = σ(z)`` exactly.
    """
    if encoding not in ENCODINGS:
        raise InvalidQueryError(f"unknown ReLU encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    n_out = layer.out_features
    z = model.add_variables(lower, upper, name="z")
    W = layer.W
    keep = prev != zero
    # z - W h_prev = b
    cols = np.concatenate([z[:, None], np.broadcast_to(prev[keep], (n_out, int(keep.sum())))], axis=1)
    coefs = np.concatenate([np.ones((n_out, 1)), -W[:, keep]], axis=1)
    model.add_row_entries(cols, coefs, layer.b, layer.b)
    a = np.full(n_out, -1, dtype=np.int64)
    if layer.activation is IDENTITY:
        return LayerEncoding(z=z, h=z.copy(), a=a)
    active = lower >= 0
    inactive = ~active & (upper <= 0)
    unstable = ~active & ~inactive
    h = np.where(active, z, zero).astype(np.int64)
    idx = np.flatnonzero(unstable)
    aux: tuple = ()
    if idx.size:
        h[idx] = model.add_variables(np.zeros(idx.size), upper[idx], name="h")
        a[idx] = model.add_binaries(idx.size, name="a")
        neurons = UnstableNeurons(z=z[idx], h=h[idx], a=a[idx], lower=lower[idx], upper=upper[idx], W=W[idx],
                                  b=layer.b[idx], prev=prev, prev_lo=prev_lo, prev_hi=prev_hi, zero=zero)
        aux = ENCODINGS[encoding](model, neurons, **options)
    return LayerEncoding(z=z, h=h, a=a, aux=aux)
