"""The ``lipmip certify`` subcommand: a thin layer over :func:`lipmip.robustness.api.run_certify`.

``lipmip certify MODEL DATA --eps E --out results.jsonl`` certifies every
selected row of DATA, appends one JSON line per finished sample to the
results file (resuming it when it exists), shows a progress bar on a
terminal, and prints a one-line summary at the end.
"""

from __future__ import annotations

import argparse
import math
import shlex
from typing import Any

from lipmip.api import METHODS
from lipmip.robustness.radius import NO_UPPER_METHODS, RADIUS_SEARCHES

__all__ = ["add_certify_command"]


def _ratio(text: str) -> float:
    """``0.5`` or ``1/255`` (argparse type), finite and > 0."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a ratio such as 1/255, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _seconds(text: str) -> float | None:
    """A time limit in seconds, or ``none`` for no limit."""
    if text.strip().lower() in ("none", "inf"):
        return None
    return _ratio(text)


def add_certify_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``certify`` on the ``lipmip`` subcommand parsers."""
    p = subparsers.add_parser("certify", help="certified robustness of every sample of a data set (resumable, Dask)",
                              description="Certify that no input within EPS of each data row changes the network's "
                                          "prediction; one JSON line per sample goes to --out as it finishes, and "
                                          "running the command again resumes the file.")
    p.add_argument("model", help="model file (.npz, .onnx, .onnx.gz, .pt)")
    p.add_argument("data", help="data file: .npz (X, y), .npy (points, no labels), or .csv (label first, as mnist_test.csv)")
    p.add_argument("--eps", type=_ratio, required=True, help="radius to certify (a number or a ratio)")
    p.add_argument("--out", required=True, metavar="FILE", help="results file (JSON Lines); resumed when it exists")
    p.add_argument("--ball", default="inf", choices=["inf", "2", "1"], help="norm of the ball (default inf)")
    p.add_argument("--scale", type=_ratio, default=1.0, help="multiply the data by this (e.g. 1/255 for pixels)")
    p.add_argument("--start", type=int, default=0, metavar="ROW", help="first row to certify (default 0)")
    p.add_argument("--limit", type=int, metavar="N", help="certify N rows (default: to the end)")
    how = p.add_argument_group("method")
    tops = ["auto"] + [m for m in METHODS if m != "auto" and m not in NO_UPPER_METHODS]
    how.add_argument("--method", default="auto", choices=tops,
                     help="strongest bound method tried on a margin the interval bounds leave open "
                          "(auto: bab, then the MIP; interval: never escalate; default auto)")
    how.add_argument("--time-limit", type=_seconds, default=60.0, metavar="S",
                     help="seconds per sample for the exact methods (default 60; none for no limit)")
    how.add_argument("--radius-search", choices=list(RADIUS_SEARCHES), default="cheap",
                     help="radius search: cheap (interval bounds, default), exact (the whole ladder), none")
    how.add_argument("--seed", type=int, default=0, help="seed of the sampling and the attack (default 0)")
    how.add_argument("--samples", type=int, default=200, help="points per sampled lower bound (default 200)")
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="1: run here (default); N >= 2: a Dask LocalCluster of N worker processes")
    run.add_argument("--scheduler", metavar="ADDR", help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (it shows on a terminal only)")
    p.set_defaults(func=_cmd_certify)
    return p


def _command_line(args: argparse.Namespace) -> str:
    """The command as run, in a canonical spelling (every setting explicit)."""
    words = ["lipmip", "certify", args.model, args.data, "--eps", repr(args.eps), "--ball", args.ball]
    if args.scale != 1.0:
        words += ["--scale", repr(args.scale)]
    if args.start:
        words += ["--start", str(args.start)]
    if args.limit is not None:
        words += ["--limit", str(args.limit)]
    words += ["--method", args.method, "--time-limit", "none" if args.time_limit is None else repr(args.time_limit)]
    if args.radius_search != "cheap":
        words += ["--radius-search", args.radius_search]
    if args.seed:
        words += ["--seed", str(args.seed)]
    if args.samples != 200:
        words += ["--samples", str(args.samples)]
    words += ["--out", args.out]
    return shlex.join(words)


def _cmd_certify(args: argparse.Namespace) -> int:
    import lipmip
    from lipmip.robustness.api import run_certify, summary_line
    from lipmip.robustness.batch import check_workers
    from lipmip.robustness.data import check_dataset, data_sha256, load_dataset, select_rows
    from lipmip.robustness.radius import CertifySettings

    settings = CertifySettings(eps=args.eps, ball=args.ball, method=args.method, time_limit=args.time_limit,
                               seed=args.seed, samples=args.samples, radius_search=args.radius_search)
    check_workers(args.workers, args.scheduler)
    net = lipmip.load(args.model)
    raw, labels = load_dataset(args.data)
    X, labels = check_dataset(net, raw * args.scale, labels)
    rows = select_rows(X.shape[0], args.start, args.limit)
    records = run_certify(net, X, labels, settings, rows=rows, out=args.out, workers=args.workers,
                          scheduler=args.scheduler, progress=False if args.no_progress else None, model=str(args.model),
                          data=str(args.data), command=_command_line(args), scale=args.scale,
                          data_hash=data_sha256(raw, labels))
    print(summary_line(records, settings.eps, settings.ball))
    return 0
