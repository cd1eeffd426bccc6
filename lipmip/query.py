"""What to bound: a :class:`Query` names the function and the norms.

* Scalar query: ``g(x) = c · f(x)`` for a fixed vector ``c`` (one output,
  a logit difference ``f_i - f_j``, ...). Its Lipschitz constant with respect
  to ``‖·‖_α`` on the input is ``sup_x ‖∇g(x)‖_{α*}`` (α* the dual norm).
* Vector query: ``f`` itself, measured by the operator norm of its Jacobian
  ``‖J‖_{α→β}``; the pairs (1,1), (2,2) and (∞,∞) are supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lipmip.errors import InvalidQueryError
from lipmip.norms import dual_norm, norm_name, operator_norm, parse_norm, vector_norm

__all__ = ["Query"]


@dataclass(frozen=True, eq=False)
class Query:
    """A Lipschitz query. Build it with :meth:`scalar`, :meth:`output`,
    :meth:`margin` or :meth:`vector` rather than directly."""

    c: np.ndarray | None
    input_norm: float
    output_norm: float | None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def scalar(cls, c: Any, input_norm: Any = math.inf) -> "Query":
        """The scalar function ``c · f``."""
        try:
            arr = np.array(c, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidQueryError(f"output functional c must be a numeric vector, got {c!r}") from None
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise InvalidQueryError("output functional c must be a non-empty finite vector")
        arr.setflags(write=False)
        return cls(arr, parse_norm(input_norm, InvalidQueryError, "input norm"), None)

    @classmethod
    def output(cls, index: int, num_outputs: int, input_norm: Any = math.inf) -> "Query":
        """Output number ``index`` alone."""
        k = _check_index(index, num_outputs)
        c = np.zeros(num_outputs)
        c[k] = 1.0
        return cls.scalar(c, input_norm)

    @classmethod
    def margin(cls, i: int, j: int, num_outputs: int, input_norm: Any = math.inf) -> "Query":
        """The logit difference ``f_i - f_j`` (the margin of class i over j)."""
        if _check_index(i, num_outputs) == _check_index(j, num_outputs):
            raise InvalidQueryError(f"a margin needs two different outputs, got {i} and {j}")
        c = np.zeros(num_outputs)
        c[i], c[j] = 1.0, -1.0
        return cls.scalar(c, input_norm)

    @classmethod
    def vector(cls, input_norm: Any = math.inf, output_norm: Any = None) -> "Query":
        """The whole output ``f``, bounded by ``‖J‖_{α→β}`` (β defaults to α)."""
        a = parse_norm(input_norm, InvalidQueryError, "input norm")
        b = a if output_norm is None else parse_norm(output_norm, InvalidQueryError, "output norm")
        if a != b:
            raise InvalidQueryError(
                f"operator norm {norm_name(a)}→{norm_name(b)} is not supported; use 1→1, 2→2 or inf→inf"
            )
        return cls(None, a, b)

    # ----------------------------------------------------------------- properties
    @property
    def is_scalar(self) -> bool:
        return self.c is not None

    @property
    def dual_input_norm(self) -> float:
        return dual_norm(self.input_norm)

    def check_network(self, net: Any) -> None:
        """Raise :class:`InvalidQueryError` unless ``c`` fits the network's outputs."""
        if self.c is not None and self.c.size != net.output_dim:
            raise InvalidQueryError(
                f"output functional c has {self.c.size} entries but the network has {net.output_dim} outputs"
            )

    # ----------------------------------------------------------------- evaluation
    def apply(self, y: np.ndarray) -> np.ndarray:
        """The queried function's value given network outputs ``y`` (..., m):
        ``c · y`` (shape (...,)) or ``y`` itself."""
        return y if self.c is None else y @ self.c

    def output_distance(self, dy: np.ndarray) -> np.ndarray:
        """The output-side norm of a difference of queried values: ``|·|`` for
        a scalar query, ``‖·‖_β`` for a vector query."""
        if self.c is None:
            return vector_norm(dy, self.output_norm)
        return np.abs(dy)

    def local_value(self, J: np.ndarray) -> np.ndarray:
        """The Lipschitz value of one linear piece with Jacobian ``J``
        (..., m, n): ``‖Jᵀc‖_{α*}`` or ``‖J‖_{α→α}``."""
        if self.c is None:
            return operator_norm(J, self.input_norm)
        return vector_norm(np.einsum("m,...mn->...n", self.c, J), self.dual_input_norm)

    def steepest_direction(self, J: np.ndarray) -> np.ndarray:
        """A direction ``d`` with ``‖d‖_α = 1`` whose image under ``J`` attains
        :meth:`local_value` (up to rounding)."""
        if self.c is None:
            p = self.input_norm
            if p == 1.0:
                d = np.zeros(J.shape[1])
                d[int(np.abs(J).sum(axis=0).argmax())] = 1.0
                return d
            if p == math.inf:
                row = J[int(np.abs(J).sum(axis=1).argmax())]
                return np.where(row >= 0, 1.0, -1.0)
            _, _, vt = np.linalg.svd(J)
            return vt[0]
        g = self.c @ J
        p = self.input_norm
        if p == math.inf:
            return np.where(g >= 0, 1.0, -1.0)
        if p == 1.0:
            d = np.zeros_like(g)
            k = int(np.abs(g).argmax())
            d[k] = 1.0 if g[k] >= 0 else -1.0
            return d
        n = np.linalg.norm(g)
        if n == 0:
            d = np.zeros_like(g)
            d[0] = 1.0
            return d
        return g / n

    def describe(self) -> str:
        if self.c is None:
            return f"‖J‖ {norm_name(self.input_norm)}→{norm_name(self.output_norm)}"
        nz = np.flatnonzero(self.c)
        if nz.size == 1 and self.c[nz[0]] == 1.0:
            fn = f"f[{nz[0]}]"
        elif nz.size == 2 and sorted(self.c[nz].tolist()) == [-1.0, 1.0]:
            i, j = (nz[0], nz[1]) if self.c[nz[0]] > 0 else (nz[1], nz[0])
            fn = f"f[{i}] - f[{j}]"
        else:
            fn = "c·f"
        return f"{fn}, input norm {norm_name(self.input_norm)}"

    def to_dict(self) -> dict:
        return {
            "kind": "vector" if self.c is None else "scalar",
            "c": None if self.c is None else self.c.tolist(),
            "input_norm": norm_name(self.input_norm),
            "output_norm": None if self.output_norm is None else norm_name(self.output_norm),
            "description": self.describe(),
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_index(i: Any, n: Any) -> int:
    if not _is_int(n) or int(n) < 1:
        raise InvalidQueryError(f"number of outputs must be a positive integer, got {n!r}")
    if not _is_int(i) or not 0 <= int(i) < n:
        raise InvalidQueryError(f"output index {i!r} out of range for {n} outputs")
    return int(i)
