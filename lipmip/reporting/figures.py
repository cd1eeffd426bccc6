"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no
global state) and returned as PNG bytes, ready to embed as ``data:`` URIs or
to write next to a Markdown report.

Each function returns ``None`` when there is nothing to draw (e.g. a job
that has not finished a sample yet); the report then says so in words.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lipmip.dependencies import optional_import
from lipmip.reporting.formatting import ball_name
from lipmip.reporting.summary import OUTCOMES, Summary, certified_curve, not_refuted_curve, outcome

__all__ = ["ReportFigure", "make_figures", "FIGURES"]

COLOURS = {"certified": "#1b7f4b", "not certified": "#e08a1e", "misclassified": "#7f7f7f", "error": "#c0392b"}
WIDTH, HEIGHT, DPI = 7.6, 3.3, 110


@dataclass(frozen=True)
class ReportFigure:
    """One drawn figure: ``name`` (a file-name stem), its caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _figure() -> tuple[Any, Any]:
    """A fresh figure with one axes on its own Agg canvas."""
    figure_module = optional_import("matplotlib.figure", "the report's figures")
    agg = optional_import("matplotlib.backends.backend_agg", "the report's figures")
    fig = figure_module.Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _mark_eps(ax: Any, eps: float) -> None:
    """A dotted vertical line at ε, labelled just above the x axis."""
    ax.axvline(eps, color="#555555", linewidth=1, linestyle=":")
    ax.annotate(f"ε = {eps:g}", (eps, 0.0), xycoords=("data", "axes fraction"), xytext=(4, 5),
                textcoords="offset points", fontsize=9, color="#333333",
                bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _legend(fig: Any) -> None:
    """One row of legend entries above the axes, clear of the data."""
    fig.legend(loc="outside upper right", ncols=4, fontsize=9, frameon=False)


def _spread(values: list[float]) -> float:
    positive = [v for v in values if v > 0]
    return max(positive) / min(positive) if positive else 1.0


# ---------------------------------------------------------------------------- the figures
def radius_curve(summary: Summary) -> ReportFigure | None:
    results, head = summary.results, summary.headline
    if not results.finished:
        return None
    eps = head.eps
    radii = [s.certified_radius for s in results.samples if s.certified_radius is not None]
    adv = sorted(s.adversarial_distance for s in results.samples if s.adversarial_distance is not None)
    right = 1.15 * max([2 * eps, *radii])
    grid = np.unique(np.concatenate([np.linspace(0.0, right, 600), radii, adv, [eps]]))
    grid = grid[grid <= right]
    fig, ax = _figure()
    ax.step(grid, certified_curve(results, grid), where="post", color=COLOURS["certified"], linewidth=2,
            label="certified (proven robust)")
    if summary.has_attacks:
        ax.step(grid, not_refuted_curve(results, grid), where="post", color="#34495e", linewidth=1.4, linestyle="--",
                label="upper limit (no adversarial input found)")
    _mark_eps(ax, eps)
    ax.set_xlim(0, right)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"radius ({ball_name(results.header.ball)} norm)")
    ax.set_ylabel(f"fraction of {results.finished} samples")
    _legend(fig)
    caption = ("Fraction of the finished samples proven robust at each radius (solid)"
               + ("; the dashed line counts samples for which no adversarial input was found within the radius, so the "
                  "true robust accuracy lies between the two lines" if summary.has_attacks else "")
               + ". The dotted line marks ε.")
    return ReportFigure("radius_curve", "Certified accuracy versus radius", caption, _png(fig))


def radius_histogram(summary: Summary) -> ReportFigure | None:
    results, eps = summary.results, summary.headline.eps
    radii = np.array([s.certified_radius for s in results.samples
                      if s.certified_radius is not None and outcome(s, eps, summary.headline.labelled) != "misclassified"])
    if radii.size == 0:
        return None
    fig, ax = _figure()
    top = max(float(radii.max()), eps) * 1.05
    ax.hist(radii, bins=np.linspace(0.0, top, 26), color=COLOURS["certified"], alpha=0.85, edgecolor="white", linewidth=0.5)
    _mark_eps(ax, eps)
    ax.set_xlabel(f"certified radius ({ball_name(results.header.ball)} norm)")
    ax.set_ylabel("samples")
    ax.yaxis.get_major_locator().set_params(integer=True)
    zero = int(np.sum(radii == 0))
    caption = (f"Certified radii of the {radii.size} samples that were classified correctly and finished without error"
               + (f"; {zero} of them have radius 0 (no radius could be proven)" if zero else "") + ".")
    return ReportFigure("radius_histogram", "Certified radii", caption, _png(fig))


def lipschitz_intervals(summary: Summary) -> ReportFigure | None:
    results, eps, labelled = summary.results, summary.headline.eps, summary.headline.labelled
    rows = [s for s in results.samples if s.upper is not None or s.lower is not None]
    if not rows:
        return None
    rows.sort(key=lambda s: (s.upper if s.upper is not None else s.lower or 0.0, s.index))
    values = [v for s in rows for v in (s.lower, s.upper) if v is not None]
    log = _spread(values) > 20 and all(v > 0 for v in values)
    fig, ax = _figure()
    x = np.arange(len(rows))
    marker_size = 4 if len(rows) <= 150 else 1.5
    for kind in OUTCOMES:
        pick = [i for i, s in enumerate(rows) if outcome(s, eps, labelled) == kind]
        if not pick:
            continue
        both = [i for i in pick if rows[i].lower is not None and rows[i].upper is not None]
        ax.vlines(x[both], [rows[i].lower for i in both], [rows[i].upper for i in both], color=COLOURS[kind], linewidth=1.4)
        up = [i for i in pick if rows[i].upper is not None]
        low = [i for i in pick if rows[i].lower is not None]
        ax.plot(x[up], [rows[i].upper for i in up], "_", color=COLOURS[kind], markersize=2 * marker_size, label=kind)
        ax.plot(x[low], [rows[i].lower for i in low], "_", color=COLOURS[kind], markersize=2 * marker_size)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("samples, sorted by the upper bound")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("local Lipschitz constant")
    _legend(fig)
    caption = ("Certified interval [lower, upper] on the local Lipschitz constant, over the ε-ball, of the margin that "
               "decided each sample" + (" (log scale)" if log else "") + ".")
    return ReportFigure("lipschitz_intervals", "Lipschitz interval per sample", caption, _png(fig))


def time_per_sample(summary: Summary) -> ReportFigure | None:
    results, eps, labelled = summary.results, summary.headline.eps, summary.headline.labelled
    timed = [s for s in results.samples if s.seconds is not None]
    if not timed:
        return None
    times = [s.seconds or 0.0 for s in timed]
    log = _spread(times) > 50 and all(t > 0 for t in times)
    fig, ax = _figure()
    size = 14 if len(timed) <= 300 else 4
    for kind in OUTCOMES:
        pick = [s for s in timed if outcome(s, eps, labelled) == kind]
        if pick:
            ax.scatter([s.index for s in pick], [s.seconds for s in pick], s=size, color=COLOURS[kind], label=kind)
    limit = results.header.time_limit
    if limit is not None and limit <= 1.5 * max(times):
        ax.axhline(limit, color="#555555", linewidth=1, linestyle=":")
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("sample index")
    ax.set_ylabel("seconds")
    _legend(fig)
    caption = "Wall time per sample" + (" (log scale)" if log else "") + (
        "; the dotted line is the time limit" if limit is not None and limit <= 1.5 * max(times) else "") + "."
    return ReportFigure("time_per_sample", "Time per sample", caption, _png(fig))


def stability(summary: Summary) -> ReportFigure | None:
    results, eps, labelled = summary.results, summary.headline.eps, summary.headline.labelled
    rows = [s for s in results.samples if s.stable_fraction is not None and s.certified_radius is not None
            and outcome(s, eps, labelled) in ("certified", "not certified")]
    if not rows:
        return None
    fig, ax = _figure()
    for kind in ("certified", "not certified"):
        pick = [s for s in rows if outcome(s, eps, labelled) == kind]
        if pick:
            ax.scatter([s.stable_fraction for s in pick], [s.certified_radius for s in pick], s=14, color=COLOURS[kind],
                       label=kind)
    ax.axhline(eps, color="#555555", linewidth=1, linestyle=":")
    ax.set_xlabel("share of ReLUs stable over the ε-ball")
    ax.set_ylabel("certified radius")
    ax.set_ylim(bottom=0)
    _legend(fig)
    caption = ("Certified radius against the share of stable ReLUs, for the correctly classified samples; "
               "the dotted line marks ε.")
    return ReportFigure("stability", "Stability and certified radius", caption, _png(fig))


FIGURES: dict[str, Callable[[Summary], ReportFigure | None]] = {
    "radius_curve": radius_curve,
    "radius_histogram": radius_histogram,
    "lipschitz_intervals": lipschitz_intervals,
    "time_per_sample": time_per_sample,
    "stability": stability,
}


def make_figures(summary: Summary) -> dict[str, ReportFigure | None]:
    """Every figure of the report by name (``None`` where there is no data)."""
    return {name: draw(summary) for name, draw in FIGURES.items()}
