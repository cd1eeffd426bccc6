"""``lipsdp_upper_bound``: LipSDP-Neuron's certified ℓ2 upper bound, from the query to the result.

The steps: the chain of :mod:`lipmip.lipsdp.chain` (slopes from the forward
bounds, or every ReLU in [0, 1]), the SDP by the solvers of
:mod:`lipmip.lipsdp.solvers` and :mod:`lipmip.lipsdp.barrier` in the order of
:func:`~lipmip.lipsdp.solvers.solver_order`, and the proof of
:mod:`lipmip.lipsdp.certificate`, repeated with a stricter LMI while that
gives a smaller proven ρ.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from lipmip.bounds import compute
from lipmip.bounds.base import Bounds
from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError, SolverUnavailableError
from lipmip.lipsdp.barrier import solve_barrier
from lipmip.lipsdp.certificate import Certificate, certify
from lipmip.lipsdp.chain import (
    Chain,
    Reduced,
    build_chain,
    depends_on_input,
    normalised,
    reduced,
    slope_masks,
    without_idle_neurons,
)
from lipmip.lipsdp.solvers import SOLVERS, VARIANTS, Solution, solve_with_cvxpy, solver_order
from lipmip.network import Network
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import free_coordinates

__all__ = ["lipsdp_upper_bound", "solve_sdp", "CAVEAT"]

CAVEAT = (
    "SDP solvers stop at a tolerance, so the solver's own sqrt(rho) may lie slightly below the true LipSDP optimum "
    "and its multipliers need not satisfy the LMI exactly. That number is only reported as solver_value. The upper "
    "bound is certified: the solver's multipliers (clipped to >= 0) were kept, the smallest rho' they allow was "
    "computed, and the LMI at rho' was proven negative definite in float64 with every rounding error bounded "
    "(verified Cholesky). A loose solve costs tightness, never soundness."
)
_STRICTNESS = (0.0, 1e-9, 1e-7, 1e-5, 1e-3, 1e-2)  # ε / ρ_solver tried in turn for M ⪯ -ε [0 0; 0 I]
_NO_ANSWER = ("solver_error", "infeasible", "unbounded", "infeasible_inaccurate", "unbounded_inaccurate")


def solve_sdp(data: Reduced, variant: str, solver: str, strictness: float, time_limit: float | None) -> Solution:
    """Minimise ρ subject to ``M(ρ, λ) + ε [0 0; 0 I] ⪯ 0``, ``λ >= 0`` (``ε``
    = ``strictness``), in the reduced input coordinates, by ``solver``
    (``"barrier"``, ``"clarabel"`` or ``"scs"``)."""
    if solver == "barrier":
        return solve_barrier(data, variant, strictness, time_limit)
    return solve_with_cvxpy(data, variant, solver, strictness, time_limit)


def _best_certificate(chain: Chain, data: Reduced, variant: str, solver: str, time_limit: float | None,
                      attempts: list[dict]) -> tuple[Solution, Certificate, float] | None:
    """Solve the SDP, certify the multipliers; when the certified ρ' is not
    within ``1e-7`` of the solver's optimum (multipliers at which the hidden
    block is nearly singular amplify the solver's tolerance), or nothing is
    proven, solve again with ``M ⪯ -ε [0 0; 0 I]`` for growing ε while that
    helps. Returns the best (solution, certificate, ε / ρ) or None; every
    run is appended to ``attempts``."""
    best, target, rho_scale = None, None, 0.0
    for strictness in _STRICTNESS:
        if strictness and target is None:
            break
        sol = solve_sdp(data, variant, solver, strictness * rho_scale, time_limit)
        record = {"solver": solver, "status": sol.status, "seconds": sol.seconds, "strictness": strictness}
        if sol.message:
            record["message"] = sol.message
        attempts.append(record)
        if sol.lam is None:
            break
        if target is None:
            rho_scale = max(sol.rho or 0.0, 1e-12)
            target = rho_scale * (1 + 1e-7)
        cert = certify(chain, np.maximum(sol.lam, 0.0))
        record["reason"] = cert.reason or None
        if cert.rho is not None:
            record["certified_rho"] = cert.rho
            if best is not None and cert.rho >= best[1].rho:
                break  # more strictness no longer helps
            best = (sol, cert, strictness)
            if cert.rho <= target:
                break
    return best


def _check_query(query: Query) -> None:
    if query.input_norm != 2.0 or (query.c is None and query.output_norm != 2.0):
        raise InvalidQueryError(
            f"LipSDP bounds l2 Lipschitz constants only (a scalar query c·f with input norm 2, or the 2→2 operator "
            f"norm of the Jacobian); got {query.describe()}. For norms 1 and inf use method='naive', 'interval', "
            f"'bab', 'mip' or 'auto'"
        )


def _check_choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidQueryError(f"unknown LipSDP {what} {value!r}; use one of {', '.join(allowed)}")
    return value


def lipsdp_upper_bound(
    net: Network,
    region: Region,
    query: Query,
    *,
    local: bool = True,
    variant: str = "neuron",
    solver: str = "auto",
    bounds: str | Bounds = "linear",
    time_limit: float | None = None,
) -> LipschitzBound:
    """A certified ℓ2 upper bound from LipSDP-Neuron (or LipSDP-Layer).

    ``query``: a scalar ``c·f`` with input norm 2, or the 2→2 operator norm of
    the Jacobian (anything else raises :class:`InvalidQueryError`).
    ``local=True``: slope bounds from the forward bounds over ``region``
    (``bounds``: ``"interval"``, ``"linear"``, ``"lp"``, or precomputed
    :class:`~lipmip.bounds.Bounds`), fixed box coordinates not varied;
    ``local=False``: every ReLU in [0, 1], a bound valid for every region.
    ``variant``: ``"neuron"`` (a multiplier per neuron, default) or
    ``"layer"`` (one per layer, looser). ``solver``: ``"clarabel"`` or
    ``"scs"`` (through cvxpy), ``"barrier"`` (lipmip's log-barrier method
    for this LMI, whose Newton steps exploit the rank-two multiplier terms),
    or ``"auto"``: Clarabel when the LMI's largest dense block has at most
    :data:`~lipmip.lipsdp.solvers.CLARABEL_AUTO_BLOCK` rows, the barrier solver otherwise, each
    falling back on the other, then on SCS. ``time_limit``: seconds per
    solver run (a barrier run stopped by it still certifies its last,
    strictly feasible, iterate).

    Guarantee: ``upper`` is proven in float64 (see :mod:`lipmip.lipsdp.certificate`);
    the solver's own value is reported in ``details`` only. ``upper`` is
    None, with ``details["reason"]``, when no bound could be proven.
    """
    start = time.perf_counter()
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__} (use lipmip.load to read a model)")
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    region = as_region(region)
    region.check_network(net)
    query.check_network(net)
    _check_query(query)
    variant = _check_choice(variant, VARIANTS, "variant")
    solver = _check_choice(solver, SOLVERS, "solver")
    if not isinstance(local, bool):
        raise InvalidQueryError(f"local must be True or False, got {local!r}")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))
                                   or not time_limit > 0):
        raise InvalidQueryError(f"time_limit must be a positive number of seconds, got {time_limit!r}")

    forward = None
    if local:
        forward = compute(net, region, bounds) if isinstance(bounds, str) else bounds
        if not isinstance(forward, Bounds) or forward.net.widths != net.widths:
            raise InvalidQueryError("bounds must be a bound method name or Bounds computed for this network's shape")
        free = free_coordinates(region)
    else:
        free = np.ones(net.input_dim, dtype=bool)
    full = build_chain(net, slope_masks(net, forward), free, query.c)
    chain, scale = normalised(without_idle_neurons(full))
    details: dict[str, Any] = {
        "scope": "local" if local else "global (valid for every region)",
        "variant": variant,
        "free_neurons": full.free_neurons,
        "idle_neurons": full.free_neurons - chain.free_neurons,
        "fixed_neurons": net.num_relus - full.free_neurons if local else 0,
        "free_inputs": chain.n_x,
        "lmi_size": chain.dim,
        "caveat": CAVEAT,
    }
    if forward is not None:
        details["forward_bounds"] = forward.method

    def result(upper: float | None, status: str = "", **extra: Any) -> LipschitzBound:
        return LipschitzBound(
            lower=None, upper=upper, method="lipsdp", seconds=time.perf_counter() - start, query=query.to_dict(),
            region=region.to_dict(), details={**details, **extra}, **({"status": status} if status else {}),
        )

    if not depends_on_input(chain):
        return result(0.0, note="no path of nonzero weights leads from a free input to the queried output: L = 0")
    if chain.free_neurons == 0:
        cert = certify(chain, np.zeros(0))
        if cert.rho is None:
            return result(None, "not_certified", reason=cert.reason)
        upper = _scaled_up(cert.rho, scale)
        return result(upper, solver=None, certified_value=upper, certify_attempts=cert.attempts,
                      note="no free neuron: the query is linear over the region and rho = ||Y||^2 needs no SDP")

    data = reduced(chain)
    clique = data.largest_clique()
    details.update(sdp_size=data.dim, largest_dense_block=clique)
    attempts: list[dict] = []
    for name in solver_order(solver, clique):
        best = _best_certificate(chain, data, variant, name, time_limit, attempts)
        if best is not None:
            sol, cert, strictness = best
            upper = _scaled_up(cert.rho, scale)
            solver_value = math.sqrt(max(sol.rho, 0.0)) * scale if sol.rho is not None else None
            return result(
                upper,
                solver=name,
                solver_status=sol.status,
                solver_value=solver_value,
                certified_value=upper,
                certified_over_solver=None if not solver_value else upper / solver_value,
                solve_seconds=sum(a["seconds"] for a in attempts),
                certify_attempts=cert.attempts,
                strictness=strictness,
                attempts=attempts,
            )
        if any(a["solver"] == name and a["status"] not in _NO_ANSWER for a in attempts):
            break  # the solver answered: another one would not certify more from the same LMI, or spend the time again
    failures = "; ".join(
        f"{a['solver']}: {a['status']}" + (f" ({a['message']})" if a.get("message") else "")
        + (f" - {a['reason']}" if a.get("reason") else "") for a in attempts
    )
    if all(a["status"] == "solver_error" for a in attempts):
        raise SolverUnavailableError(f"LipSDP: every SDP solver failed: {failures}")
    status = "time_limit" if attempts[-1]["status"] == "user_limit" else "not_certified"
    return result(None, status, reason=f"no certified bound: {failures}", attempts=attempts)


def _scaled_up(rho: float, scale: float) -> float:
    """``sqrt(rho) · scale`` rounded up (the square root is correctly rounded; scale is a power of two)."""
    value = float(np.nextafter(math.sqrt(rho), math.inf))
    with np.errstate(over="ignore"):
        out = float(np.float64(value) * np.float64(scale))
    return float(np.nextafter(out, math.inf)) if 0 < out < np.finfo(np.float64).tiny else out
