"""Exact rescaling of a ReLU network (Plate et al. 2025).

ReLU and identity are positively homogeneous, ``σ(s z) = s σ(z)`` for
``s > 0``, so multiplying neuron ``j`` of a hidden layer (its weight row and
bias) by ``s_j`` and dividing the next layer's column ``j`` by ``s_j`` leaves
the network's function unchanged. The freedom can be spent on conditioning:

* ``"weights"``: balance each hidden neuron's incoming weights (row and bias)
  against its outgoing weights (column of the next layer), in ℓ2, by a few
  sweeps over the layers;
* ``"big_m"``: given a region, balance each hidden neuron's forward big-M
  ``max(|l|, |u|)`` against its gradient big-M ``max |G|`` (the bound on the
  back-propagated vector at its output), which meet in the MIP's
  linearisation; both become ``sqrt(M_fwd · M_grad)``.

With ``power_of_two=True`` (default) every factor is rounded to a power of
two, so the rescaled network computes bit for bit the same floats.
"""

from __future__ import annotations

import math

import numpy as np

from lipmip.domains import Region
from lipmip.errors import InvalidQueryError, InvalidRegionError
from lipmip.network import Layer, Network

__all__ = ["rescale", "apply_scaling", "scale_output"]

STRATEGIES = ("weights", "big_m")


def apply_scaling(net: Network, scales: list[np.ndarray]) -> Network:
    """The network with hidden layer ``k``'s neurons multiplied by
    ``scales[k]`` (positive, one per neuron) and layer ``k+1``'s columns divided
    by them. ``scales`` has one array per layer but the last."""
    if len(scales) != net.depth - 1:
        raise InvalidQueryError(f"need {net.depth - 1} scale vectors, got {len(scales)}")
    layers = list(net.layers)
    for k, s in enumerate(scales):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (layers[k].out_features,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InvalidQueryError(f"scales for layer {k + 1} must be {layers[k].out_features} positive finite numbers")
        layers[k] = Layer(layers[k].W * s[:, None], layers[k].b * s, layers[k].activation)
        layers[k + 1] = Layer(layers[k + 1].W / s[None, :], layers[k + 1].b, layers[k + 1].activation)
    return Network(layers, input_shape=net.input_shape, name=net.name)


def scale_output(net: Network, factor: float) -> Network:
    """The network ``factor · f`` (last layer's weights and bias times
    ``factor``; a positive power of two, so bit for bit the scaled floats,
    barring overflow). ReLU at the output commutes with the scaling."""
    factor = float(factor)
    if not (factor > 0 and math.isfinite(factor) and math.frexp(factor)[0] == 0.5):
        raise InvalidQueryError(f"output scale must be a positive power of two, got {factor!r}")
    last = net.layers[-1]
    layers = [*net.layers[:-1], Layer(last.W * factor, last.b * factor, last.activation)]
    return Network(layers, input_shape=net.input_shape, name=net.name)


def _round_to_power_of_two(s: np.ndarray) -> np.ndarray:
    return np.exp2(np.round(np.log2(s)))


def _balance(incoming: np.ndarray, outgoing: np.ndarray) -> np.ndarray:
    """``sqrt(outgoing / incoming)`` where both are positive, 1 elsewhere."""
    ok = (incoming > 0) & (outgoing > 0) & np.isfinite(incoming) & np.isfinite(outgoing)
    return np.where(ok, np.sqrt(np.where(ok, outgoing, 1.0) / np.where(ok, incoming, 1.0)), 1.0)


def _weight_scales(net: Network, sweeps: int, power_of_two: bool) -> Network:
    for _ in range(sweeps):
        scales = []
        for k in range(net.depth - 1):
            row = np.sqrt((net.layers[k].W ** 2).sum(axis=1) + net.layers[k].b ** 2)
            col = np.linalg.norm(net.layers[k + 1].W, axis=0)
            s = _balance(row, col)
            scales.append(_round_to_power_of_two(s) if power_of_two else s)
        if all(np.all(s == 1.0) for s in scales):
            break
        net = apply_scaling(net, scales)
    return net


def _big_m_scales(net: Network, region: Region, bounds: str, power_of_two: bool) -> Network:
    from lipmip.bounds import compute
    from lipmip.bounds.backward import gradient_bounds

    forward = compute(net, region, bounds)
    grads = gradient_bounds(forward, np.eye(net.output_dim))
    scales = []
    for k in range(net.depth - 1):
        fwd = np.maximum(np.abs(forward.lower[k]), np.abs(forward.upper[k]))
        grad = grads.big_m(k + 1)
        s = _balance(fwd, grad)
        scales.append(_round_to_power_of_two(s) if power_of_two else s)
    return apply_scaling(net, scales)


def rescale(
    net: Network,
    strategy: str = "weights",
    *,
    region: Region | None = None,
    bounds: str = "linear",
    sweeps: int = 20,
    power_of_two: bool = True,
) -> Network:
    """A rescaled copy of ``net`` computing the same function (bit for bit
    with ``power_of_two``, else up to float64 rounding). See the module
    docstring for the strategies; ``"big_m"`` needs ``region``."""
    if strategy not in STRATEGIES:
        raise InvalidQueryError(f"unknown rescaling strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if net.depth == 1:
        return net
    if strategy == "weights":
        return _weight_scales(net, sweeps, power_of_two)
    if region is None:
        raise InvalidRegionError("rescaling by big-M needs the input region (region=...)")
    region.check_network(net)
    return _big_m_scales(net, region, bounds, power_of_two)
