"""Fast bounds: certified sampled lower bounds and cheap certified upper bounds."""

from lipmip.estimate.interval_jacobian import interval_jacobian_upper_bound
from lipmip.estimate.product import product_upper_bound
from lipmip.estimate.sampling import local_values, sample_lower_bound

__all__ = ["interval_jacobian_upper_bound", "product_upper_bound", "sample_lower_bound", "local_values"]
