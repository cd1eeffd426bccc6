"""Every bound method against the exact value from region enumeration.

Enumeration (tested on its own against analytic oracles in test_regions.py)
gives the exact local Lipschitz constant of small networks; every other
method's certified sides must bracket it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from nets import small_lipschitz_cases

import lipmip

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(small_lipschitz_cases())
def test_every_method_brackets_the_exact_value(case):
    net, region, query = case
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    assert exact.lower <= exact.upper
    assert exact.upper - exact.lower <= 1e-6 * max(1.0, exact.upper)
    methods = ["sample", "ascent", "naive", "interval", "auto"] + (["lipsdp"] if query.input_norm == 2 else [])
    for method in methods:
        options = {"samples": 300} if method in ("sample", "auto") else {}
        if method == "ascent":
            options = {"samples": 200, "restarts": 8, "steps": 30}
        r = lipmip.lipschitz(net, region, query, method=method, **options)
        if r.lower is not None:
            assert r.lower <= exact.upper, (method, r.lower, exact.upper)
        if r.upper is not None:
            assert r.upper >= exact.lower, (method, r.upper, exact.lower)
