"""``method="auto"``: the cheapest route to a tight certified interval.

1. **Cheap bounds** (milliseconds): a sampled lower bound and the certified
   upper bounds that need no search (interval Jacobian with linear neuron
   bounds, norm product). When they already meet (to 1e-6 relative) the
   answer is exact and nothing else runs.
2. **Region branch and bound** (:func:`lipmip.regions.bab.bab_lipschitz`),
   starting from the sampled witness (the points are sampled once):
   exact and rigorous for every norm, no solver trusted; it gets
   :data:`BAB_SHARE` of the time limit (all of it when there is none).
3. **MIP** (:func:`lipmip.mip.mip_lipschitz`), only when the branch and
   bound has not closed the interval: warm-started from the best witness so
   far (the sampled one or the branch and bound's);
   MILP on HiGHS (cross-checked by SCIP) for the ∞ and 1 input norms, MIQCP
   on SCIP for the 2 norm and the 2→2 operator norm (``solver="auto"``:
   Gurobi when licensed); neuron bounds ``"lp"`` up to
   :data:`LP_BOUNDS_MAX_RELUS` ReLUs, ``"linear"`` above; the rest of the
   time limit.

``time_limit`` (default 60 s; ``None`` for none) covers the whole call. The
result is the tightest combination of every part: the largest verified
lower bound and the smallest certified upper bound. ``details["stage"]``
says where it stopped (``"cheap"``, ``"bab"`` or ``"mip"``; ``"race"`` with
``race=True``, which runs stages 2 and 3 side by side in two processes).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from lipmip.domains import Region
from lipmip.estimate import interval_jacobian_upper_bound, product_upper_bound, sample_lower_bound
from lipmip.network import Network
from lipmip.query import Query
from lipmip.regions.bab import bab_lipschitz, check_workers
from lipmip.result import LipschitzBound, Witness
from lipmip.solvers.base import Progress
from lipmip.witness import best_witness

__all__ = ["auto_lipschitz", "LP_BOUNDS_MAX_RELUS", "DEFAULT_TIME_LIMIT", "BAB_SHARE"]

LP_BOUNDS_MAX_RELUS = 2000  # above this, LP bound tightening costs more than it saves
DEFAULT_TIME_LIMIT = 60.0   # seconds for the whole call
BAB_SHARE = 0.5             # of the time left after the cheap bounds, for the branch and bound
_CLOSE = 1e-6               # relative gap at which an interval is taken as exact
_RACE_GRACE = 30.0          # seconds past the limit the race waits for the MIP's process (certification, exit)


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
    workers: int = 1,
    race: bool = False,
    progress: Progress | None = None,
) -> LipschitzBound:
    """Certified bounds by the route described in the module docstring.
    ``mip=False`` stops after the branch and bound; ``workers``: processes
    for the branch and bound (:func:`~lipmip.regions.bab.bab_lipschitz`);
    ``race=True``: after the cheap bounds, the MIP runs in a second process
    beside the branch and bound, each with the whole time left (see
    :func:`_race`). ``status`` is
    ``"optimal"`` when the interval closed (to 1e-6 relative), else that of
    the last stage that ran (``"time_limit"``, ``"bounded"``, ...)."""
    check_workers(workers)
    start = time.perf_counter()
    sampled = sample_lower_bound(net, region, query, samples=samples, seed=seed)
    cheap = LipschitzBound.combine(
        sampled,
        interval_jacobian_upper_bound(net, region, query),
        product_upper_bound(net, region, query),
        method="auto",
    )
    if _close(cheap):
        return _finish(cheap, start, stage="cheap", status="optimal")
    if race and mip:
        return _race(net, region, query, cheap, sampled.witness, start=start, time_limit=time_limit, solver=solver,
                     seed=seed, workers=workers, progress=progress)
    left = _left(time_limit, start)
    bab = bab_lipschitz(net, region, query, time_limit=None if left is None else BAB_SHARE * left,
                        incumbent=sampled.witness, workers=workers, progress=progress)
    combined = LipschitzBound.combine(cheap, bab, method="auto")
    bab_details = {k: bab.details.get(k) for k in ("nodes", "leaves", "lps", "unstable_neurons")}
    if _close(combined) or not mip:
        return _finish(combined, start, stage="bab", status="optimal" if _close(combined) else bab.status,
                       bab=bab_details)
    from lipmip.mip import mip_lipschitz

    solved = mip_lipschitz(net, region, query, time_limit=_left(time_limit, start),
                           incumbent=best_witness(sampled.witness, bab.witness), progress=progress,
                           **_mip_options(net, solver, seed))
    combined = LipschitzBound.combine(cheap, bab, solved, method="auto")
    return _finish(combined, start, stage="mip", status="optimal" if _close(combined) else solved.status,
                   bab=bab_details, mip=_mip_details(solved))


def _race(net: Network, region: Region, query: Query, cheap: LipschitzBound, seed_witness: Witness | None, *,
          start: float, time_limit: float | None, solver: str, seed: int, workers: int,
          progress: Progress | None) -> LipschitzBound:
    """The MIP in a second (``spawn``ed) process and the branch and bound
    here, both from the sampled witness and with the whole time left. The
    branch and bound stops as soon as the MIP's answer closes the interval;
    when the branch and bound closes it first, the MIP's process is
    terminated. The result combines whatever finished: every part is sound
    on its own. ``details["winner"]`` names the engine that closed the
    interval (None when neither did)."""
    import multiprocessing

    from lipmip.mip import mip_lipschitz
    from lipmip.processes import worker_pool

    left = _left(time_limit, start)
    with worker_pool(1) as pool:
        job = pool.apply_async(mip_lipschitz, (net, region, query),
                               {"time_limit": left, "incumbent": seed_witness, **_mip_options(net, solver, seed)})

        def mip_closed() -> bool:
            return job.ready() and job.successful() and _close(job.get())

        bab = bab_lipschitz(net, region, query, time_limit=left, incumbent=seed_witness, workers=workers,
                            stop=mip_closed, progress=progress)
        parts = [cheap, bab]
        if _close(LipschitzBound.combine(cheap, bab)):
            winner = "bab"
            pool.terminate()
        else:
            remaining = _left(time_limit, start)
            try:
                solved = job.get(timeout=None if remaining is None else remaining + _RACE_GRACE)
            except multiprocessing.TimeoutError:
                pool.terminate()
                solved = None
            if solved is not None:
                parts.append(solved)
            winner = "mip" if solved is not None and _close(solved) else None
    combined = LipschitzBound.combine(*parts, method="auto")
    details: dict[str, Any] = {"winner": winner,
                               "bab": {k: bab.details.get(k) for k in ("nodes", "leaves", "lps", "unstable_neurons")}}
    if len(parts) == 3:
        details["mip"] = _mip_details(parts[2])
    status = "optimal" if _close(combined) else parts[-1].status
    return _finish(combined, start, stage="race", status=status, **details)


def _mip_options(net: Network, solver: str, seed: int) -> dict[str, Any]:
    """The MIP stage's options: LP neuron bounds up to LP_BOUNDS_MAX_RELUS ReLUs."""
    return {"solver": solver, "seed": seed, "bounds": "lp" if net.num_relus <= LP_BOUNDS_MAX_RELUS else "linear"}


def _mip_details(solved: LipschitzBound) -> dict[str, Any]:
    return {k: solved.details.get(k) for k in ("solver", "solver_status", "bounds", "unstable_relus", "binaries",
                                               "nodes", "solver_seconds")}


def _left(time_limit: float | None, start: float) -> float | None:
    return None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))


def _close(bound: LipschitzBound) -> bool:
    return (bound.lower is not None and bound.upper is not None
            and bound.upper - bound.lower <= _CLOSE * max(1.0, bound.upper))


def _finish(bound: LipschitzBound, start: float, *, stage: str, status: str, **details: Any) -> LipschitzBound:
    return replace(bound.with_details(stage=stage, **details), seconds=time.perf_counter() - start, status=status)
