"""``method="auto"``: the cheapest route to a tight certified interval.

1. A sampled lower bound and the cheap certified upper bounds (interval
   Jacobian with linear neuron bounds, norm product): milliseconds. When they
   already meet (to 1e-6 relative) the answer is exact and nothing else runs.
2. Otherwise the MIP (:func:`lipmip.mip.mip_lipschitz`), warm-started from
   the sampled witness: MILP on HiGHS for the ∞ and 1 input norms, MIQCP on
   SCIP for the 2 norm and the 2→2 operator norm (``solver="auto"``, Gurobi
   when licensed). Neuron bounds are ``"lp"`` (one LP per unstable neuron and
   side) while the network has at most :data:`LP_BOUNDS_MAX_RELUS` ReLUs,
   ``"linear"`` above. The MIP stops at ``time_limit`` (default 60 s; ``None``
   for no limit) with the certified interval it has.

The result is the tightest combination of every part: the largest verified
lower bound and the smallest certified upper bound.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from lipmip.domains import Region
from lipmip.estimate import interval_jacobian_upper_bound, product_upper_bound, sample_lower_bound
from lipmip.network import Network
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.solvers.base import Progress

__all__ = ["auto_lipschitz", "LP_BOUNDS_MAX_RELUS", "DEFAULT_TIME_LIMIT"]

LP_BOUNDS_MAX_RELUS = 2000  # above this, LP bound tightening costs more than it saves
DEFAULT_TIME_LIMIT = 60.0   # seconds for the MIP stage of auto
_CLOSE = 1e-6               # relative gap at which the cheap interval is taken as exact


def auto_lipschitz(
    net: Network,
    region: Region,
    query: Query,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    solver: str = "auto",
    samples: int = 2000,
    seed: int = 0,
    mip: bool = True,
    progress: Progress | None = None,
) -> LipschitzBound:
    """Certified bounds by the route described in the module docstring.
    ``mip=False`` stops after the cheap stage (milliseconds, always).
    ``status`` is ``"exact"`` when the cheap bounds meet, else the MIP's."""
    start = time.perf_counter()
    sampled = sample_lower_bound(net, region, query, samples=samples, seed=seed)
    cheap = LipschitzBound.combine(
        sampled,
        interval_jacobian_upper_bound(net, region, query),
        product_upper_bound(net, region, query),
        method="auto",
    )
    if not mip or _close(cheap):
        return _finish(cheap, start, stage="cheap")
    from lipmip.mip import mip_lipschitz  # imports the solver backends only when used

    remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
    bounds = "lp" if net.num_relus <= LP_BOUNDS_MAX_RELUS else "linear"
    exact = mip_lipschitz(net, region, query, solver=solver, time_limit=remaining, bounds=bounds,
                          samples=samples, seed=seed, progress=progress)
    combined = LipschitzBound.combine(cheap, exact, method="auto")
    return _finish(combined, start, stage="mip", status=exact.status,
                   mip={k: exact.details.get(k) for k in ("solver", "solver_status", "bounds", "unstable_relus",
                                                          "binaries", "nodes", "solver_seconds")})


def _close(bound: LipschitzBound) -> bool:
    return (bound.lower is not None and bound.upper is not None
            and bound.upper - bound.lower <= _CLOSE * max(1.0, bound.upper))


def _finish(bound: LipschitzBound, start: float, *, stage: str, status: str | None = None,
            **details: Any) -> LipschitzBound:
    out = bound.with_details(stage=stage, **details)
    changes: dict[str, Any] = {"seconds": time.perf_counter() - start}
    if status is not None:
        changes["status"] = status
    elif _close(bound):
        changes["status"] = "exact"
    return replace(out, **changes)
