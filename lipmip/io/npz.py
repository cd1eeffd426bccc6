"""The ``.npz`` exchange format.

Arrays ``W1, b1, ..., WL, bL`` with ``W`` of shape ``(out, in)``; ReLU after
every layer but the last unless an ``activations`` array of names (one per
layer) says otherwise. An optional ``input_shape`` array records the shape
the model originally took.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from lipmip.errors import LipmipError, ModelFormatError
from lipmip.network import Network

__all__ = ["load_npz", "save_npz"]

_KEY = re.compile(r"^([Wb])(\d+)$")


def load_npz(path: str | Path) -> Network:
    """Read a network from the ``.npz`` exchange format."""
    path = Path(path)
    try:
        # open the file ourselves: np.load leaks its handle when the archive is corrupt
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise ModelFormatError(f"{path}: not a readable .npz archive ({exc})") from None
    indices: dict[str, set[int]] = {"W": set(), "b": set()}
    for key in arrays:
        m = _KEY.match(key)
        if m:
            indices[m.group(1)].add(int(m.group(2)))
    if not indices["W"]:
        raise ModelFormatError(f"{path}: no weight arrays W1, W2, ... found (keys: {sorted(arrays)})")
    n = max(indices["W"])
    expected = set(range(1, n + 1))
    for kind in ("W", "b"):
        missing = sorted(expected - indices[kind])
        extra = sorted(indices[kind] - expected)
        if missing or extra:
            raise ModelFormatError(
                f"{path}: layers must be numbered 1..{n} for both W and b; "
                f"missing {[kind + str(i) for i in missing]}, unexpected {[kind + str(i) for i in extra]}"
            )
    params = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(1, n + 1)]
    activations = None
    if "activations" in arrays:
        activations = [str(a) for a in np.atleast_1d(arrays["activations"]).tolist()]
    input_shape = None
    if "input_shape" in arrays:
        input_shape = [int(s) for s in np.atleast_1d(arrays["input_shape"]).tolist()]
    try:
        return Network.from_params(params, activations, input_shape=input_shape, name=path.name)
    except LipmipError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def save_npz(net: Network, path: str | Path) -> None:
    """Write ``net`` in the ``.npz`` exchange format (activations and input
    shape included, so the round trip is exact)."""
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers, start=1):
        arrays[f"W{i}"] = layer.W
        arrays[f"b{i}"] = layer.b
    arrays["activations"] = np.array(net.activations)
    arrays["input_shape"] = np.array(net.input_shape, dtype=np.int64)
    try:
        np.savez(Path(path), **arrays)
    except OSError as exc:
        raise ModelFormatError(f"cannot write {path}: {exc}") from None
