"""Stability report: how many ReLUs a region leaves undecided, and how large
the big-M coefficients of a MIP over it would be."""

from __future__ import annotations

import numpy as np

from lipmip.bounds.backward import GradientBounds
from lipmip.bounds.base import Bounds

__all__ = ["stability_table", "format_stability"]


def stability_table(forward: Bounds, grads: GradientBounds | None = None) -> list[dict]:
    """One row per layer: neuron counts (active / inactive / unstable), the
    share of stable ReLUs, the largest forward big-M ``max(u, -l)`` over the
    layer's unstable neurons, its running product over the layers (the
    growth Plate et al. 2025 warn about), and, given gradient bounds, the
    largest gradient big-M ``max |G_k|`` of the layer's outputs."""
    rows = []
    running = 1.0
    for k, layer in enumerate(forward.net.layers):
        unstable = forward.unstable[k]
        is_relu = layer.activation.name == "relu"
        big_m = float(np.maximum(forward.upper[k], -forward.lower[k])[unstable].max(initial=0.0))
        if big_m > 0:
            running *= big_m
        n = layer.out_features
        row = {
            "layer": k + 1,
            "neurons": n,
            "activation": layer.activation.name,
            "active": int(forward.active[k].sum()) if is_relu else None,
            "inactive": int(forward.inactive[k].sum()) if is_relu else None,
            "unstable": int(unstable.sum()) if is_relu else None,
            "stable_percent": 100.0 * (1 - unstable.sum() / n) if is_relu else None,
            "max_forward_big_m": big_m if is_relu else None,
            "forward_big_m_product": running,
            "max_gradient_big_m": float(grads.big_m(k + 1).max()) if grads is not None else None,
        }
        rows.append(row)
    return rows


def format_stability(forward: Bounds, grads: GradientBounds | None = None) -> str:
    """The table of :func:`stability_table` as aligned text."""
    rows = stability_table(forward, grads)
    head = (f"{'layer':>5} {'neurons':>7} {'active':>7} {'inactive':>8} {'unstable':>8} {'stable':>7}  "
            f"{'max M fwd':>10} {'prod M fwd':>10}")
    if grads is not None:
        head += f" {'max M grad':>10}"
    lines = [head]
    for r in rows:
        if r["unstable"] is None:
            line = f"{r['layer']:>5} {r['neurons']:>7} {'(' + r['activation'] + ')':>33}  {'':>10} {'':>10}"
        else:
            line = (
                f"{r['layer']:>5} {r['neurons']:>7} {r['active']:>7} {r['inactive']:>8} {r['unstable']:>8} "
                f"{r['stable_percent']:>6.1f}%  {r['max_forward_big_m']:>10.4g} {r['forward_big_m_product']:>10.4g}"
            )
        if grads is not None:
            line += f" {r['max_gradient_big_m']:>10.4g}"
        lines.append(line)
    total = forward.num_relus
    lines.append(
        f"total: {forward.num_unstable} of {total} ReLUs unstable ({100 * forward.stable_fraction:.1f}% stable), "
        f"bounds by {forward.method} in {forward.seconds:.3g} s"
    )
    return "\n".join(lines)
