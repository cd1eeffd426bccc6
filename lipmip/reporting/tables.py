"""The report's tables as rows of finished strings.

Both templates (HTML and Markdown) print these same strings, so the two
formats cannot disagree on a number; the templates only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from lipmip.reporting.formatting import MISSING, ball_name, number, percent, seconds
from lipmip.reporting.load import Results
from lipmip.reporting.summary import Summary, outcome

__all__ = ["Table", "count_of", "headline_table", "run_table", "radius_table", "class_table", "method_table",
           "lipschitz_table", "stability_table", "stability_bins_table", "time_table", "slowest_table", "error_table",
           "sample_table", "build_tables"]


@dataclass(frozen=True)
class Table:
    """``columns`` and ``rows`` of strings; ``numeric`` marks right-aligned columns."""

    id: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]

    @classmethod
    def of(cls, id: str, columns: list[str], rows: list[list[str]], numeric: list[bool] | None = None) -> "Table":
        flags = tuple(numeric) if numeric is not None else tuple(i > 0 for i in range(len(columns)))
        return cls(id, tuple(columns), tuple(tuple(r) for r in rows), flags)


def count_of(k: int, n: int) -> str:
    """``17 / 30 (56.7%)``."""
    return f"{k} / {n} ({percent(k / n)})" if n else f"{k} / {n}"


def _hash(digest: str | None) -> str:
    return f"sha256 {digest[:12]}…" if digest else "no hash recorded"


def headline_table(summary: Summary) -> Table:
    h = summary.headline
    n = h.finished
    rows = [["Samples finished", f"{n} of {h.expected}" if h.expected is not None else str(n)]]
    if h.missing is not None:
        rows.append(["Samples still missing", str(h.missing)])
    rows.append(["Samples with an error", str(h.errored)])
    rows.append(["Clean accuracy" if h.labelled else "Samples with a prediction (no labels)", count_of(h.correct, n)])
    rows.append([f"Certified accuracy at ε = {number(h.eps)}" if h.labelled else f"Certified robust at ε = {number(h.eps)}",
                 count_of(h.certified, n)])
    if h.robust_upper is not None:
        rows.append([f"Adversarial input found within ε = {number(h.eps)}", count_of(h.attacked, n)])
        rows.append([f"Robust accuracy at ε = {number(h.eps)}, upper limit", count_of(h.correct - h.attacked, n)])
    rows.append(["Median certified radius (correct samples)", number(summary.radius_stats["median"])])
    return Table.of("headline", ["Quantity", "Value"], rows)


def run_table(results: Results, report_version: str) -> Table:
    head = results.header
    net = head.network
    parts = []
    if net.get("name"):
        parts.append(str(net["name"]))
    widths = net.get("widths")
    if isinstance(widths, list) and widths:
        parts.append("-".join(str(w) for w in widths))
    for key, word in (("relus", "ReLUs"), ("parameters", "parameters")):
        if isinstance(net.get(key), int):
            parts.append(f"{number(net[key])} {word}")
    if net.get("output_activation"):
        parts.append(f"output activation {net['output_activation']}")
    rows = [["Network", ", ".join(parts) or MISSING],
            ["Model file", f"{head.model or MISSING} ({_hash(head.model_sha256)})"]]
    data = f"{head.data or MISSING} ({_hash(head.data_sha256)})"
    if head.rows is not None:
        data += f", {head.rows} rows"
    rows.append(["Data", data])
    rows.append(["Input scale", number(head.scale)])
    rows.append(["Region", f"{ball_name(head.ball)} ball of radius ε = {number(head.eps)} around each (scaled) input"])
    rows.append(["Method", head.method or MISSING])
    rows.append(["Time limit per sample", seconds(head.time_limit) if head.time_limit is not None else "none"])
    rows.append(["Seed", MISSING if head.seed is None else str(head.seed)])
    rows.append(["Run started", head.created or MISSING])
    rows.append(["Results written by", f"lipmip {head.lipmip_version}" if head.lipmip_version else MISSING])
    rows.append(["Report made by", f"lipmip {report_version}"])
    if results.path is not None:
        rows.append(["Results file", str(results.path)])
    return Table.of("run", ["Item", "Value"], rows, [False, False])


_MULTIPLES = {0.25: "ε/4", 0.5: "ε/2", 1.0: "ε"}


def radius_table(summary: Summary) -> Table:
    n = summary.headline.finished
    columns = ["Radius", "Certified"]
    if summary.has_attacks:
        columns.append("Upper limit (no adversarial found)")
    rows = []
    for r in summary.radius_table:
        name = _MULTIPLES.get(r.factor, f"{r.factor:g}ε")
        row = [f"{name} = {number(r.radius)}" if r.factor else "0", count_of(r.certified, n)]
        if summary.has_attacks:
            row.append(count_of(r.not_refuted or 0, n))
        rows.append(row)
    return Table.of("radius-table", columns, rows)


def class_table(summary: Summary) -> Table:
    name = "Class (label)" if summary.class_key == "label" else "Class (prediction)"
    rows = [[c.label, str(c.samples), str(c.errored), count_of(c.correct, c.samples), count_of(c.certified, c.samples),
             number(c.median_radius)] for c in summary.classes]
    return Table.of("per-class", [name, "Samples", "Errored", "Clean accuracy", "Certified accuracy",
                                  "Median certified radius (correct samples)"], rows)


def method_table(summary: Summary) -> Table:
    rows = [[m.method, str(m.samples), count_of(m.certified, m.samples), seconds(m.median_seconds), seconds(m.total_seconds)]
            for m in summary.methods]
    return Table.of("methods", ["Method that decided", "Samples", "Certified", "Median time", "Total time"], rows)


def lipschitz_table(summary: Summary) -> Table:
    st = summary.lipschitz_stats
    rows = [["Samples with both bounds", str(st["samples"])],
            ["… of which exact (lower = upper)", str(st["exact"])],
            ["Samples with an upper bound only", str(st["upper_only"])],
            ["Median lower bound", number(st["median_lower"])],
            ["Median upper bound", number(st["median_upper"])],
            ["Median ratio upper / lower", number(st["median_ratio"])],
            ["Largest ratio upper / lower", number(st["max_ratio"])]]
    return Table.of("lipschitz", ["Quantity", "Value"], rows)


def stability_table(summary: Summary) -> Table:
    st = summary.stability_stats
    rows = [["Samples with a stability count", str(st["samples"])],
            ["Mean share of stable ReLUs", percent(st["mean"])],
            ["Median share of stable ReLUs", percent(st["median"])],
            ["Smallest share of stable ReLUs", percent(st["min"])],
            ["Mean number of unstable ReLUs", number(st["mean_unstable"])],
            [f"Mean stable share, certified ({st['certified_samples']})", percent(st["mean_certified"])],
            [f"Mean stable share, correct but not certified ({st['not_certified_samples']})",
             percent(st["mean_not_certified"])]]
    return Table.of("stability", ["Quantity", "Value"], rows)


def stability_bins_table(summary: Summary) -> Table:
    rows = []
    for i, b in enumerate(summary.stability_bins):
        closing = "]" if i == len(summary.stability_bins) - 1 else ")"
        rows.append([f"[{percent(b.low)}, {percent(b.high)}{closing}", str(b.samples), count_of(b.certified, b.samples)])
    return Table.of("stability-bins", ["Stable share (quartiles)", "Correct samples", "Certified"], rows)


def time_table(summary: Summary) -> Table:
    st = summary.time_stats
    rows = [["Samples timed", str(st["samples"])], ["Total", seconds(st["total"])], ["Mean", seconds(st["mean"])],
            ["Median", seconds(st["median"])], ["90th percentile", seconds(st["p90"])], ["Slowest", seconds(st["max"])]]
    return Table.of("time", ["Quantity", "Value"], rows)


def _label(value: int | None) -> str:
    return MISSING if value is None else str(value)


def slowest_table(summary: Summary) -> Table:
    eps, labelled = summary.headline.eps, summary.headline.labelled
    rows = [[str(s.index), _label(s.label), _label(s.prediction), outcome(s, eps, labelled), number(s.certified_radius),
             s.method or MISSING, seconds(s.seconds)] for s in summary.slowest]
    return Table.of("slowest", ["Index", "Label", "Prediction", "Outcome", "Certified radius", "Method", "Time"], rows,
                    [True, True, True, False, True, False, True])


def error_table(summary: Summary) -> Table:
    rows = [[str(s.index), _label(s.label), s.error or ""] for s in summary.errors]
    return Table.of("errors", ["Index", "Label", "Error"], rows, [True, True, False])


def sample_table(summary: Summary, limit: int = 2000) -> Table:
    eps, labelled = summary.headline.eps, summary.headline.labelled
    rows = []
    for s in summary.results.samples[:limit]:
        rows.append([str(s.index), _label(s.label), _label(s.prediction), _label(s.runner_up), number(s.margin),
                     outcome(s, eps, labelled), number(s.certified_radius), number(s.radius_limit),
                     number(s.adversarial_distance), number(s.lower), number(s.upper), s.method or MISSING,
                     percent(s.stable_fraction), _label(s.unstable), seconds(s.seconds)])
    columns = ["Index", "Label", "Prediction", "Runner-up", "Margin", "Outcome", "Certified radius", "Radius limit",
               "Adversarial distance", "Lower", "Upper", "Method", "Stable", "Unstable", "Time"]
    numeric = [c not in ("Outcome", "Method") for c in columns]
    return Table.of("samples", columns, rows, numeric)


def build_tables(summary: Summary, report_version: str) -> dict[str, Table]:
    """Every table of the report by name."""
    return {
        "headline": headline_table(summary),
        "run": run_table(summary.results, report_version),
        "radius": radius_table(summary),
        "classes": class_table(summary),
        "methods": method_table(summary),
        "lipschitz": lipschitz_table(summary),
        "stability": stability_table(summary),
        "stability_bins": stability_bins_table(summary),
        "time": time_table(summary),
        "slowest": slowest_table(summary),
        "errors": error_table(summary),
        "samples": sample_table(summary),
    }
