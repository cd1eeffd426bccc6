"""The data set to certify: reading it, checking it against the network, fingerprinting it.

Files are read by :func:`lipmip.io.data.load_points` (``.npy``, ``.npz`` with
``X`` and optional ``y``, CSV with the label in the first column); a CSV that
numpy cannot parse is scanned again here so the error names the line at
fault (a ragged row, a header line, a value that is not a number).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from lipmip.errors import DataError, LipmipError
from lipmip.io.data import load_points
from lipmip.network import Network

__all__ = ["load_dataset", "check_dataset", "data_sha256", "select_rows"]


def load_dataset(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X, y)`` from a data file, as :func:`~lipmip.io.data.load_points`
    reads it (``X`` float64 of shape (n, d) before any scaling, ``y`` int
    labels or None). A CSV that does not parse raises :class:`DataError`
    naming the first bad line."""
    path = Path(path)
    try:
        X, y = load_points(path)
    except LipmipError:
        if path.suffix.lower() == ".csv" and path.is_file():
            _diagnose_csv(path)
        raise
    if X.shape[0] == 0:
        raise DataError(f"{path}: the data set has no rows")
    return X, y


def _diagnose_csv(path: Path) -> None:
    """Raise :class:`DataError` for the first line of ``path`` that breaks the
    CSV layout (returns when no such line is found)."""
    expected = None
    first = None
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                cells = line.rstrip("\r\n").split(",")
                for cell in cells:
                    try:
                        float(cell)
                    except ValueError:
                        hint = " (a header line? remove it)" if expected is None else ""
                        raise DataError(f"{path}, line {number}: {cell.strip()!r} is not a number{hint}") from None
                if expected is None:
                    expected, first = len(cells), number
                elif len(cells) != expected:
                    raise DataError(f"{path}, line {number}: {len(cells)} values, but line {first} has {expected} "
                                    f"(each row is a label followed by {expected - 1} values)")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (it is not UTF-8)") from None


def check_dataset(net: Network, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as float64 points of shape (n, input_dim) and ``y`` as int labels
    in ``0 .. output_dim - 1`` (or None), or :class:`DataError` naming what
    does not fit the network."""
    try:
        points = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"the points X are not a numeric array ({exc})") from None
    if points.ndim == 1:
        points = points[None, :]
    elif points.ndim > 2:
        points = points.reshape(points.shape[0], -1)
    if points.shape[0] == 0:
        raise DataError("the data set has no rows")
    if points.shape[1] != net.input_dim:
        raise DataError(f"the data points have {points.shape[1]} features but the network takes {net.input_dim} inputs")
    if not np.all(np.isfinite(points)):
        row = int(np.flatnonzero(~np.all(np.isfinite(points), axis=1))[0])
        raise DataError(f"the data holds NaN or inf (first in row {row})")
    if y is None:
        return points, None
    labels = np.asarray(y)
    if labels.shape != (points.shape[0],):
        raise DataError(f"{points.shape[0]} points but labels of shape {labels.shape}")
    if labels.dtype.kind not in "biuf" or labels.dtype.kind == "b":
        raise DataError(f"labels must be integers, got {labels.dtype}")
    as_float = labels.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
        raise DataError("labels must be integers")
    bad = np.flatnonzero((as_float < 0) | (as_float >= net.output_dim))
    if bad.size:
        row = int(bad[0])
        raise DataError(f"label {labels[row].item()!r} in row {row} is out of range: the network has {net.output_dim} "
                        f"outputs, so labels are 0..{net.output_dim - 1} ({bad.size} row(s) out of range)")
    return points, as_float.astype(np.int64)


def select_rows(n: int, start: int = 0, limit: int | None = None) -> range:
    """Row numbers ``start .. start + limit - 1`` of a data set of ``n`` rows
    (to the end when ``limit`` is None), or :class:`DataError`."""
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise DataError(f"the first row must be an integer >= 0, got {start!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"the number of rows must be an integer >= 1, got {limit!r}")
    if start >= n:
        raise DataError(f"the first row {start} is past the end of the data set ({n} rows)")
    stop = n if limit is None else min(n, int(start) + int(limit))
    return range(int(start), stop)


def data_sha256(X: np.ndarray, y: np.ndarray | None) -> str:
    """A fingerprint of the points and labels (float64 values and shape; the
    labels or their absence): equal data gives equal hashes, whatever file
    format it came from."""
    h = hashlib.sha256(b"lipmip-data-v1")
    points = np.ascontiguousarray(X, dtype="<f8")
    h.update(repr(points.shape).encode())
    h.update(points.tobytes())
    if y is None:
        h.update(b"no-labels")
    else:
        h.update(np.ascontiguousarray(y, dtype="<i8").tobytes())
    return h.hexdigest()
