"""The CLEVER estimate (Weng et al., ICLR 2018): extreme-value statistics of
sampled gradient norms. **It certifies nothing.**

CLEVER draws ``batches`` batches of ``batch_size`` uniform points of the
region, keeps the largest local Lipschitz value of each batch, fits a reverse
Weibull distribution to those maxima, and takes the fitted location (the
distribution's right end point) as an estimate of the maximum. The estimate
can fall below the true constant (a steep region that no sample hits) and,
unlike a witness, proves nothing: lipmip reports it in
``LipschitzBound.estimate`` only, with ``lower`` and ``upper`` empty
(``certified`` is False). Use ``method="sample"``/``"ascent"`` for certified
lower bounds and ``"interval"``/``"bab"``/``"mip"`` for upper bounds.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from lipmip.domains import Region
from lipmip.estimate.sampling import ranked_values
from lipmip.network import Network
from lipmip.options import check_count
from lipmip.query import Query
from lipmip.result import LipschitzBound
from lipmip.witness import free_coordinates

__all__ = ["clever_estimate"]


def clever_estimate(
    net: Network,
    region: Region,
    query: Query,
    *,
    batches: int = 50,
    batch_size: int = 100,
    seed: int = 0,
    backend: str = "auto",
    dtype: str = "float32",
) -> LipschitzBound:
    """The CLEVER estimate of the local Lipschitz constant (uncertified; see
    the module docstring). ``details`` hold the fitted reverse Weibull
    parameters, the largest sampled value and whether the fit was usable (a
    failed or degenerate fit falls back to the largest sampled value, and
    says so)."""
    check_count(batches, "batches", 2)
    check_count(batch_size, "batch_size", 1)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    points = region.sample(batches * batch_size, rng)
    values, used = ranked_values(net, query, points, free_coordinates(region), backend, dtype)
    maxima = values.reshape(batches, batch_size).max(axis=1)
    fit = _reverse_weibull(maxima)
    largest = float(maxima.max())
    usable = fit is not None and np.isfinite(fit["location"]) and fit["location"] >= largest
    estimate = fit["location"] if usable else largest
    return LipschitzBound(
        lower=None,
        upper=None,
        method="clever",
        seconds=time.perf_counter() - start,
        estimate=float(estimate),
        query=query.to_dict(),
        region=region.to_dict(),
        details={
            "certified": False,
            "note": "CLEVER is a statistical estimate (reverse Weibull fit to sampled batch maxima); it is not a bound",
            "batches": batches, "batch_size": batch_size, "backend": used,
            "largest_sampled_value": largest, "fit": fit, "fit_used": bool(usable),
        },
    )


def _reverse_weibull(maxima: np.ndarray) -> dict | None:
    """Maximum-likelihood reverse Weibull fit (``scipy.stats.weibull_max``)
    of the batch maxima: ``{"shape", "location", "scale"}``, or None when
    the maxima are all equal or the fit fails."""
    from scipy import stats

    if np.ptp(maxima) <= 1e-12 * max(1.0, float(np.abs(maxima).max())):
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the optimiser's convergence chatter; the result is checked below
        try:
            shape, location, scale = stats.weibull_max.fit(maxima, loc=float(maxima.max()))
        except (ValueError, RuntimeError, FloatingPointError):
            return None
    return {"shape": float(shape), "location": float(location), "scale": float(scale)}
