"""Linear programs on HiGHS with rigorous (rounding-safe) optimal values.

A :class:`LinearProgram` is ``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``
with every column bounded. It is built once and then optimised for many
objectives in turn (HiGHS keeps the basis, so each re-solve is warm).

The value a solver reports is only as good as its tolerances. lipmip never
uses it as a bound. Instead, for ``max c·x``, any multiplier vector ``y``
gives the weak-duality bound

    c·x = yᵀ(Ax) + (c - Aᵀy)·x <= Σ_i max(y_i row_lo_i, y_i row_hi_i) + Σ_j max(r_j col_lo_j, r_j col_hi_j)

for every feasible ``x`` (``r = c - Aᵀy``), whatever ``y`` is; HiGHS's row
duals make it tight. The sum is computed in float64 and then enlarged by a
bound on its own rounding error, so the result is an upper bound on the exact
LP optimum (Neumaier and Shcherbina's safe bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lipmip.errors import SolverUnavailableError
from lipmip.rounding import gamma as _gamma

__all__ = ["LinearProgram", "LPResult", "highs_model", "highspy_module"]

_INF = np.inf


@dataclass(frozen=True)
class LPResult:
    """``bound``: a rigorous upper bound (maximise) or lower bound (minimise)
    on the exact optimum; ``x``: the solver's (approximately optimal) point,
    or ``None`` when it returned none; ``solver_value``: what the solver
    reported (not certified); ``status``: the solver's model status."""

    bound: float
    x: np.ndarray | None
    solver_value: float
    status: str


def highspy_module():
    """The highspy module, or a SolverUnavailableError naming the problem."""
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - highspy is a core dependency
        raise SolverUnavailableError(f"HiGHS (highspy) is not installed: {exc}") from None
    return highspy


