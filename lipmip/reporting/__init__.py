"""Robustness reports from a results file of ``lipmip certify``.

``report(results, out)`` writes a self-contained HTML report (or Markdown,
``format="md"``); ``load_results`` reads the JSON Lines file (tolerant of a
running or interrupted job), ``summarize`` gives every number the report
shows. jinja2 and matplotlib (the ``report`` extra) are imported only when a
report is rendered, so importing this package needs neither.
"""

from lipmip.errors import ReportOutputError, ResultsFileError
from lipmip.reporting.load import FORMAT_VERSION, Results, RunHeader, SampleRecord, load_results, results_from_records
from lipmip.reporting.render import FORMATS, render_report, report
from lipmip.reporting.summary import Summary, summarize

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "ReportOutputError",
    "Results",
    "ResultsFileError",
    "RunHeader",
    "SampleRecord",
    "Summary",
    "load_results",
    "render_report",
    "report",
    "results_from_records",
    "summarize",
]
