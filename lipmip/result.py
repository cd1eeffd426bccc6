"""The one result type every bound method returns.

``LipschitzBound.lower`` and ``.upper`` are certified: ``lower <= L <= upper``
for the true local Lipschitz constant ``L`` of the query over the region. A
side a method cannot certify is ``None``; a number a method only *estimates*
(e.g. by sampling statistics) goes in ``estimate`` and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Witness", "LipschitzBound"]


@dataclass(frozen=True, eq=False)
class Witness:
    """Two points ``a``, ``b`` of the region whose difference quotient
    ``‖q(a) - q(b)‖ / ‖a - b‖_α`` is at least ``value`` (float64 rounding of the
    forward passes already subtracted). Any such pair proves ``L >= value``."""

    a: np.ndarray
    b: np.ndarray
    value: float

    def to_dict(self) -> dict:
        return {"a": self.a.tolist(), "b": self.b.tolist(), "value": self.value}


@dataclass(frozen=True, eq=False)
class LipschitzBound:
    """A certified interval ``[lower, upper]`` around a local Lipschitz constant.

    ``status`` is ``"exact"`` when the two sides meet (to the stated
    tolerance), ``"bounded"`` when both are present but apart, and
    ``"lower_only"`` / ``"upper_only"`` / ``"estimate_only"`` otherwise (later
    methods add solver statuses such as ``"time_limit"``).
    """

    lower: float | None
    upper: float | None
    method: str
    seconds: float
    witness: Witness | None = None
    estimate: float | None = None
    query: dict | None = None
    region: dict | None = None
    details: dict = field(default_factory=dict)
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", _default_status(self.lower, self.upper, self.estimate))
        for side in ("lower", "upper"):
            value = getattr(self, side)
            if value is not None and (math.isnan(value) or value < 0):
                raise AssertionError(f"internal check failed: {side} bound {value!r} from {self.method}")
        if self.lower is not None and self.upper is not None and self.lower > self.upper * (1 + 1e-9):
            raise AssertionError(
                f"internal soundness check failed: lower {self.lower!r} > upper {self.upper!r} ({self.method})"
            )

    @property
    def certified(self) -> bool:
        """Whether this result certifies anything: False for a pure estimate
        (``lower`` and ``upper`` both empty, e.g. CLEVER)."""
        return self.lower is not None or self.upper is not None

    @property
    def gap(self) -> float:
        """``upper - lower`` (inf when a side is missing)."""
        if self.lower is None or self.upper is None:
            return math.inf
        return self.upper - self.lower

    @property
    def relative_gap(self) -> float:
        """``(upper - lower) / upper`` (0 when both are 0, inf when a side is missing)."""
        if self.lower is None or self.upper is None:
            return math.inf
        if self.upper == 0:
            return 0.0
        return (self.upper - self.lower) / self.upper

    @property
    def solver(self) -> str | None:
        """The MIP solver that ran (``"highs"``, ``"scip"``, ``"gurobi"``), None when none did."""
        solver = self.details.get("solver")
        if solver is None and isinstance(self.details.get("mip"), dict):
            solver = self.details["mip"].get("solver")
        return solver

    @property
    def stats(self) -> dict:
        """The method's counters and choices (an alias of ``details``)."""
        return self.details

    @staticmethod
    def combine(*bounds: "LipschitzBound", method: str | None = None) -> "LipschitzBound":
        """The tightest interval the given results prove together: the largest
        lower bound (with its witness) and the smallest upper bound. All must
        be about the same query and region."""
        if not bounds:
            raise ValueError("combine needs at least one bound")
        lowers = [b for b in bounds if b.lower is not None]
        uppers = [b for b in bounds if b.upper is not None]
        best_lo = max(lowers, key=lambda b: b.lower) if lowers else None
        best_up = min(uppers, key=lambda b: b.upper) if uppers else None
        estimates = [b.estimate for b in bounds if b.estimate is not None]
        return LipschitzBound(
            lower=best_lo.lower if best_lo else None,
            upper=best_up.upper if best_up else None,
            method=method or "+".join(b.method for b in bounds),
            seconds=sum(b.seconds for b in bounds),
            witness=best_lo.witness if best_lo else None,
            estimate=estimates[0] if estimates else None,
            query=bounds[0].query,
            region=bounds[0].region,
            details={
                # the method that produced each side, looking through results that are combinations themselves
                "lower_from": (best_lo.details.get("lower_from") or best_lo.method) if best_lo else None,
                "upper_from": (best_up.details.get("upper_from") or best_up.method) if best_up else None,
                "parts": [b.to_dict(include_witness=False) for b in bounds],
            },
        )

    def with_details(self, **extra: Any) -> "LipschitzBound":
        return replace(self, details={**self.details, **extra})

    def to_dict(self, include_witness: bool = True) -> dict:
        """A JSON-ready dictionary (floats, lists, strings)."""
        out = {
            "lower": self.lower,
            "upper": self.upper,
            "gap": None if math.isinf(self.gap) else self.gap,
            "status": self.status,
            "certified": self.certified,
            "method": self.method,
            "solver": self.solver,
            "seconds": self.seconds,
            "estimate": self.estimate,
            "query": self.query,
            "details": self.details,
        }
        if include_witness:
            out["witness"] = None if self.witness is None else self.witness.to_dict()
            out["region"] = self.region
        return out

    def __str__(self) -> str:
        lo = "-" if self.lower is None else f"{self.lower:.6g}"
        up = "-" if self.upper is None else f"{self.upper:.6g}"
        text = f"L in [{lo}, {up}]  ({self.method}, {self.status}, {self.seconds:.3g} s)"
        if self.estimate is not None:
            text += f"  uncertified estimate {self.estimate:.6g}"
        return text


def _default_status(lower: float | None, upper: float | None, estimate: float | None) -> str:
    if lower is not None and upper is not None:
        return "exact" if upper - lower <= 1e-9 * max(1.0, abs(upper)) else "bounded"
    if lower is not None:
        return "lower_only"
    if upper is not None:
        return "upper_only"
    return "estimate_only" if estimate is not None else "none"
