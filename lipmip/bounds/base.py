"""The :class:`Bounds` object every forward-bound method returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lipmip.activations import IDENTITY, RELU
from lipmip.domains import Region
from lipmip.network import Network
from lipmip.rounding import gamma

__all__ = ["Bounds", "round_outward"]



def round_outward(lo: np.ndarray, hi: np.ndarray, magnitude: np.ndarray, terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Widen ``[lo, hi]`` by the rounding bound ``γ_terms · magnitude`` (plus a
    hair for underflow), where ``magnitude`` bounds the absolute values of the
    summands that produced ``lo`` and ``hi``."""
    pad = 2 * gamma(terms) * magnitude + 1e-300
    return lo - pad, hi + pad


@dataclass(frozen=True, eq=False)
class Bounds:
    """Bounds on every pre-activation ``z_k`` of a network over a region.

    ``lower[k] <= z_k(x) <= upper[k]`` for every ``x`` in ``region`` and
    every layer ``k`` (the output layer included), in exact arithmetic.
    Neuron masks (per layer, for ReLU layers; an identity layer counts as
    stably active):

    * ``active[k]``: ``lower >= 0`` (the ReLU is the identity there),
    * ``inactive[k]``: ``upper <= 0`` (the ReLU is 0 there),
    * ``unstable[k]``: neither (the ReLU may switch inside the region).
    """

    net: Network
    region: Region
    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    method: str
    seconds: float
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lo, hi in zip(self.lower, self.upper):
            lo.setflags(write=False)
            hi.setflags(write=False)

    def for_scaled_output(self, net: Network, factor: float) -> "Bounds":
        """These bounds for ``net`` = this network with its output scaled by the
        power of two ``factor`` (:func:`lipmip.rescale.scale_output`): the last
        layer's bounds times ``factor`` (exact), the others unchanged."""
        lower = (*self.lower[:-1], self.lower[-1] * factor)
        upper = (*self.upper[:-1], self.upper[-1] * factor)
        return replace(self, net=net, lower=lower, upper=upper)

    # ------------------------------------------------------------------ masks
    @property
    def active(self) -> tuple[np.ndarray, ...]:
        return tuple(
            (lo >= 0) | (layer.activation is IDENTITY) for lo, layer in zip(self.lower, self.net.layers)
        )

    @property
    def inactive(self) -> tuple[np.ndarray, ...]:
        return tuple((hi <= 0) & (layer.activation is RELU) for hi, layer in zip(self.upper, self.net.layers))

    @property
    def unstable(self) -> tuple[np.ndarray, ...]:
        return tuple(
            (lo < 0) & (hi > 0) & (layer.activation is RELU)
            for lo, hi, layer in zip(self.lower, self.upper, self.net.layers)
        )

    @property
    def num_unstable(self) -> int:
        return int(sum(int(u.sum()) for u in self.unstable))

    @property
    def num_relus(self) -> int:
        return self.net.num_relus

    @property
    def stable_fraction(self) -> float:
        """Share of ReLU neurons that are stable (1.0 for a network without ReLUs)."""
        total = self.num_relus
        return 1.0 if total == 0 else 1.0 - self.num_unstable / total

    def post_activation(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on ``h_k = σ(z_k)`` (exact images of the pre-activation bounds)."""
        act = self.net.layers[k].activation
        return act.forward(self.lower[k]), act.forward(self.upper[k])

    def slope_bounds(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on the derivative of layer ``k``'s activation over the region:
        ``(1, 1)`` active, ``(0, 0)`` inactive, ``(0, 1)`` unstable."""
        lo = self.active[k].astype(np.float64)
        hi = (~self.inactive[k]).astype(np.float64)
        return lo, hi

    # ------------------------------------------------------------------ combination
    def intersect(self, other: "Bounds", method: str | None = None) -> "Bounds":
        """Neuron-wise intersection with bounds of the same network and region."""
        lower = tuple(np.maximum(a, b) for a, b in zip(self.lower, other.lower))
        upper = tuple(np.minimum(a, b) for a, b in zip(self.upper, other.upper))
        return Bounds(self.net, self.region, lower, upper, method or self.method, self.seconds + other.seconds)

    def widths(self) -> list[np.ndarray]:
        return [hi - lo for lo, hi in zip(self.lower, self.upper)]

    def __repr__(self) -> str:
        return (
            f"Bounds({self.method}: {self.num_unstable} of {self.num_relus} ReLUs unstable, "
            f"{100 * self.stable_fraction:.1f}% stable, {self.seconds:.3g} s)"
        )
