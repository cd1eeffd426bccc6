"""Bounds on every neuron of a network over an input region.

``compute(net, region, method=...)`` gives pre-activation bounds
(:class:`Bounds`) by ``interval`` (IBP), ``linear`` (back-substitution) or
``lp`` (LP-based tightening); each is at least as tight as the previous one,
neuron by neuron.
"""

from __future__ import annotations

from typing import Any

from lipmip.bounds.base import Bounds
from lipmip.bounds.interval import interval_bounds
from lipmip.bounds.linear import linear_bounds
from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.network import Network

__all__ = ["Bounds", "compute", "METHODS"]

METHODS = ("interval", "linear", "lp")


def compute(net: Network, region: Region, method: str = "linear", **options: Any) -> Bounds:
    """Pre-activation bounds of every layer of ``net`` over ``region``.

    ``method``: ``"interval"``, ``"linear"`` or ``"lp"``. Guarantees
    ``lower[k] <= z_k(x) <= upper[k]`` for every ``x`` in the region, in exact
    arithmetic, for every layer ``k``.

    ``lp`` options: ``base=`` (bounds to start from, default ``linear``),
    ``time_limit=`` (seconds; neurons not reached keep valid bounds),
    ``milp_time_limit=`` (seconds per neuron and side for MILP tightening
    after the LP pass; sound up to HiGHS's tolerances, the result's method is
    then ``"lp+milp"``), ``progress=`` (a progress bar).
    """
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__}")
    region = as_region(region)
    region.check_network(net)
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidQueryError(f"unknown bound method {method!r}; available: {', '.join(METHODS)}")
    if method == "interval":
        _no_options(method, options)
        return interval_bounds(net, region)
    if method == "linear":
        _no_options(method, options)
        return linear_bounds(net, region)
    from lipmip.bounds.lp import lp_bounds

    return lp_bounds(net, region, **options)


def _no_options(method: str, options: dict) -> None:
    if options:
        raise InvalidQueryError(f"bound method {method!r} takes no options (got {', '.join(sorted(options))})")
