"""Render a robustness report (HTML or Markdown) from a results file.

``report(results, out)`` writes one self-contained HTML file (figures as
``data:`` URIs, no script, no external style sheet, font or image) or a
Markdown file (the same tables; figures as PNG files beside it when
``figures_dir`` is given). jinja2 and matplotlib (the ``report`` extra) are
imported only here, on first use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from lipmip.dependencies import optional_import
from lipmip.errors import ReportOutputError
from lipmip.reporting.figures import ReportFigure, make_figures
from lipmip.reporting.formatting import FILTERS, ball_name, number
from lipmip.reporting.load import Results, load_results
from lipmip.reporting.summary import Summary, summarize
from lipmip.reporting.tables import build_tables

__all__ = ["report", "render_report", "FORMATS", "DEFINITIONS"]

FORMATS = ("html", "md")
TEMPLATES = Path(__file__).resolve().parent / "templates"

DEFINITIONS = (
    ("Certified accuracy at ε", "The share of the finished samples that are classified correctly and proven to keep their "
     "prediction for every input within distance ε (in the ball's norm). An errored sample counts as not certified; "
     "without labels, the share of samples whose prediction is proven unchanged."),
    ("Clean accuracy", "The share of the finished samples classified correctly; an errored sample counts as not correct."),
    ("Certified radius", "The largest radius r proven by Lipschitz bounds: every margin m_j = f_pred − f_j satisfies "
     "m_j(x) > U_j(r)·r, with U_j(r) a certified upper bound on the local Lipschitz constant of m_j over the r-ball. "
     "A sample certified at ε counts as certified at every radius up to ε."),
    ("Median certified radius", "Over the correctly classified samples (with labels) that finished without error; "
     "misclassified samples, whose radius is 0 by definition, are left out."),
    ("Radius limit", "A radius beyond which certified lower bounds on the Lipschitz constants show that no Lipschitz-based "
     "certificate can succeed; it limits the method, not the network's robustness."),
    ("Upper limit (robust accuracy)", "The share of the finished samples that are classified correctly and for which no "
     "adversarial input was found within the radius: the true robust accuracy is at most this."),
    ("Lipschitz interval", "Certified lower and upper bounds on the local Lipschitz constant, over the ε-ball, of the "
     "margin that decided the sample."),
    ("Stable ReLU", "A ReLU whose input keeps one sign over the whole ε-ball, according to the neuron bounds."),
)


def _environment(fmt: str):
    jinja2 = optional_import("jinja2", "lipmip report")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=fmt == "html",
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    env.filters["md"] = _markdown_cell
    return env


def _markdown_cell(text: object) -> str:
    """A table cell or inline text that cannot break a Markdown table nor
    start raw HTML (``|`` and ``<`` backslash-escaped, one line)."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")
    return text.replace("\r", " ").replace("\n", " ")


def _title(results: Results) -> tuple[str, str]:
    head = results.header
    name = head.network.get("name") or (Path(head.model).name if head.model else "network")
    widths = head.network.get("widths")
    shape = f" ({'-'.join(str(w) for w in widths)})" if isinstance(widths, list) and widths else ""
    subtitle = (f"{ball_name(head.ball)} ball, ε = {number(head.eps)}, method {head.method or '–'}; "
                f"{results.finished} sample{'s' if results.finished != 1 else ''} finished"
                + (f" of {head.rows}" if head.rows is not None else "") + ".")
    return f"{name}{shape}", subtitle


def _source(results: Results) -> str:
    if results.path is None:
        return "results in memory"
    try:
        digest = hashlib.sha256(results.path.read_bytes()).hexdigest()[:12]
    except OSError:
        return str(results.path)
    return f"{results.path} (sha256 {digest}…)"


