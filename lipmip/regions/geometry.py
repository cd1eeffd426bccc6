"""The input region as the enumeration sees it: slack of a point, and the
linear program that maximises the slack over a cell.

A *cell* is ``{x in region : σ_j z_j(x) >= 0}`` for the neurons fixed so far,
each ``z_j`` affine on the cell. Its *slack* at ``x`` is a Euclidean margin,
the smallest of

* the neuron margins ``σ_j z_j(x) / s_j``, with ``s_j`` the 2-norm of the
  neuron's gradient on the free coordinates (the distance to its hyperplane);
* the distance to the region's boundary within the free coordinates: for a
  box or ℓ∞ ball the distance to the nearest face, for an ℓ2 ball
  ``r - ‖x - c‖₂``, for an ℓ1 ball ``(r - ‖x - c‖₁) / √n`` (the distance to
  the nearest facet hyperplane).

A cell meets the region with full dimension exactly when some point has
positive slack. :meth:`RegionGeometry.max_slack` bounds the largest slack by
an LP whose feasible set contains every point of the cell in exact arithmetic
(each neuron row is loosened by a bound on the float64 error of its affine
map, the region rows are exact or loosened outward, and an ℓ2 ball is
replaced by tangent cuts, which are implied by it). So when the LP's rigorous
bound is ``<= 0`` the cell has empty interior in the region, whatever the
solver's tolerances.

The LP works in the coordinates ``x = c + h y`` with ``h`` a power of two
(scaling by ``h`` is exact) and with every neuron row scaled by a power of
two, so that solver tolerances are relative to the size of the region.

A cell whose largest slack is exactly 0 (a point or a piece of a hyperplane)
keeps an LP bound a hair above 0 whatever is done in float64;
:meth:`RegionGeometry.certify_no_interior` proves such cells empty with an
exact rational Farkas certificate instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lipmip.domains import Ball, Box, Region
from lipmip.lp import LinearProgram
from lipmip.rounding import gamma as _gamma
from lipmip.witness import free_coordinates

__all__ = ["RegionGeometry", "NeuronRows", "SlackBound", "ExactRow"]

_TINY = 1e-300
_MAX_CUT_ROUNDS = 60  # tangent-cut re-solves per ℓ2-ball LP
_MAX_POOL = 256  # tangent cuts remembered across LPs (beyond the 2n axis cuts)
_T_FLOOR_CAP = 1e9  # the slack variable may go down to -this (in units of h)




def _solve_exact(M: list[list[Fraction]], b: list[Fraction]) -> list[Fraction] | None:
    """The unique solution of ``M w = b`` (rationals, Gauss-Jordan), or None
    when the system is inconsistent or its columns are dependent."""
    rows, cols = len(M), len(M[0]) if M else 0
    aug = [list(M[r]) + [b[r]] for r in range(rows)]
    pivots = []
    r = 0
    for c in range(cols):
        p = next((i for i in range(r, rows) if aug[i][c] != 0), None)
        if p is None:
            return None  # dependent column: not a vertex support
        aug[r], aug[p] = aug[p], aug[r]
        inv = 1 / aug[r][c]
        aug[r] = [v * inv for v in aug[r]]
        for i in range(rows):
            if i != r and aug[i][c] != 0:
                f = aug[i][c]
                aug[i] = [a - f * v for a, v in zip(aug[i], aug[r])]
        pivots.append(c)
        r += 1
    if any(aug[i][cols] != 0 for i in range(r, rows)):
        return None
    return [aug[i][cols] for i in range(cols)]


def _power_of_two_at_least(value: float) -> float:
    """The smallest power of two ``>= value`` (1.0 for ``value <= 0``)."""
    if not value > 0:
        return 1.0
    mantissa, exponent = math.frexp(value)
    return math.ldexp(1.0, exponent - 1) if mantissa == 0.5 else math.ldexp(1.0, exponent)


@dataclass(frozen=True, eq=False)
class NeuronRows:
    """The sign constraints of the neurons fixed by branching, ready for the LP.

    Row ``i`` reads ``coef_i · y - tcoef_i t' >= rhs_i`` in scaled coordinates.
    ``flat`` indexes the neuron in the concatenation of all layers'
    pre-activations, ``sign`` is +1 (active) or -1 (inactive), ``scale`` is
    ``s_j`` (for the slack of a point).
    """

    coef: np.ndarray
    tcoef: np.ndarray
    rhs: np.ndarray
    flat: np.ndarray
    sign: np.ndarray
    scale: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "NeuronRows":
        return cls(np.zeros((0, n)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return int(self.rhs.size)

    def with_row(self, coef: np.ndarray, tcoef: float, rhs: float, flat: int, sign: float, scale: float) -> "NeuronRows":
        """A copy with one more row (the receiver is left unchanged)."""
        return NeuronRows(
            np.vstack([self.coef, coef[None, :]]),
            np.append(self.tcoef, tcoef),
            np.append(self.rhs, rhs),
            np.append(self.flat, flat),
            np.append(self.sign, sign),
            np.append(self.scale, scale),
        )


@dataclass(frozen=True)
class SlackBound:
    """Result of :meth:`RegionGeometry.max_slack`: ``bound`` >= the largest
    slack of any point of the cell (exact arithmetic; ``inf`` when the solver
    gave no usable certificate), ``x`` the solver's maximiser in input
    coordinates (or ``None``), ``solves`` the LP solves it took."""

    bound: float
    x: np.ndarray | None
    solves: int


# One exact constraint ``coef · x + const >= 0`` (rationals; ``coef`` has the input's length).
ExactRow = tuple[list[Fraction], Fraction]


class RegionGeometry:
    """Slack and LP rows of a :class:`~lipmip.Box` or :class:`~lipmip.Ball`.

    Box coordinates with ``lo == hi`` are fixed: points keep them at ``lo``,
    and slack is measured within the free coordinates only.
    """

    def __init__(self, region: Region):
        self.region = region
        self.n = region.dim
        self.free = free_coordinates(region)
        if isinstance(region, Box):
            self.kind = "box"
            self.center = np.where(self.free, region.lo / 2 + region.hi / 2, region.lo)
            half = (region.hi - region.lo)[self.free] / 2
            self.cap = float(half.max()) if half.size else 0.0
        elif isinstance(region, Ball):
            self.kind = {1.0: "l1", 2.0: "l2", math.inf: "linf"}[region.p]
            self.center = np.array(region.center)
            self.cap = float(region.radius)
        else:  # pragma: no cover - as_region admits only these two
            raise TypeError(f"unsupported region {type(region).__name__}")
        self.h = _power_of_two_at_least(self.cap)
        self.eps = 1e-9 * self.cap  # a point is certified interior when its slack exceeds this
        bbox = region.bounding_box()
        self.abs_max = np.maximum(np.abs(bbox.lo), np.abs(bbox.hi))
        self.abs_center = np.abs(self.center)
        self.y_lo, self.y_hi = self._scaled_box()
        self._cuts = self._axis_cuts() if self.kind == "l2" else np.zeros((0, self.n))

    # ------------------------------------------------------------------ points
    def region_slack(self, x: np.ndarray) -> float:
        """The distance from ``x`` to the region's boundary (negative outside),
        in float64; ``inf`` for a box with no free coordinate that holds ``x``."""
        region = self.region
        if self.kind == "box":
            if np.any(x[~self.free] != region.lo[~self.free]):
                return -math.inf
            f = self.free
            if not np.any(f):
                return math.inf
            return float(min(np.min(x[f] - region.lo[f]), np.min(region.hi[f] - x[f])))
        d = x - self.center
        r = region.radius
        if self.kind == "linf":
            return float(r - np.max(np.abs(d)))
        if self.kind == "l2":
            return float(r - np.linalg.norm(d))
        return float((r - np.sum(np.abs(d))) / math.sqrt(self.n))

    def to_x(self, y: np.ndarray) -> np.ndarray:
        """Input coordinates of a scaled point; fixed coordinates are exact."""
        x = self.center + self.h * np.asarray(y, dtype=np.float64)
        return np.where(self.free, x, self.center)

    # ------------------------------------------------------------------ neuron rows
    def neuron_row(self, a: np.ndarray, beta: float, err: float, sign: float, s: float) -> tuple[np.ndarray, float, float]:
        """LP row for ``sign * z(x) >= t s`` where ``z(x) = a·(x - c) + beta``
        up to ``err`` (in exact arithmetic, for every x of the region).

        In scaled coordinates the row is ``sign (h a·y + beta) + err >= h s t'``;
        it is multiplied by a power of two so that the coefficient of ``t'``
        lies in [0.5, 1). Only the right-hand side is rounded, downward, so
        the row holds at every point of the exact cell. Returns
        ``(coef, tcoef, rhs)`` for ``coef·y - tcoef t' >= rhs``.
        """
        _, e = math.frexp(s * self.h)
        k = math.ldexp(1.0, -e)
        coef = (sign * k * self.h) * a  # exact: powers of two and a sign
        rhs = -sign * beta - err  # one rounding, undone by the step down below
        return coef, k * self.h * s, float(np.nextafter(rhs, -np.inf)) * k

    # ------------------------------------------------------------------ the LP
    def max_slack(self, rows: NeuronRows, x_ref: np.ndarray) -> SlackBound:
        """A rigorous upper bound on the largest slack over the cell of ``rows``,
        and the LP's maximiser. ``x_ref`` (any point of the region, ideally of
        the parent cell) sets how negative the slack variable may go so that
        the LP stays feasible."""
        n, m = self.n, len(rows)
        extra = n if self.kind == "l1" else 0
        nv = n + 1 + extra
        reg_A, reg_lo, reg_hi = self._region_rows(nv)
        neuron_A = np.hstack([rows.coef, -rows.tcoef[:, None], np.zeros((m, extra))])
        A = np.vstack([neuron_A, reg_A])
        row_lo = np.concatenate([rows.rhs, reg_lo])
        row_hi = np.concatenate([np.full(m, np.inf), reg_hi])
        t_floor = self._t_floor(rows, x_ref)
        rho = self.cap / self.h
        col_lo = np.concatenate([self.y_lo, [-t_floor], np.zeros(extra)])
        col_hi = np.concatenate([self.y_hi, [rho], np.full(extra, rho)])
        lp = LinearProgram(A, row_lo, row_hi, col_lo, col_hi)
        objective = np.zeros(nv)
        objective[n] = 1.0
        solves = 0
        while True:
            res = lp.maximize(objective)
            solves += 1
            if self.kind != "l2" or not self._needs_cut(res.x, res.bound) or solves >= _MAX_CUT_ROUNDS:
                break
            cut_A, cut_hi = self._tangent_cut(res.x[:n])
            self._remember_cut(cut_A[:n])
            lp.add_rows(cut_A[None, :], [-np.inf], [cut_hi])
        x = None if res.x is None or not np.all(np.isfinite(res.x)) else self.to_x(res.x[:n])
        return SlackBound(bound=float(res.bound) * self.h, x=x, solves=solves)

    # ------------------------------------------------------------------ exact certificate
    def certify_no_interior(self, neuron_rows: list[ExactRow]) -> bool:
        """True only if it is proved, in exact rational arithmetic, that no
        point of the region's (relative) interior satisfies every
        ``coef · x + const > 0`` strictly, i.e. the cell has empty interior.

        This settles cells whose largest slack is exactly 0 (hyperplanes that
        coincide, meet the region only on its boundary, or pinch the cell to a
        point), where float bounds can never reach ``<= 0``. The system is
        ``g·v >= h`` in ``v = (x, u, t)`` (``u``: ℓ1 auxiliaries), ``t`` entering
        every strict row with coefficient 1 (any positive coefficients give
        the same answer). No point has ``t > 0`` iff some ``w >= 0`` has
        ``Σ w_i g_i = -e_t`` and ``Σ w_i h_i >= 0`` (LP duality). A float LP
        proposes the support of ``w``; the certificate is then solved for and
        checked exactly. False means "not proved", never "has interior".
        """
        G, h = self._exact_system(neuron_rows)
        if not G:
            return False
        nv = len(G[0])
        target = [Fraction(0)] * (nv - 1) + [Fraction(-1)]
        support = self._certificate_support(G, h, target)
        if support is None:
            return False
        w = _solve_exact([[G[i][k] for i in support] for k in range(nv)], target)
        if w is None or any(v < 0 for v in w):
            return False
        return sum((wi * h[i] for wi, i in zip(w, support)), Fraction(0)) >= 0

    def _exact_system(self, neuron_rows: list[ExactRow]) -> tuple[list[list[Fraction]], list[Fraction]]:
        """Exact rows ``g · (x, u, t) >= h`` of the neuron constraints and the region."""
        n = self.n
        nu = n if self.kind == "l1" else 0
        one, zero = Fraction(1), Fraction(0)
        G: list[list[Fraction]] = []
        h: list[Fraction] = []

        def add(x_coef: dict[int, Fraction], rhs: Fraction, t: Fraction, u_coef: dict[int, Fraction] | None = None) -> None:
            row = [zero] * (n + nu + 1)
            for i, v in x_coef.items():
                row[i] = v
            for i, v in (u_coef or {}).items():
                row[n + i] = v
            row[-1] = -t
            G.append(row)
            h.append(rhs)

        for coef, const in neuron_rows:
            add(dict(enumerate(coef)), -const, one)
        region = self.region
        if self.kind == "box":
            for i in range(n):
                lo, hi = Fraction(float(region.lo[i])), Fraction(float(region.hi[i]))
                t = one if self.free[i] else zero
                add({i: one}, lo, t)
                add({i: -one}, -hi, t)
        elif self.kind == "linf":
            r = Fraction(region.radius)
            for i in range(n):
                c = Fraction(float(self.center[i]))
                add({i: one}, c - r, one)
                add({i: -one}, -c - r, one)
        elif self.kind == "l1":
            for i in range(n):
                c = Fraction(float(self.center[i]))
                add({i: -one}, -c, zero, {i: one})  # u_i >= x_i - c_i
                add({i: one}, c, zero, {i: one})  # u_i >= c_i - x_i
            add({}, -Fraction(region.radius), one, {i: -one for i in range(n)})  # Σ u_i < r
        else:
            for u in self._cuts:
                row, rhs = self._cut_row(u, n + 1)
                # in x: u·(x - c) <= ‖u‖ (r - t), a tangent cut of the ball
                norm_u = Fraction(float(row[n]))
                uc = sum((Fraction(float(v)) * Fraction(float(c)) for v, c in zip(u, self.center)), Fraction(0))
                add({i: -Fraction(float(v)) for i, v in enumerate(u)}, -(norm_u * Fraction(region.radius) + uc), one)
        return G, h

    def _certificate_support(self, G: list[list[Fraction]], h: list[Fraction], target: list[Fraction]) -> list[int] | None:
        """The support of a vertex solution of the float LP
        ``max h·w : Gᵀ w = target, w >= 0`` (rows scaled to unit size), or None."""
        from scipy.optimize import linprog  # only needed for degenerate cells

        Gf = np.array([[float(v) for v in row] for row in G])
        hf = np.array([float(v) for v in h])
        scale = np.max(np.abs(Gf), axis=1)
        scale[scale == 0] = 1.0
        res = linprog(-hf / scale, A_eq=(Gf / scale[:, None]).T, b_eq=[float(v) for v in target],
                      bounds=(0, None), method="highs-ds")
        if res.status != 0 or res.x is None or -res.fun < -1e-9 * max(1.0, float(np.abs(hf / scale).max())):
            return None
        w = res.x
        support = np.flatnonzero(w > 1e-12 * max(1.0, float(w.max())))
        return support.tolist() if support.size else None

    # ------------------------------------------------------------------ internals
    def _scaled_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Column bounds of ``y``: the region's bounding box in scaled
        coordinates, rounded outward (fixed coordinates pinned to 0)."""
        if self.kind == "box":
            lo = np.nextafter((self.region.lo - self.center) / self.h, -np.inf)
            hi = np.nextafter((self.region.hi - self.center) / self.h, np.inf)
            return np.where(self.free, lo, 0.0), np.where(self.free, hi, 0.0)
        rho = self.cap / self.h  # exact
        return np.full(self.n, -rho), np.full(self.n, rho)

    def _region_rows(self, nv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``lo <= A (y, t', u) <= hi`` holding at every point of the region
        whose slack is at least ``h t'``."""
        n = self.n
        if self.kind in ("box", "linf"):
            idx = np.flatnonzero(self.free)
            k = idx.size
            A = np.zeros((2 * k, nv))
            A[np.arange(k), idx] = 1.0
            A[k + np.arange(k), idx] = 1.0
            A[:k, n] = -1.0  # y_i - t' >= y_lo_i
            A[k:, n] = 1.0  # y_i + t' <= y_hi_i
            lo = np.concatenate([self.y_lo[idx], np.full(k, -np.inf)])
            hi = np.concatenate([np.full(k, np.inf), self.y_hi[idx]])
            return A, lo, hi
        rho = self.cap / self.h
        if self.kind == "l1":
            eye = np.eye(n)
            upper = np.hstack([-eye, np.zeros((n, 1)), eye])  # u_i - y_i >= 0
            lower = np.hstack([eye, np.zeros((n, 1)), eye])  # u_i + y_i >= 0
            total = np.concatenate([np.zeros(n), [math.sqrt(n)], np.ones(n)])[None, :]  # Σu + √n t' <= ρ
            A = np.vstack([upper, lower, total])
            lo = np.concatenate([np.zeros(2 * n), [-np.inf]])
            hi = np.concatenate([np.full(2 * n, np.inf), [rho]])
            return A, lo, hi
        rows = [self._cut_row(u, nv) for u in self._cuts]
        A = np.array([r[0] for r in rows])
        hi = np.array([r[1] for r in rows])
        return A, np.full(hi.size, -np.inf), hi

    def _axis_cuts(self) -> np.ndarray:
        eye = np.eye(self.n)
        return np.vstack([eye, -eye])

    def _cut_row(self, u: np.ndarray, nv: int) -> tuple[np.ndarray, float]:
        """The tangent cut ``u·y + ‖u‖ t' <= ‖u‖ ρ``: implied by
        ``‖y‖₂ <= ρ - t'`` (Cauchy-Schwarz, with ``t' <= ρ``). ``‖u‖`` is
        rounded up, which only loosens the cut."""
        norm_u = float(np.nextafter(float(np.linalg.norm(u)) * (1 + 2 * _gamma(self.n + 2)), np.inf))
        row = np.zeros(nv)
        row[: self.n] = u
        row[self.n] = norm_u
        rho = self.cap / self.h
        return row, float(np.nextafter(norm_u * rho, np.inf))

    def _tangent_cut(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        return self._cut_row(y / np.linalg.norm(y), self.n + 1)

    def _needs_cut(self, z: np.ndarray | None, bound: float) -> bool:
        """Whether an ℓ2-ball LP point ``z = (y, t')`` is worth another cut: the
        LP claims positive slack but the point's true ball slack is below half
        of it."""
        if z is None or not bound > 0 or not np.all(np.isfinite(z)):
            return False
        y, t = z[: self.n], float(z[self.n])
        norm = float(np.linalg.norm(y))
        return t > 0 and norm > 0 and self.cap / self.h - norm < 0.5 * t

    def _remember_cut(self, u: np.ndarray) -> None:
        """Keep a cut for later LPs (valid for the whole ball)."""
        axis = 2 * self.n
        cuts = np.vstack([self._cuts, u[None, :]])
        if cuts.shape[0] > axis + _MAX_POOL:
            cuts = np.vstack([cuts[:axis], cuts[-_MAX_POOL:]])
        self._cuts = cuts

    def _t_floor(self, rows: NeuronRows, x_ref: np.ndarray) -> float:
        """How far below 0 the scaled slack ``t'`` may go: enough that
        ``(y_ref, t')`` satisfies every row, so the LP is feasible and its
        bound is finite and informative."""
        y = np.clip((x_ref - self.center) / self.h, self.y_lo, self.y_hi)
        worst = 0.0
        if len(rows):
            worst = min(worst, float(np.min((rows.coef @ y - rows.rhs) / rows.tcoef)))
        rho = self.cap / self.h
        if self.kind == "l1":
            worst = min(worst, (rho - float(np.sum(np.abs(y)))) / math.sqrt(self.n))
        elif self.kind == "l2":
            worst = min(worst, rho - float(np.linalg.norm(y)))
        floor = 1.0 + max(rho, -1.5 * worst)
        return min(floor, _T_FLOOR_CAP) if math.isfinite(floor) else _T_FLOOR_CAP
