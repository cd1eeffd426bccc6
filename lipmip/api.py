"""``lipmip.lipschitz``: one call shape for every bound method."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.estimate import interval_jacobian_upper_bound, product_upper_bound, sample_lower_bound
from lipmip.network import Network
from lipmip.query import Query
from lipmip.regions import exact_lipschitz_by_enumeration
from lipmip.result import LipschitzBound

__all__ = ["lipschitz", "default_query", "accepted_options", "METHODS"]


def _auto(net: Network, region: Region, query: Query, **options: Any) -> LipschitzBound:
    """The best combination available today: the sampled lower bound and the
    smaller of the interval-Jacobian and norm-product upper bounds."""
    return LipschitzBound.combine(
        sample_lower_bound(net, region, query, **options),
        interval_jacobian_upper_bound(net, region, query),
        product_upper_bound(net, region, query),
        method="auto",
    )


def _mip(net: Network, region: Region, query: Query, **options: Any) -> LipschitzBound:
    from lipmip.mip import mip_lipschitz  # imports the solver backends only when used

    return mip_lipschitz(net, region, query, **options)


METHODS: dict[str, Callable[..., LipschitzBound]] = {
    "auto": _auto,
    "sample": sample_lower_bound,
    "naive": product_upper_bound,
    "interval": interval_jacobian_upper_bound,
    "enumerate": exact_lipschitz_by_enumeration,
    "mip": _mip,
}

# the options each method accepts (auto passes its options to the sampler)
_OPTIONS: dict[str, Callable[..., LipschitzBound]] = {"auto": sample_lower_bound}


def _option_source(method: str) -> Callable[..., LipschitzBound]:
    if method == "mip":
        from lipmip.mip import mip_lipschitz

        return mip_lipschitz
    return _OPTIONS.get(method, METHODS[method])


def accepted_options(method: str) -> list[str]:
    """The keyword options ``method`` takes."""
    fn = _option_source(method)
    return [name for name, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_options(method: str, options: dict[str, Any]) -> None:
    accepted = accepted_options(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidQueryError(
            f"method {method!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'no options'}"
        )


def default_query(net: Network, region: Region, norm: Any = None) -> Query:
    """The query used when none is given: the single output of a scalar
    network, otherwise the Jacobian operator norm; the input norm is ``norm``,
    else the ball's own norm, else ∞."""
    if norm is None:
        norm = getattr(region, "p", math.inf)
    if net.output_dim == 1:
        return Query.output(0, 1, norm)
    return Query.vector(norm)


def lipschitz(
    net: Network,
    region: Region,
    query: Query | None = None,
    *,
    method: str = "auto",
    norm: Any = None,
    **options: Any,
) -> LipschitzBound:
    """Certified bounds on the local Lipschitz constant of ``query`` over ``region``.

    ``method`` is one of :data:`METHODS`: ``"auto"`` (sampled lower bound and
    the best cheap upper bound), ``"sample"``, ``"naive"`` (norm product),
    ``"interval"`` (interval Jacobian), ``"enumerate"`` (exact, by listing
    every activation region: small networks only), ``"mip"`` (mixed-integer
    programming on HiGHS / SCIP / Gurobi); ``options`` go to that method. The result satisfies
    ``lower <= L <= upper`` for the sides it fills.
    """
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__} (use lipmip.load to read a model)")
    region = as_region(region)
    region.check_network(net)
    if query is not None and not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    if query is None:
        query = default_query(net, region, norm)
    elif norm is not None:
        raise InvalidQueryError("give the input norm either in the query or as norm=, not both")
    query.check_network(net)
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidQueryError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    _check_options(method, options)
    return METHODS[method](net, region, query, **options)
