"""``lipmip.certify``: certified robustness of every sample of a data set.

:func:`certify` is the Python form of ``lipmip certify``; both go through
:func:`run_certify`, which opens (or resumes) the results file, runs the rows
not yet in it (:mod:`lipmip.robustness.batch`) and writes each record as it
arrives. :func:`summary_line` is the line the CLI prints at the end.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from lipmip.dependencies import optional_import
from lipmip.errors import DataError, LipmipError
from lipmip.network import Network
from lipmip.norms import norm_name, parse_norm
from lipmip.robustness.batch import check_workers, run_samples
from lipmip.robustness.data import check_dataset, data_sha256, select_rows
from lipmip.robustness.radius import SAMPLE_FIELDS, CertifySettings
from lipmip.robustness.results import ResultsWriter, make_header

__all__ = ["certify", "run_certify", "summary_line"]


def certify(
    net: Network,
    X: Any,
    y: Any,
    eps: float,
    *,
    ball: Any = "inf",
    method: str = "auto",
    time_limit: float | None = 60.0,
    workers: int = 1,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool | None = None,
    as_frame: bool = False,
    start: int = 0,
    limit: int | None = None,
    seed: int = 0,
    samples: int = 200,
    radius_search: str = "cheap",
    radius_steps: int = 16,
    bounds: str = "linear",
    attack_steps: int = 50,
    attack_restarts: int = 4,
    attack_samples: int = 500,
) -> list[dict] | Any:
    """Certify every row of ``X`` (labels ``y``, or None) at radius ``eps``.

    Returns one record per row (``start``, then ``limit`` rows; all by
    default), in row order: dicts with the fields of the results schema
    (``docs/certify.md``): ``certified`` is true only when no input within
    ``eps`` of the row (in the ``ball`` norm: ``"inf"``, ``2`` or ``1``)
    changes the prediction, provably, and the prediction is the label;
    ``certified_radius`` the largest radius proven; ``lower``/``upper``
    certified bounds on the deciding margin's local Lipschitz constant.
    ``as_frame=True`` gives a pandas DataFrame instead (pandas must be
    installed).

    ``method``: the strongest bound method tried (``"auto"``: interval, then
    bab, then the MIP; ``"interval"``: never escalate; or any method of
    :data:`lipmip.api.METHODS` that gives upper bounds); ``time_limit``:
    seconds per sample for the exact methods (None: no limit). ``workers``
    >= 2 runs the samples on a Dask ``LocalCluster`` of that many processes,
    ``scheduler`` on an existing Dask cluster. ``out``: a results file
    (JSON Lines) written as samples finish; when it exists it is resumed
    (rows already in it are not certified again). ``progress``: a progress
    bar on stderr (None: when stderr is a terminal). The other options are
    those of :class:`~lipmip.robustness.radius.CertifySettings`.
    """
    settings = CertifySettings(eps=eps, ball=ball, method=method, time_limit=time_limit, seed=seed, samples=samples,
                               attack_steps=attack_steps, attack_restarts=attack_restarts,
                               attack_samples=attack_samples, radius_search=radius_search,
                               radius_steps=radius_steps, bounds=bounds)
    if not isinstance(net, Network):
        raise LipmipError(f"expected a lipmip.Network, got {type(net).__name__} (use lipmip.load to read a model)")
    points, labels = check_dataset(net, X, y)
    records = run_certify(net, points, labels, settings, rows=select_rows(points.shape[0], start, limit), out=out,
                          workers=workers, scheduler=scheduler, progress=progress, model=net.name,
                          data_hash=data_sha256(points, labels))
    if as_frame:
        pandas = optional_import("pandas", "certify(..., as_frame=True)")
        return pandas.DataFrame.from_records(records, columns=list(SAMPLE_FIELDS[1:]))
    return records


def run_certify(net: Network, X: np.ndarray, y: np.ndarray | None, settings: CertifySettings, *, rows: range,
                out: str | os.PathLike | None, workers: int = 1, scheduler: str | None = None,
                progress: bool | None = None, model: str | None = None, data: str | None = None,
                command: str | None = None, scale: float | None = None, data_hash: str) -> list[dict]:
    """Run a job on checked data (``X`` already scaled; ``data_hash`` the
    fingerprint of the data as read, ``scale`` the factor applied) and
    return the records of ``rows`` in row order, those found in a resumed
    ``out`` file included."""
    import lipmip

    check_workers(workers, scheduler)
    if net.output_dim < 2:
        raise DataError(f"certifying a prediction needs a classifier with at least 2 outputs; this network has "
                        f"{net.output_dim}")
    header = make_header(net=net, settings=settings.to_dict(), data_sha256=data_hash, start=rows.start,
                         rows=len(rows), scale=scale, command=command, model=model, data=data,
                         lipmip_version=lipmip.__version__)
    records: dict[int, dict] = {}
    writer = ResultsWriter(out, header) if out is not None else None
    try:
        if writer is not None:
            records.update(writer.done)

        def keep(record: dict) -> None:
            if writer is not None:
                writer.write(record)
            records[record["index"]] = record

        todo = [i for i in rows if i not in records]
        run_samples(net, X, y, todo, settings, keep, workers=workers, scheduler=scheduler, progress=progress)
    finally:
        if writer is not None:
            writer.close()
    return [records[i] for i in rows if i in records]


def summary_line(records: Sequence[dict], eps: float, ball: Any) -> str:
    """One line: how many rows are certified at ``eps``, the certified and
    clean accuracy (when there are labels) and the mean time per sample, e.g.
    ``certified 71/100 at eps=0.01 (linf): certified accuracy 71.0%, clean
    accuracy 98.0%, 1.23 s/sample``."""
    n = len(records)
    certified = sum(bool(r.get("certified")) for r in records)
    parts = [f"certified {certified}/{n} at eps={eps:g} (l{norm_name(parse_norm(ball))})"]
    details = []
    if n and all(r.get("label") is not None for r in records):
        correct = sum(bool(r.get("correct")) for r in records)
        details += [f"certified accuracy {100 * certified / n:.1f}%", f"clean accuracy {100 * correct / n:.1f}%"]
    elif n:
        details.append(f"{100 * certified / n:.1f}% certified")
    seconds = [r["seconds"] for r in records if isinstance(r.get("seconds"), (int, float)) and math.isfinite(r["seconds"])]
    if seconds:
        details.append(f"{sum(seconds) / len(seconds):.3g} s/sample")
    errors = sum(r.get("error") is not None for r in records)
    if errors:
        details.append(f"{errors} error{'s' if errors != 1 else ''}")
    return parts[0] + (": " + ", ".join(details) if details else "")
