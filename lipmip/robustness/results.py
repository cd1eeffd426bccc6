"""The results file of a certification job: JSON Lines, written as samples finish, resumable.

Line 1 is the header (``"record": "header"``: what was certified, with the
model's and the data's SHA-256 and every setting); each further line is one
finished sample (``"record": "sample"``), in completion order. Each line is
written with one ``write``, flushed and ``fsync``\\ ed before the next.

:class:`ResultsWriter` opens a file for a job. A new (or empty) file gets the
header. An existing one is *resumed*: its header must describe the same job
(model, data, row selection, settings; :data:`CHECKED`), else
:class:`ResultsFileError` names what differs; its sample records are kept
and those rows are not certified again; a last line cut short by a crash
(no newline, or not JSON) is truncated and that sample redone. A lock
(``flock``, where the platform has it) refuses a second job on the same file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from lipmip.errors import ResultsFileError
from lipmip.network import Network

try:  # POSIX only; elsewhere the file is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["FORMAT", "CHECKED", "ResultsWriter", "read_results", "network_sha256", "network_summary", "make_header"]

FORMAT = 1
# header fields that must agree for a file to be resumed (what each sample's record depends on)
CHECKED = ("format", "model_sha256", "data_sha256", "scale", "start", "rows", "settings")
_NAMES = {"model_sha256": "model", "data_sha256": "data", "start": "first row", "rows": "number of rows",
          "scale": "scale", "format": "format version"}


def network_sha256(net: Network) -> str:
    """A fingerprint of the function a network computes (float64 weights,
    biases and activations, layer by layer): the same network read from
    ``.onnx`` or ``.npz`` gives the same hash."""
    h = hashlib.sha256(b"lipmip-network-v1")
    for layer in net.layers:
        h.update(f"{layer.W.shape}{layer.activation.name}".encode())
        h.update(np.ascontiguousarray(layer.W, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(layer.b, dtype="<f8").tobytes())
    return h.hexdigest()


def network_summary(net: Network) -> dict:
    return {"name": net.name, "widths": list(net.widths), "relus": net.num_relus, "parameters": net.num_parameters,
            "output_activation": net.layers[-1].activation.name}


def make_header(*, net: Network, settings: dict, data_sha256: str, start: int, rows: int, scale: float | None,
                command: str | None, model: str | None, data: str | None, lipmip_version: str) -> dict:
    """The header record of a job (``settings``: :meth:`CertifySettings.to_dict`)."""
    return {
        "record": "header", "format": FORMAT, "lipmip_version": lipmip_version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "model": model, "model_sha256": network_sha256(net), "network": network_summary(net),
        "data": data, "data_sha256": data_sha256, "start": start, "rows": rows, "scale": scale,
        "eps": settings["eps"], "ball": settings["ball"], "method": settings["method"],
        "time_limit": settings["time_limit"], "seed": settings["seed"], "settings": settings,
    }


_HEADER_START = b'{"record": "header"'


def _json_line(record: dict) -> bytes:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return (json.dumps(clean, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


def _parse(path: Path, data: bytes) -> tuple[dict | None, list[dict], int]:
    """``(header, samples, good_bytes)``: the records of ``data`` and the
    length of its prefix of complete, valid lines (a torn last line is left
    out). A bad line before the last raises :class:`ResultsFileError`."""
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line cut short
    records: list[dict] = []
    good = 0
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            if number == len(lines) and not tail:
                break  # the last line is not JSON: a crash mid-write
            raise ResultsFileError(f"{path}, line {number}: not a JSON record; is this a results file written by "
                                   "`lipmip certify`? (use another output file)") from None
        records.append(record)
        good += len(raw) + 1
    if not records:
        return None, [], 0
    header, samples = records[0], records[1:]
    if header.get("record") != "header":
        raise ResultsFileError(f"{path}, line 1: not a results header; is this a file written by `lipmip certify`? "
                               "(use another output file)")
    for number, record in enumerate(samples, start=2):
        if record.get("record") != "sample" or isinstance(record.get("index"), bool) or not isinstance(record.get("index"), int):
            raise ResultsFileError(f"{path}, line {number}: not a sample record with an integer index")
    return header, samples, good


def read_results(path: str | os.PathLike) -> tuple[dict | None, list[dict]]:
    """``(header, samples)`` of a results file as it stands (a torn last line
    is ignored; header None for an empty file), samples in file order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"cannot read results file {path}: {exc.strerror or exc}") from None
    header, samples, _ = _parse(path, data)
    return header, samples


def _describe(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12] + "…"
    return json.dumps(value) if isinstance(value, (dict, list)) else repr(value)


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in CHECKED:
        if key == "settings":
            a, b = old.get(key) or {}, new.get(key) or {}
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    out.append(f"{name} {_describe(a.get(name))} in the file, {_describe(b.get(name))} now")
        elif old.get(key) != new.get(key):
            out.append(f"{_NAMES[key]} {_describe(old.get(key))} in the file, {_describe(new.get(key))} now")
    return out


class ResultsWriter:
    """Appends sample records to a results file, resuming it when it exists.

    ``done`` maps the row numbers already in the file to their records.
    Use as a context manager (or call :meth:`close`)."""

    def __init__(self, path: str | os.PathLike, header: dict):
        self.path = Path(path)
        self.done: dict[int, dict] = {}
        self.resumed = False
        self.truncated = False
        if self.path.is_dir():
            raise ResultsFileError(f"cannot write results to {self.path}: it is a folder")
        try:
            self._fh: IO[bytes] = open(self.path, "a+b")
        except OSError as exc:
            raise ResultsFileError(f"cannot write results to {self.path}: {exc.strerror or exc}") from None
        try:
            self._lock()
            self._open(header)
        except BaseException:
            self._fh.close()
            raise

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ResultsFileError(f"{self.path} is being written by another job (it is locked); "
                                   "wait for it to finish or use another output file") from None

    def _open(self, header: dict) -> None:
        self._fh.seek(0)
        data = self._fh.read()
        old, samples, good = _parse(self.path, data)
        if old is None and data and not data.startswith(_HEADER_START):
            raise ResultsFileError(f"{self.path} exists and is not a results file; refusing to overwrite it: "
                                   "use another output file")
        if old is None:  # new, empty, or only a torn header: start afresh
            self._truncate(0)
            self._append(_json_line(header))
            return
        differ = _differences(old, header)
        if differ:
            raise ResultsFileError(f"{self.path} holds results of a different job ({'; '.join(differ)}); "
                                   "refusing to resume into it: use another output file, or delete this one")
        if good < len(data):
            self._truncate(good)
            self.truncated = True
        first, stop = header["start"], header["start"] + header["rows"]
        for record in samples:
            index = record["index"]
            if not first <= index < stop:
                raise ResultsFileError(f"{self.path}: a record for row {index}, outside the rows of this job "
                                       f"({first}..{stop - 1})")
            self.done.setdefault(index, record)
        self.resumed = True

    def _truncate(self, size: int) -> None:
        self._fh.truncate(size)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _append(self, line: bytes) -> None:
        self._fh.seek(0, os.SEEK_END)
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write(self, record: dict) -> None:
        """Append one sample record (flushed and synced before returning)."""
        index = record["index"]
        if index in self.done:
            return  # never two records for one row (a task that a lost worker had finished, run again)
        try:
            self._append(_json_line(record))
        except OSError as exc:
            raise ResultsFileError(f"cannot write results to {self.path}: {exc.strerror or exc}") from None
        self.done[index] = record

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
