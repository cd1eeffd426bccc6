"""A solver-neutral mixed-integer model: what ``lipmip.formulate`` builds and
every backend in ``lipmip.solvers`` solves.

    maximise    cᵀx + xᵀ Q x + constant
    subject to  row_lo <= A x <= row_hi
                qc_lo_k <= xᵀ Q_k x + a_kᵀ x <= qc_hi_k      (quadratic constraints, optional)
                lb <= x <= ub,  x_j integer where ``integer[j]``

All bounds on variables are finite (every variable of a Lipschitz MIP is
bounded by neuron or gradient bounds). Matrices are scipy sparse; ``Q`` and
``Q_k`` are used as given (``xᵀQx``, not symmetrised by the caller).
Built incrementally with :meth:`add_variables` and :meth:`add_rows`, then
frozen by :meth:`finish`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["MIPModel", "QuadraticConstraint"]


@dataclass(frozen=True, eq=False)
class QuadraticConstraint:
    """``lo <= xᵀ Q x + aᵀ x <= hi`` (one side may be infinite)."""

    Q: sp.csr_matrix
    a: np.ndarray
    lo: float
    hi: float


@dataclass(eq=False)
class MIPModel:
    """A maximisation MILP / MIQCP; see the module docstring."""

    lb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ub: np.ndarray = field(default_factory=lambda: np.zeros(0))
    integer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    names: list[str] = field(default_factory=list)
    rows: list[tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = field(default_factory=list)
    objective: np.ndarray | None = None
    objective_quadratic: sp.csr_matrix | None = None
    objective_constant: float = 0.0
    quadratic_constraints: list[QuadraticConstraint] = field(default_factory=list)
    _A: sp.csr_matrix | None = None

    # ------------------------------------------------------------------ building
    @property
    def num_variables(self) -> int:
        return int(self.lb.size)

    def add_variables(self, lb, ub, *, integer: bool = False, name: str = "x") -> np.ndarray:
        """Append variables with bounds ``lb <= x <= ub`` (arrays of one shape,
        finite); returns their indices (same shape)."""
        lb = np.atleast_1d(np.asarray(lb, dtype=np.float64))
        ub = np.atleast_1d(np.asarray(ub, dtype=np.float64))
        lb, ub = np.broadcast_arrays(lb, ub)
        if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
            raise ValueError(f"variables {name!r} need finite bounds")
        start = self.num_variables
        n = lb.size
        self.lb = np.concatenate([self.lb, lb.reshape(-1)])
        self.ub = np.concatenate([self.ub, ub.reshape(-1)])
        self.integer = np.concatenate([self.integer, np.full(n, bool(integer))])
        self.names.extend(f"{name}[{i}]" for i in range(n))
        self._A = None
        return np.arange(start, start + n).reshape(lb.shape)

    def add_binaries(self, shape, *, name: str = "a") -> np.ndarray:
        return self.add_variables(np.zeros(shape), np.ones(shape), integer=True, name=name)

    def add_rows(self, A, lo, hi) -> None:
        """Append ``lo <= A x <= hi`` (``A`` with as many columns as variables
        exist now; later variables get zero coefficients)."""
        A = sp.csr_matrix(A, dtype=np.float64)
        lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (A.shape[0],)).copy()
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (A.shape[0],)).copy()
        self.rows.append((A, lo, hi))
        self._A = None

    def add_row_entries(self, cols, coefs, lo, hi) -> None:
        """Append rows given as (k, width) arrays of column indices and coefficients."""
        cols = np.atleast_2d(np.asarray(cols))
        coefs = np.atleast_2d(np.asarray(coefs, dtype=np.float64))
        k, w = cols.shape
        A = sp.csr_matrix((coefs.reshape(-1), cols.reshape(-1), np.arange(0, k * w + 1, w)), shape=(k, self.num_variables))
        self.add_rows(A, lo, hi)

    # ------------------------------------------------------------------ reading
    @property
    def A(self) -> sp.csr_matrix:
        """All linear rows stacked, with one column per variable."""
        if self._A is None:
            n = self.num_variables
            blocks = [sp.csr_matrix((A.data, A.indices, A.indptr), shape=(A.shape[0], n)) for A, _, _ in self.rows]
            self._A = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n))
        return self._A

    @property
    def row_lo(self) -> np.ndarray:
        return np.concatenate([lo for _, lo, _ in self.rows]) if self.rows else np.zeros(0)

    @property
    def row_hi(self) -> np.ndarray:
        return np.concatenate([hi for _, _, hi in self.rows]) if self.rows else np.zeros(0)

    @property
    def linear_objective(self) -> np.ndarray:
        c = np.zeros(self.num_variables)
        if self.objective is not None:
            c[: self.objective.size] = self.objective
        return c

    @property
    def is_linear(self) -> bool:
        return self.objective_quadratic is None and not self.quadratic_constraints

    def evaluate(self, x: np.ndarray) -> float:
        """Objective value at ``x``."""
        value = float(self.linear_objective @ x) + self.objective_constant
        if self.objective_quadratic is not None:
            Q = _padded(self.objective_quadratic, self.num_variables)
            value += float(x @ (Q @ x))
        return value

    def max_violation(self, x: np.ndarray) -> float:
        """Largest violation of any bound, row or integrality at ``x`` (0 if feasible)."""
        v = [np.max(self.lb - x, initial=0.0), np.max(x - self.ub, initial=0.0)]
        if self.rows:
            ax = self.A @ x
            v += [np.max(self.row_lo - ax, initial=0.0), np.max(ax - self.row_hi, initial=0.0)]
        v.append(np.max(np.abs(x[self.integer] - np.round(x[self.integer])), initial=0.0))
        for qc in self.quadratic_constraints:
            Q = _padded(qc.Q, self.num_variables)
            a = np.zeros(self.num_variables)
            a[: qc.a.size] = qc.a
            val = float(x @ (Q @ x) + a @ x)
            v += [max(qc.lo - val, 0.0), max(val - qc.hi, 0.0)]
        return float(max(v))


def _padded(Q: sp.spmatrix, n: int) -> sp.csr_matrix:
    Q = sp.csr_matrix(Q)
    if Q.shape == (n, n):
        return Q
    Q = Q.tocoo()
    return sp.csr_matrix((Q.data, (Q.row, Q.col)), shape=(n, n))
