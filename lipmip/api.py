"""``lipmip.lipschitz``: one call shape for every bound method."""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Callable

from lipmip.domains import Region, as_region
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.estimate import (
    ascent_lower_bound,
    clever_estimate,
    interval_jacobian_upper_bound,
    product_upper_bound,
    sample_lower_bound,
)
from lipmip.network import Network
from lipmip.query import Query
from lipmip.regions import bab_lipschitz, exact_lipschitz_by_enumeration
from lipmip.result import LipschitzBound

__all__ = ["lipschitz", "default_query", "accepted_options", "METHODS"]


# methods whose modules load the solver backends: imported on first use
_LAZY = {
    "auto": ("lipmip.auto", "auto_lipschitz"),
    "mip": ("lipmip.mip", "mip_lipschitz"),
    "lipsdp": ("lipmip.lipsdp", "lipsdp_upper_bound"),
}


def _implementation(method: str) -> Callable[..., LipschitzBound]:
    """The function behind ``method`` (its keyword-only parameters are the method's options)."""
    if method in _LAZY:
        module, name = _LAZY[method]
        return getattr(importlib.import_module(module), name)
    return METHODS[method]


def _lazy(method: str) -> Callable[..., LipschitzBound]:
    def call(net: Network, region: Region, query: Query, **options: Any) -> LipschitzBound:
        return _implementation(method)(net, region, query, **options)

    call.__name__ = f"{method}_lipschitz"
    return call


METHODS: dict[str, Callable[..., LipschitzBound]] = {
    "auto": _lazy("auto"),
    "sample": sample_lower_bound,
    "ascent": ascent_lower_bound,
    "clever": clever_estimate,
    "naive": product_upper_bound,
    "interval": interval_jacobian_upper_bound,
    "enumerate": exact_lipschitz_by_enumeration,
    "mip": _lazy("mip"),
    "bab": bab_lipschitz,
    "lipsdp": _lazy("lipsdp"),
}


def accepted_options(method: str) -> list[str]:
    """The keyword options ``method`` takes."""
    fn = _implementation(method)
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
    c: Any = None,
    input_norm: Any = None,
    output_norm: Any = None,
    method: str = "auto",
    **options: Any,
) -> LipschitzBound:
    """Certified bounds on the local Lipschitz constant of ``query`` over ``region``.

    What to bound, either as a :class:`~lipmip.query.Query` or by keywords:
    ``c`` (a vector, one entry per output) bounds the scalar ``c·f`` with
    respect to ``input_norm`` (its gradient's dual norm); ``output_norm``
    without ``c`` bounds the Jacobian's operator norm ``input_norm →
    output_norm``; neither gives :func:`default_query` (the single output of a
    scalar network, else the operator norm). ``input_norm`` defaults to the
    ball's own norm, ∞ for a box.

    ``method`` is one of :data:`METHODS`: ``"auto"`` (cheap bounds, then the
    branch and bound, then the MIP when they do not meet: :mod:`lipmip.auto`);
    certified lower bounds only: ``"sample"`` (points of the region),
    ``"ascent"`` (smoothed gradient ascent and a region walk, in JAX);
    certified upper bounds only: ``"naive"`` (norm product, global),
    ``"interval"`` (interval Jacobian), ``"lipsdp"`` (LipSDP-Neuron, ℓ2,
    verified); both sides: ``"enumerate"`` (exact, by listing every
    activation region: small networks only), ``"mip"`` (mixed-integer
    programming on HiGHS / SCIP / Gurobi), ``"bab"`` (exact branch and bound
    over activation regions); neither: ``"clever"`` (an uncertified
    statistical estimate, in ``estimate``). ``options`` go to that method
    (:func:`accepted_options`). The result satisfies ``lower <= L <= upper``
    for the sides it fills.
    """
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__} (use lipmip.load to read a model)")
    region = as_region(region)
    region.check_network(net)
    if query is not None and not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a lipmip.Query, got {type(query).__name__}")
    if query is None:
        query = _query_from_keywords(net, region, c, input_norm, output_norm)
    elif c is not None or input_norm is not None or output_norm is not None:
        raise InvalidQueryError("give what to bound either as a Query or by c=/input_norm=/output_norm=, not both")
    query.check_network(net)
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidQueryError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    _check_options(method, options)
    return METHODS[method](net, region, query, **options)


def _query_from_keywords(net: Network, region: Region, c: Any, input_norm: Any, output_norm: Any) -> Query:
    if c is not None and output_norm is not None:
        raise InvalidQueryError("c= bounds the scalar c·f, which has no output norm: give c= or output_norm=, not both")
    if c is not None:
        return Query.scalar(c, getattr(region, "p", math.inf) if input_norm is None else input_norm)
    if output_norm is not None:
        return Query.vector(getattr(region, "p", math.inf) if input_norm is None else input_norm, output_norm)
    return default_query(net, region, input_norm)
