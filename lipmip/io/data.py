"""Reading input points (data sets, ball centres) from files.

``.npy``: an array of points (one per row; a 1-D array is one point).
``.npz``: arrays ``X`` (points) and optionally ``y`` (labels); an archive with
a single array is read as ``X``. An optional ``scale`` array multiplies ``X``.
``.csv``: one point per row, the label in the first column (the layout of
MNIST CSV files), no header.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from lipmip.errors import ModelFormatError, NonFiniteError

__all__ = ["load_points"]


def load_points(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X, y)`` from a data file: ``X`` float64 of shape (n, d), ``y`` int
    labels of shape (n,) or ``None``. Raises :class:`ModelFormatError` for
    unreadable files and :class:`NonFiniteError` for NaN/inf entries."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such data file")
    suffix = path.suffix.lower()
    y = None
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                X = np.load(fh, allow_pickle=False)
        elif suffix == ".npz":
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
                names = list(data.files)
                if "X" in names:
                    X = data["X"]
                elif len(names) == 1:
                    X = data[names[0]]
                else:
                    raise ModelFormatError(f"{path}: no array named 'X' (arrays: {names})")
                y = data["y"] if "y" in names else None
                if "scale" in names:
                    X = X * data["scale"]
        elif suffix == ".csv":
            table = np.loadtxt(path, delimiter=",", ndmin=2)
            if table.shape[1] < 2:
                raise ModelFormatError(f"{path}: a CSV row needs a label and at least one value")
            X, y = table[:, 1:], table[:, 0]
        else:
            raise ModelFormatError(f"{path}: unknown data file type {suffix!r} (use .npy, .npz or .csv)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFormatError(f"{path}: cannot read data ({exc})") from None
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    elif X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if not np.all(np.isfinite(X)):
        raise NonFiniteError(f"{path}: data holds NaN or inf")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ModelFormatError(f"{path}: {X.shape[0]} points but labels of shape {y.shape}")
        if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)):
            raise ModelFormatError(f"{path}: labels must be integers")
        y = y.astype(np.int64)
    return X, y
