"""Random test networks shared by the test modules (import as ``from nets import random_net``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

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
