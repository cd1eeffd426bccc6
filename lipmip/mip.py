"""``method="mip"``: the local Lipschitz constant by mixed-integer programming.

The recipe: neuron bounds (``bounds``), gradient bounds, a sampled lower bound
whose best point warm-starts the solver, the Lipschitz MIP of
:mod:`lipmip.formulate.lipschitz`, a backend of :mod:`lipmip.solvers`, then
certification on both sides:

* ``upper`` = the smaller of the solver's proven bound widened by its stated
  tolerances (:func:`~lipmip.formulate.lipschitz.certified_upper`) and the
  interval-Jacobian bound. A time limit gives a wider interval, never the
  incumbent as an upper bound.
* ``lower`` = the best of the sampled witness and a witness built from the
  solver's incumbent: the incumbent's activation pattern gets a deep
  interior point (:func:`~lipmip.regions.interior_point_for_pattern`), and a
  difference quotient there is re-evaluated in float64
  (:mod:`lipmip.witness`); the solver's own objective value is never used.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from lipmip.bounds import compute
from lipmip.domains import Region
from lipmip.errors import InvalidQueryError
from lipmip.estimate import interval_jacobian_upper_bound, sample_lower_bound
from lipmip.formulate.lipschitz import LipschitzMIP, build_lipschitz_mip, certified_upper
from lipmip.formulate.miqcqp import MIQCQP, build_miqcqp, certified_upper_bound, verified_witness
from lipmip.network import Network
from lipmip.query import Query
from lipmip.rescale import rescale as rescale_network
from lipmip.rescale import scale_output
from lipmip.result import LipschitzBound, Witness
from lipmip.solvers.base import Progress, SolveOptions, keep_larger_bound
from lipmip.solvers.registry import solve_with_fallback
from lipmip.solvers.scip import ScipSolver
from lipmip.witness import best_witness, recertified

__all__ = ["mip_lipschitz", "FORMULATIONS"]

FORMULATIONS = ("lipmip", "miqcqp-upper", "miqcqp-lower")
_WITNESS_SECONDS = 10.0  # at most this long to place a witness inside the incumbent's pattern (MIQCQP fallback)
_LP_BOUNDS_SHARE = 0.25  # at most this share of a time limit goes to LP bound tightening
_OBJECTIVE_TARGET = 1024.0  # outputs are scaled up until the objective's upper bound is about this size
_TOO_SMALL_TO_SCALE = 1e-100
_MAX_SCALE_EXPONENT = 20  # at most a factor of about 1e6: larger coefficients trouble the solvers


class _Clock:
    """Seconds per stage of one call."""

    def __init__(self, start: float) -> None:
        self.last = start
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = now - self.last
        self.last = now


def mip_lipschitz(
    net: Network,
    region: Region,
    query: Query,
    *,
    solver: str = "auto",
    time_limit: float | None = None,
    bounds: str = "linear",
    encoding: str = "bigm",
    partitions: int = 2,
    warm_start: bool = True,
    rescale: str | None = None,
    formulation: str = "lipmip",
    margin: float | None = None,
    cross_check: bool = True,
    samples: int = 2000,
    seed: int = 0,
    mip_gap: float = 1e-9,
    threads: int = 1,
    incumbent: Witness | None = None,
    progress: Progress | None = None,
) -> LipschitzBound:
    """Certified bounds on the local Lipschitz constant by a MIP. ``status``:
    ``"optimal"`` when the solver proved optimality and the certified sides
    meet (to 1e-6 relative), ``"bounded"`` when it proved optimality but no
    witness reproduces its optimum, ``"solver_error"`` when a verified witness
    exceeds the solver's widened bound (the bound is then dropped and only
    the interval-Jacobian bound is kept), else the solver's status
    (``"time_limit"``, ``"error"``, ...).

    ``formulation``: ``"lipmip"`` (big-M / partition MILP or MIQCP of
    :mod:`lipmip.formulate.lipschitz`), ``"miqcqp-upper"`` or
    ``"miqcqp-lower"`` (the quadratically constrained versions of
    :mod:`lipmip.formulate.miqcqp`, scalar queries, SCIP or Gurobi; the
    lower version's solver bound proves nothing, so its ``upper`` is the
    interval-Jacobian bound, and ``margin`` sets its region margin).
    ``cross_check`` (default True): an optimal HiGHS result is solved again
    by SCIP (warm-started from HiGHS's incumbent, within the time left) and
    the larger bound is kept, since HiGHS 1.15 proves wrong optima on some
    of these models (on a random 64-64-64-10 network, 4 seeds of 6 gave a
    bound below the exact value, presolve on or off); the status is then
    SCIP's when SCIP's bound is the larger.
    ``bounds`` (``"interval"``, ``"linear"``, ``"lp"``) sets the neuron bounds
    behind the big-Ms (``"lp"`` gets at most a quarter of ``time_limit``;
    neurons it does not reach keep their linear bounds); ``encoding`` (``"bigm"``, ``"partition"`` with
    ``partitions`` groups) the ReLU encoding; ``rescale`` (``None``,
    ``"weights"``, ``"big_m"``: :func:`lipmip.rescale.rescale`) builds the
    MIP on an equivalent rescaled copy of ``net`` (witnesses are still
    verified on ``net`` itself); ``warm_start`` passes the sampled witness
    to the solver. ``incumbent``: a starting witness from elsewhere (e.g.
    the branch and bound's), re-certified here and used instead of
    sampling (``samples`` then unused). ``progress(seconds, incumbent, bound)`` is called during
    the solve with the solver's numbers mapped to Lipschitz values (the
    incumbent at least the sampled lower bound); they are the solver's,
    not certified (e.g. :class:`lipmip.progress.SolveProgress`)."""
    start = time.perf_counter()
    SolveOptions(time_limit=time_limit, threads=threads, mip_gap=mip_gap, seed=seed)  # refuses bad values up front
    clock = _Clock(start)
    model_net = net if rescale is None else rescale_network(net, rescale, region=region, bounds=bounds)
    bound_options = {} if bounds != "lp" or time_limit is None else {"time_limit": _LP_BOUNDS_SHARE * time_limit}
    forward = compute(model_net, region, bounds, **bound_options)
    cheap_upper = interval_jacobian_upper_bound(model_net, region, query, bounds=forward)
    clock.lap("bounds")
    if incumbent is None:
        seed_witness, seed_from = sample_lower_bound(net, region, query, samples=samples, seed=seed).witness, "sample"
    else:
        seed_witness, seed_from = recertified(net, query, region, incumbent), "incumbent"
    clock.lap("sample")
    scale = output_scale(cheap_upper.upper, squared=query.input_norm == 2.0)
    if scale != 1.0:
        model_net = scale_output(model_net, scale)
        forward = forward.for_scaled_output(model_net, scale)
    mip = _build(model_net, region, query, forward, formulation, encoding, partitions, margin)
    clock.lap("build")
    start_point = None
    if warm_start and seed_witness is not None:
        start_point = mip.assignment((seed_witness.a + seed_witness.b) / 2)
    remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
    floor = None if seed_witness is None else seed_witness.value
    options = SolveOptions(time_limit=remaining, threads=threads, mip_gap=mip_gap, seed=seed,
                           warm_start=start_point, progress=_in_lipschitz_units(progress, mip, scale, floor))
    result = solve_with_fallback(mip.model, solver, options)
    clock.lap("solve")
    if cross_check and result.solver == "highs" and result.status == "optimal":
        left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
        check = ScipSolver().solve(mip.model, replace(options, time_limit=left, warm_start=result.x, progress=None))
        result = keep_larger_bound(result, check, check="SCIP cross-check", solver="highs+scip")
        clock.lap("cross_check")

    solver_upper = certified_upper_bound(result, mip) if isinstance(mip, MIQCQP) else certified_upper(result, mip)
    upper = min(solver_upper / scale, cheap_upper.upper)
    left = _WITNESS_SECONDS if time_limit is None else min(_WITNESS_SECONDS, time_limit - (time.perf_counter() - start))
    solved = verified_witness(result, mip, net, solver=result.solver if left > 0 else None,
                              time_limit=max(left, 0.0), output_scale=scale)
    clock.lap("witness")
    best = best_witness(seed_witness, solved)
    lower = 0.0 if best is None else best.value
    close = upper - lower <= 1e-6 * max(1.0, upper)
    if lower > upper:
        # a verified witness above the solver's widened bound: the solver was wrong; keep only the proofs
        upper, status = cheap_upper.upper, "solver_error"
    elif result.status == "optimal":
        status = "optimal" if close else "bounded"  # bounded: the solver's optimum was not reproduced by a witness
    else:
        status = result.status
    details: dict[str, Any] = {
        "solver": result.solver,
        "solver_status": result.status,
        "solver_best_bound": (mip.value_from_objective(result.best_bound) / scale
                              if math.isfinite(result.best_bound) else None),
        "solver_incumbent": None if result.incumbent is None else mip.value_from_objective(result.incumbent) / scale,
        "output_scale": scale,
        "solver_seconds": result.seconds,
        "nodes": result.nodes,
        "binaries": int(np.count_nonzero(mip.model.integer)),
        "variables": mip.model.num_variables,
        "unstable_relus": forward.num_unstable,
        "bounds": forward.method,
        "encoding": encoding,
        "formulation": formulation,
        "rescale": rescale,
        "warm_start": start_point is not None,
        "lower_from": "mip" if best is not None and best is not seed_witness else seed_from,
        "seconds_by_stage": clock.laps,
        "upper_from": "mip" if upper < cheap_upper.upper else "interval",
    }
    if isinstance(mip, MIQCQP):
        details["margin"] = mip.margin
    if result.message:
        details["solver_message"] = result.message
    return LipschitzBound(
        lower=lower,
        upper=upper,
        method="mip",
        seconds=time.perf_counter() - start,
        witness=best,
        query=query.to_dict(),
        region=region.to_dict(),
        details=details,
        status=status,
    )


def _build(net: Network, region: Region, query: Query, forward: Any, formulation: str, encoding: str,
           partitions: int, margin: float | None) -> LipschitzMIP:
    """The model of ``formulation`` (see :func:`mip_lipschitz`)."""
    if formulation == "lipmip":
        if margin is not None:
            raise InvalidQueryError("margin= applies to the MIQCQP formulations only")
        return build_lipschitz_mip(net, region, query, forward, encoding=encoding, partitions=partitions)
    if formulation not in FORMULATIONS:
        raise InvalidQueryError(f"unknown formulation {formulation!r}; use one of {', '.join(FORMULATIONS)}")
    if encoding != "bigm":
        raise InvalidQueryError(f"formulation {formulation!r} has its own ReLU encoding; drop encoding={encoding!r}")
    return build_miqcqp(net, region, query, forward, version=formulation.split("-")[1], margin=margin)


def output_scale(upper: float, *, squared: bool = False) -> float:
    """The power of two the MIP scales the network's output by: small
    Lipschitz values would otherwise be swamped by the solver's absolute
    feasibility tolerances (the widening of
    :func:`~lipmip.formulate.lipschitz.certified_upper` is mostly absolute),
    so an output whose certified upper bound is below
    :data:`_OBJECTIVE_TARGET` is scaled up to about that size; larger ones
    are left alone (``squared``: the objective is the square of the value,
    so the value is brought to the target's square root). Values below
    1e-100 (a constant query) are not scaled. Exact: scaling by a power of
    two changes no digit."""
    if not (math.isfinite(upper) and upper > _TOO_SMALL_TO_SCALE):
        return 1.0
    target = math.sqrt(_OBJECTIVE_TARGET) if squared else _OBJECTIVE_TARGET  # the objective is the value squared
    exponent = min(_MAX_SCALE_EXPONENT, max(0, math.ceil(math.log2(target / upper))))
    return float(2.0**exponent)


def _in_lipschitz_units(progress: Progress | None, mip: Any, scale: float, floor: float | None) -> Progress | None:
    """``progress`` fed with Lipschitz values instead of MIP objective values."""
    if progress is None:
        return None

    def report(seconds: float, incumbent: float | None, bound: float | None) -> None:
        value = None if incumbent is None else mip.value_from_objective(incumbent) / scale
        if floor is not None:
            value = floor if value is None else max(value, floor)
        progress(seconds, value, None if bound is None else mip.value_from_objective(bound) / scale)

    return report
