"""How the report writes numbers: the same rules in HTML and Markdown, so the
two formats show identical strings (they are also the Jinja2 filters)."""

from __future__ import annotations

import math

__all__ = ["number", "percent", "seconds", "ball_name", "FILTERS", "MISSING"]

MISSING = "–"


def number(x: float | int | None, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits without trailing zeros
    (``0.0131``, ``151.4``), whole numbers with thousands separators from
    10,000 on, scientific notation below 1e-4 and from 1e9 on."""
    if x is None:
        return MISSING
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    size = abs(x)
    if 1e-4 <= size < 1e4:
        text = f"{x:.{digits}g}"
        if "e" not in text:
            return text
    if 1e-4 <= size < 1e9:
        return f"{x:,.0f}"
    return f"{x:.{digits - 1}e}"


def percent(fraction: float | None) -> str:
    """``0.5667`` -> ``56.7%``."""
    if fraction is None:
        return MISSING
    return f"{100 * fraction:.1f}%"


def seconds(s: float | None) -> str:
    """A duration: ``0.412 s``, ``12.30 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if s is None:
        return MISSING
    if s < 120:
        return f"{number(s, 3)} s"
    whole = round(s)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def ball_name(ball: str | None) -> str:
    """``"inf"`` -> ``ℓ∞``, ``"2"`` -> ``ℓ2``."""
    if ball is None:
        return MISSING
    return "ℓ∞" if ball.lower() in ("inf", "linf", "infinity") else f"ℓ{ball}"


FILTERS = {"num": number, "pct": percent, "secs": seconds, "ball": ball_name}
