"""Every bound method against the exact value from region enumeration.

Enumeration (tested on its own against analytic oracles in test_regions.py)
gives the exact local Lipschitz constant of small networks; every other
method's certified sides must bracket it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lipmip

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_in = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=2))
    n_out = draw(st.integers(1, 3))
    widths = [n_in, *hidden, n_out]
    acts = ["relu"] * (len(widths) - 2) + [draw(st.sampled_from(["relu", "identity"]))]
    net = lipmip.Network.from_params(
        [(rng.standard_normal((o, i)), rng.standard_normal(o)) for i, o in zip(widths[:-1], widths[1:])], acts
    )
    kind = draw(st.sampled_from(["box", "1", "2", "inf"]))
    center = rng.standard_normal(n_in)
    radius = float(draw(st.sampled_from([0.1, 0.5, 1.5])))
    region = (lipmip.Box(center - radius, center + radius * rng.random(n_in)) if kind == "box"
              else lipmip.Ball(center, radius, kind))
    norm = draw(st.sampled_from([1, 2, "inf"]))
    query = (lipmip.Query.vector(norm) if draw(st.booleans())
             else lipmip.Query.scalar(rng.standard_normal(n_out), norm))
    return net, region, query


@SETTINGS
@given(small_cases())
def test_every_method_brackets_the_exact_value(case):
    net, region, query = case
    exact = lipmip.lipschitz(net, region, query, method="enumerate")
    assert exact.lower <= exact.upper
    assert exact.upper - exact.lower <= 1e-6 * max(1.0, exact.upper)
    for method in ("sample", "naive", "interval", "auto"):
        options = {"samples": 300} if method in ("sample", "auto") else {}
        r = lipmip.lipschitz(net, region, query, method=method, **options)
        if r.lower is not None:
            assert r.lower <= exact.upper, (method, r.lower, exact.upper)
        if r.upper is not None:
            assert r.upper >= exact.lower, (method, r.upper, exact.lower)
