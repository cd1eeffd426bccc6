"""``lipmip report RESULTS [-o OUT] [--format html|md] [--figures DIR]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_report_command"]


def _cmd_report(args: argparse.Namespace) -> int:
    from lipmip.reporting.load import load_results
    from lipmip.reporting.render import render_report, report

    if args.output == "-":
        results = load_results(args.results)
        sys.stdout.write(render_report(results, format=args.format or "md", figures_dir=args.figures))
        return 0
    path = report(args.results, args.output, format=args.format, figures_dir=args.figures)
    print(f"wrote {path}")
    return 0


def add_report_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on ``subparsers`` (from
    ``ArgumentParser.add_subparsers``) and return its parser."""
    parser = subparsers.add_parser(
        "report", help="an HTML or Markdown robustness report from a results file of `lipmip certify`",
        description="Write a robustness report from a results file (JSON Lines) of `lipmip certify`; "
                    "the file may belong to a job that is still running.")
    parser.add_argument("results", help="results file (.jsonl) written by `lipmip certify`")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="report file; '-' prints it (Markdown unless --format html); "
                             "default: RESULTS with the suffix .html or .md")
    parser.add_argument("--format", choices=["html", "md"],
                        help="html (one self-contained file, figures inline) or md (the same tables); "
                             "default: from OUT's suffix, else html")
    parser.add_argument("--figures", metavar="DIR",
                        help="Markdown only: also write the figures as PNG files in DIR and link them")
    parser.set_defaults(func=_cmd_report)
    return parser