def highs_model(A, row_lo, row_hi, col_lo, col_hi, cost=None, integer=None):
    """A ``highspy.HighsLp`` for ``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``
    (infinite row bounds allowed), objective ``cost`` (default 0) and the
    columns flagged in ``integer`` integral."""
    highspy = highspy_module()
    csc = sp.csc_matrix(A, dtype=np.float64)
    csc.sort_indices()
    m, n = csc.shape
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = np.zeros(n) if cost is None else np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.where(np.isfinite(row_lo), row_lo, -inf)
    lp.row_upper_ = np.where(np.isfinite(row_hi), row_hi, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    if integer is not None:
        kinds = {True: highspy.HighsVarType.kInteger, False: highspy.HighsVarType.kContinuous}
        lp.integrality_ = [kinds[bool(flag)] for flag in integer]
    return lp


class LinearProgram:
    """An LP with bounded columns, solved repeatedly with HiGHS.

    ``A`` is any scipy sparse matrix or dense array of shape ``(m, n)``.
    Column bounds must be finite (they make every bound computed here
    finite); row bounds may be infinite on one side.
    """

    def __init__(self, A, row_lo, row_hi, col_lo, col_hi, *, time_limit: float | None = None):
        highspy = highspy_module()
        self._A = sp.csr_matrix(A, dtype=np.float64)
        m, n = self._A.shape
        self.row_lo = np.asarray(row_lo, dtype=np.float64).reshape(m)
        self.row_hi = np.asarray(row_hi, dtype=np.float64).reshape(m)
        self.col_lo = np.asarray(col_lo, dtype=np.float64).reshape(n)
        self.col_hi = np.asarray(col_hi, dtype=np.float64).reshape(n)
        if not (np.all(np.isfinite(self.col_lo)) and np.all(np.isfinite(self.col_hi))):
            raise ValueError("LinearProgram needs finite column bounds")
        self._h = highspy.Highs()
        self._h.setOptionValue("output_flag", False)
        self._h.setOptionValue("threads", 1)
        if time_limit is not None:
            self._h.setOptionValue("time_limit", float(time_limit))
        lp = highs_model(self._A, self.row_lo, self.row_hi, self.col_lo, self.col_hi)
        self._h.passModel(lp)
        self._hs = highspy
        self._cost = np.zeros(n)
        self._refresh_cache()

    @property
    def shape(self) -> tuple[int, int]:
        return self._A.shape

    def add_rows(self, A_new, lo, hi) -> None:
        """Append rows ``lo <= A_new x <= hi`` (e.g. cutting planes)."""
        A_new = sp.csr_matrix(A_new, dtype=np.float64)
        lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(hi, dtype=np.float64).reshape(-1)
        inf = self._hs.kHighsInf
        self._h.addRows(
            A_new.shape[0],
            np.where(np.isfinite(lo), lo, -inf),
            np.where(np.isfinite(hi), hi, inf),
            A_new.nnz,
            A_new.indptr.astype(np.int32),
            A_new.indices.astype(np.int32),
            A_new.data,
        )
        self._A = sp.vstack([self._A, A_new], format="csr")
        self.row_lo = np.concatenate([self.row_lo, lo])
        self.row_hi = np.concatenate([self.row_hi, hi])
        self._refresh_cache()

    def _refresh_cache(self) -> None:
        """Matrices the safe bound needs on every solve."""
        self._AT = self._A.T.tocsr()
        self._absAT = abs(self._AT)
        # longest column + 2: the number of terms in each entry of c - Aᵀy
        self._terms = int(np.bincount(self._A.indices, minlength=self._A.shape[1]).max(initial=0)) + 2

    def set_column_bounds(self, index: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Tighten (or change) the bounds of some columns."""
        index = np.asarray(index, dtype=np.int32)
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        self._h.changeColsBounds(index.size, index, lo, hi)
        self.col_lo[index] = lo
        self.col_hi[index] = hi

    def maximize(self, c) -> LPResult:
        """Maximise ``c·x``; ``bound`` >= the exact maximum."""
        return self._solve(np.asarray(c, dtype=np.float64), sense=1.0)

    def minimize(self, c) -> LPResult:
        """Minimise ``c·x``; ``bound`` <= the exact minimum."""
        res = self._solve(-np.asarray(c, dtype=np.float64), sense=1.0)
        return LPResult(bound=-res.bound, x=res.x, solver_value=-res.solver_value, status=res.status)

    # ------------------------------------------------------------------ internals
    def _solve(self, c: np.ndarray, sense: float) -> LPResult:
        n = self._A.shape[1]
        changed = np.flatnonzero(c != self._cost)
        if changed.size:
            self._h.changeColsCost(changed.size, changed.astype(np.int32), c[changed])
            self._cost = c.copy()
        self._h.changeObjectiveSense(self._hs.ObjSense.kMaximize)
        self._h.run()
        status = self._h.modelStatusToString(self._h.getModelStatus())
        sol = self._h.getSolution()
        x = np.asarray(sol.col_value, dtype=np.float64) if sol.value_valid else None
        y = np.asarray(sol.row_dual, dtype=np.float64) if sol.dual_valid else np.zeros(self._A.shape[0])
        value = float(self._h.getInfo().objective_function_value) if sol.value_valid else _INF
        # both signs of the multipliers give valid bounds; HiGHS's sign convention then does not matter
        bound = min(self._safe_upper_bound(c, y), self._safe_upper_bound(c, -y))
        if x is not None and x.shape != (n,):
            x = None
        return LPResult(bound=bound, x=x, solver_value=value, status=status)

    def _safe_upper_bound(self, c: np.ndarray, y: np.ndarray) -> float:
        """Weak-duality bound on ``max c·x`` for multipliers ``y``, rounded up."""
        y = y.copy()
        y[(y > 0) & ~np.isfinite(self.row_hi)] = 0.0
        y[(y < 0) & ~np.isfinite(self.row_lo)] = 0.0
        row_terms = np.where(y > 0, y * np.where(np.isfinite(self.row_hi), self.row_hi, 0.0),
                             y * np.where(np.isfinite(self.row_lo), self.row_lo, 0.0))
        r = c - self._AT @ y
        # rounding of r: |fl(r) - r| <= γ_k (|c| + |A|ᵀ|y|), k = longest column + 2
        r_err = _gamma(self._terms) * (np.abs(c) + self._absAT @ np.abs(y))
        col_terms = np.maximum((r + r_err) * self.col_hi, (r - r_err) * self.col_hi)
        col_terms = np.maximum(col_terms, np.maximum((r + r_err) * self.col_lo, (r - r_err) * self.col_lo))
        total = float(row_terms.sum() + col_terms.sum())
        magnitude = float(np.abs(row_terms).sum() + np.abs(col_terms).sum())
        return float(total + _gamma(row_terms.size + col_terms.size + 2) * magnitude * 2 + 1e-300)


