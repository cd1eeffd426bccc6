"""A point deep inside the activation region of a given ReLU pattern.

Solvers (MIPs, branch and bound) report an activation pattern together with a
point that often lies on the region's boundary, where the network's
derivative is not the pattern's gradient. This module finds, by one LP (the
same maximum-slack LP as the enumeration), a point of the input region
where every ReLU has the given state with the largest margin. The point is
a candidate only: lower bounds built from it are certified afterwards by
:mod:`lipmip.witness`, so no error analysis is needed here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lipmip.activations import RELU
from lipmip.domains import Region
from lipmip.network import Network
from lipmip.regions.geometry import NeuronRows, RegionGeometry

__all__ = ["interior_point_for_pattern"]


def interior_point_for_pattern(
    net: Network, region: Region, pattern: Sequence[np.ndarray], x_ref: np.ndarray | None = None
) -> np.ndarray | None:
    """A point of ``region`` where ReLU ``j`` of layer ``k`` is on exactly when
    ``pattern[k][j]`` (one boolean array per layer; ignored for identity
    layers), with the largest margin the LP finds; ``None`` when the pattern's
    region has no interior inside ``region`` (as far as the LP can tell)."""
    geometry = RegionGeometry(region)
    center = geometry.center
    coefs, tcoefs, rhss, signs, scales = [], [], [], [], []
    A = np.eye(net.input_dim)
    a = np.zeros(net.input_dim)
    for k, layer in enumerate(net.layers):
        A_k = layer.W @ A
        a_k = layer.W @ a + layer.b
        if layer.activation is RELU:
            on = np.asarray(pattern[k], dtype=bool)
            free_rows = A_k[:, geometry.free]
            norms = np.linalg.norm(free_rows, axis=1) if free_rows.shape[1] else np.zeros(A_k.shape[0])
            beta = A_k @ center + a_k
            for j in range(A_k.shape[0]):
                sign = 1.0 if on[j] else -1.0
                if norms[j] == 0.0:
                    if sign * beta[j] < 0 or (beta[j] == 0 and on[j]):
                        return None  # a constant neuron with the other sign
                    continue
                coef, tcoef, rhs = geometry.neuron_row(A_k[j], float(beta[j]), 0.0, sign, float(norms[j]))
                coefs.append(coef)
                tcoefs.append(tcoef)
                rhss.append(rhs)
                signs.append(sign)
                scales.append(norms[j])
            A = on[:, None] * A_k
            a = on * a_k
        else:
            A, a = A_k, a_k
    n = net.input_dim
    rows = NeuronRows(
        np.array(coefs).reshape(-1, n),
        np.array(tcoefs),
        np.array(rhss),
        np.arange(len(rhss)),
        np.array(signs),
        np.array(scales),
    )
    start = center if x_ref is None else np.asarray(x_ref, dtype=np.float64)
    result = geometry.max_slack(rows, start)
    if result.x is None or not result.bound > 0:
        return None
    if region.contains(result.x):
        return result.x
    # an ℓ2 ball is met by tangent cuts only, and the LP may stop outside it: walk back toward x_ref
    # (in the ball and in the cell's closure), which keeps a positive share of the point's slack
    return _back_inside(region, start, result.x)


def _back_inside(region: Region, inside: np.ndarray, outside: np.ndarray) -> np.ndarray | None:
    """The point of the segment from ``inside`` (a point of ``region``) to
    ``outside`` that is farthest along it and still in ``region`` (convex),
    by bisection; ``None`` when ``inside`` itself is not in the region."""
    if not region.contains(inside):
        return None
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if region.contains(inside + mid * (outside - inside)) else (lo, mid)
    return inside + lo * (outside - inside)