def _figure_paths(figures: dict[str, ReportFigure | None], figures_dir: Path, relative_to: Path | None) -> dict[str, str]:
    """Write each figure as ``figures_dir/NAME.png``; the links, relative to
    ``relative_to`` (the report's folder) when given."""
    try:
        figures_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportOutputError(f"cannot create the figures folder {figures_dir}: {exc.strerror or exc}") from None
    paths = {}
    for name, fig in figures.items():
        if fig is None:
            continue
        target = figures_dir / f"{fig.name}.png"
        _write_bytes(target, fig.png)
        link = Path(os.path.relpath(target.resolve(), relative_to.resolve())) if relative_to is not None else target
        paths[name] = link.as_posix()
    return paths


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ReportOutputError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def render_report(results: Results | str | os.PathLike, *, format: str = "html", figures_dir: str | os.PathLike | None = None,
                  relative_to: str | os.PathLike | None = None) -> str:
    """The report as text. ``format``: ``"html"`` (self-contained) or ``"md"``.
    For Markdown, ``figures_dir`` writes the figures there as PNG files and
    links them (relative to ``relative_to`` when given)."""
    fmt = _check_format(format)
    if figures_dir is not None and fmt != "md":
        raise ReportOutputError("figures_dir (--figures) applies to Markdown reports; HTML reports embed their figures")
    loaded = results if isinstance(results, Results) else load_results(results)
    env = _environment(fmt)  # before drawing: a missing jinja2 is reported before any work
    summary: Summary = summarize(loaded)
    from lipmip import __version__

    figures: dict[str, ReportFigure | None] = {}
    figure_paths: dict[str, str] = {}
    if fmt == "html" or figures_dir is not None:
        figures = make_figures(summary)
    if figures_dir is not None:
        figure_paths = _figure_paths(figures, Path(figures_dir), None if relative_to is None else Path(relative_to))
    title, subtitle = _title(loaded)
    template = env.get_template(f"report.{fmt}.j2")
    return template.render(summary=summary, tables=build_tables(summary, __version__), figures=figures,
                           figure_paths=figure_paths, title=title, subtitle=subtitle, version=__version__,
                           source=_source(loaded), definitions=DEFINITIONS)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder,
    so that a reader never sees half a file."""
    if path.is_dir():
        raise ReportOutputError(f"cannot write {path}: it is a folder")
    folder = path.parent
    if not folder.is_dir():
        raise ReportOutputError(f"cannot write {path}: the folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ReportOutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportOutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _format_of(out: Path) -> str:
    return "md" if out.suffix.lower() in (".md", ".markdown") else "html"


def report(results: Results | str | os.PathLike, out: str | os.PathLike | None = None, *, format: str | None = None,
           figures_dir: str | os.PathLike | None = None) -> Path:
    """Write the robustness report of ``results`` (a results file's path or
    :class:`Results`) to ``out`` and return its path.

    ``format``: ``"html"`` (one self-contained file: inline figures, no
    script, no external resource) or ``"md"`` (the same tables and numbers);
    by default from ``out``'s suffix (``.md`` gives Markdown), HTML otherwise.
    ``out`` defaults to the results file with the suffix ``.html`` / ``.md``.
    ``figures_dir`` (Markdown only) also writes the figures there as PNG
    files, linked from the report.

    Raises :class:`ResultsFileError` for an unreadable or malformed results
    file, :class:`ReportOutputError` for an unwritable output,
    :class:`MissingDependencyError` without jinja2/matplotlib."""
    loaded = results if isinstance(results, Results) else load_results(results)
    if out is None:
        if loaded.path is None:
            raise ReportOutputError("results held in memory need an output path (out=...)")
        fmt = _check_format(format or "html")
        target = loaded.path.with_suffix(f".{fmt}")
    else:
        target = Path(out)
        fmt = _check_format(format or _format_of(target))
    if target.is_dir():
        raise ReportOutputError(f"cannot write {target}: it is a folder")
    if not target.parent.is_dir():
        raise ReportOutputError(f"cannot write {target}: the folder {target.parent} does not exist")
    text = render_report(loaded, format=fmt, figures_dir=figures_dir, relative_to=target.parent)
    _write_bytes(target, text.encode("utf-8"))
    return target
