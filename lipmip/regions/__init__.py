"""Activation regions: exhaustive enumeration and the exact Lipschitz constant.

:func:`enumerate_regions` lists every activation region (set of inputs with
one ReLU pattern, on which the network is affine) that meets an input region
with full dimension; :func:`count_regions` counts them;
:func:`exact_lipschitz_by_enumeration` takes the largest local value over
them, certified on both sides; :func:`bab_lipschitz` finds the same value by
branch and bound over the regions, pruning with gradient bounds. The number of
regions grows exponentially with the number of unstable ReLUs: enumeration is
for small networks and small regions.
"""

from lipmip.regions.bab import bab_lipschitz
from lipmip.regions.enumerate import (
    ActivationRegion,
    AmbiguousRegionsError,
    EnumerationStats,
    RegionEnumerator,
    count_regions,
    enumerate_regions,
    pre_activations_with_error,
)
from lipmip.regions.exact import exact_lipschitz_by_enumeration, local_value_upper
from lipmip.regions.pattern import interior_point_for_pattern

__all__ = [
    "ActivationRegion",
    "AmbiguousRegionsError",
    "EnumerationStats",
    "RegionEnumerator",
    "bab_lipschitz",
    "count_regions",
    "enumerate_regions",
    "exact_lipschitz_by_enumeration",
    "interior_point_for_pattern",
    "local_value_upper",
    "pre_activations_with_error",
]
