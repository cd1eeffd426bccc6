"""Fast bounds: certified sampled and ascent lower bounds, cheap certified
upper bounds, and the (uncertified) CLEVER estimate."""

from lipmip.estimate.ascent import ascent_lower_bound
from lipmip.estimate.clever import clever_estimate
from lipmip.estimate.interval_jacobian import interval_jacobian_upper_bound
from lipmip.estimate.product import product_upper_bound
from lipmip.estimate.sampling import local_values, sample_lower_bound

__all__ = ["ascent_lower_bound", "clever_estimate", "interval_jacobian_upper_bound", "product_upper_bound",
           "sample_lower_bound", "local_values"]
