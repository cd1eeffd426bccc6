"""Random test networks and cases shared by the test modules (``from nets import random_net``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

import lipmip
from lipmip import Network

STYLES = ("gauss", "int", "sparse", "nobias")


def random_net(
    seed: int | np.random.Generator,
    sizes: Sequence[int],
    *,
    acts: Sequence[str] | None = None,
    output_relu: bool = False,
    identity_hidden: int | None = None,
    style: str = "gauss",
) -> Network:
    """A network with layer widths ``sizes``, drawn from ``seed`` (an integer
    or a generator, which is advanced). Styles: ``"gauss"``, weights
    N(0, 1/fan-in) and biases N(0, 0.25); ``"int"``, small integers, which
    make hyperplanes coincide, pass through lattice points and vanish;
    ``"sparse"``, unscaled Gaussian weights and biases with about half of
    them zero; ``"nobias"``, the Gaussian weights with zero biases (every
    first-layer hyperplane through 0). Activations: ``acts``, or ReLU hidden
    layers (``identity_hidden``: that one an identity) and a ReLU or
    identity output."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        if style == "int":
            W = rng.integers(-2, 3, size=(n_out, n_in)).astype(float)
            b = rng.integers(-1, 2, size=n_out).astype(float)
        elif style == "sparse":
            W = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.5)
            b = rng.normal(size=n_out) * (rng.random(n_out) < 0.5)
        else:
            W = rng.normal(size=(n_out, n_in)) / math.sqrt(n_in)
            b = np.zeros(n_out) if style == "nobias" else rng.normal(size=n_out) * 0.5
        params.append((W, b))
    if acts is None:
        acts = ["relu"] * (len(params) - 1) + ["relu" if output_relu else "identity"]
        if identity_hidden is not None:
            acts[identity_hidden] = "identity"
    return Network.from_params(params, list(acts))


@st.composite
def small_lipschitz_cases(draw):
    """A small random network (1–3 inputs, up to two hidden layers of 1–6
    ReLUs, 1–3 outputs, a ReLU or identity output), a box or 1/2/∞ ball and a
    scalar or operator-norm query: cases region enumeration solves exactly."""
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
