"""Read a robustness results file (JSON Lines, written by ``lipmip certify``).

Line 1 is the header (``"record": "header"``, ``"format": 1``); every other
line is one finished sample (``"record": "sample"``), in completion order.
A file may belong to a job that is still running or was interrupted, so any
number of sample lines is accepted, and a last line that is not valid JSON
(a crash mid-write) is ignored. Everything else that breaks the schema raises
:class:`ResultsFileError` naming the file, the line and the field: a report
never shows a number it had to guess.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from lipmip.errors import ResultsFileError

__all__ = ["FORMAT_VERSION", "RunHeader", "SampleRecord", "Results", "load_results", "results_from_records"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunHeader:
    """What was certified: the header line of a results file. Only ``format``
    and ``eps`` are required; a field the writer left out is ``None``."""

    format: int
    eps: float
    ball: str | None = None
    lipmip_version: str | None = None
    created: str | None = None
    command: str | None = None
    model: str | None = None
    model_sha256: str | None = None
    network: Mapping[str, Any] = field(default_factory=dict)
    data: str | None = None
    data_sha256: str | None = None
    rows: int | None = None
    scale: float | None = None
    method: str | None = None
    time_limit: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class SampleRecord:
    """One finished sample (see the results-file schema in ``docs/report.md``).

    A field that was not computed is ``None``; an errored sample has
    ``error`` set, ``certified`` false and the result fields ``None``."""

    index: int
    certified: bool
    label: int | None = None
    prediction: int | None = None
    correct: bool | None = None
    runner_up: int | None = None
    margin: float | None = None
    certified_radius: float | None = None
    radius_limit: float | None = None
    adversarial_distance: float | None = None
    lower: float | None = None
    upper: float | None = None
    method: str | None = None
    stable_fraction: float | None = None
    unstable: int | None = None
    seconds: float | None = None
    error: str | None = None

    @property
    def errored(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Results:
    """A results file as read: its header and one record per sample index
    (sorted by index; when an index occurs twice the later line wins and
    ``replaced`` counts the earlier ones)."""

    header: RunHeader
    samples: tuple[SampleRecord, ...]
    path: Path | None = None
    torn_last_line: bool = False
    replaced: int = 0
    skipped_records: tuple[str, ...] = ()

    @property
    def finished(self) -> int:
        """Samples with a record (errored ones included)."""
        return len(self.samples)

    @property
    def missing(self) -> int | None:
        """Samples of the job without a record yet (``None`` when the header
        does not say how many rows the job has)."""
        if self.header.rows is None:
            return None
        return max(self.header.rows - self.finished, 0)


# ---------------------------------------------------------------------------- field checks
class _Fields:
    """Typed access to one record's fields, with errors that name the place."""

    def __init__(self, record: Mapping[str, Any], where: str):
        self.record = record
        self.where = where

    def fail(self, name: str, expected: str) -> ResultsFileError:
        return ResultsFileError(f"{self.where}: field {name!r} should be {expected}, got {self.record.get(name)!r}")

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(name, "an integer >= 0" if required else "an integer >= 0 or null")
        return value

    def number(self, name: str, *, required: bool = False, low: float = 0.0, high: float = math.inf,
               positive: bool = False) -> float | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and low <= value <= high and (value > 0 or not positive)
        if not ok:
            what = f"a finite number {'> 0' if positive else f'>= {low:g}'}" + (f" and <= {high:g}" if high < math.inf else "")
            raise self.fail(name, what if required else what + " or null")
        return float(value)

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, bool):
            raise self.fail(name, "true or false" if required else "true, false or null")
        return value

    def required(self, value: Any, name: str, expected: str) -> Any:
        """``value`` (just read by a typed accessor), which must not be null."""
        if value is None:
            raise self.fail(name, expected)
        return value

    def text(self, name: str) -> str | None:
        value = self.record.get(name)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. "ball": 2 written as a number
        if not isinstance(value, str):
            raise self.fail(name, "a string or null")
        return value


def _header(record: Mapping[str, Any], where: str) -> RunHeader:
    if record.get("record") != "header":
        raise ResultsFileError(f"{where}: the first line is not a results header (expected \"record\": \"header\", "
                               f"got {record.get('record')!r}); is this a file written by `lipmip certify`?")
    version = record.get("format")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ResultsFileError(f"{where}: unknown results format version {version!r} "
                               f"(this lipmip reads format {FORMAT_VERSION}; a newer lipmip may read it)")
    f = _Fields(record, where)
    network = record.get("network") or {}
    if not isinstance(network, Mapping):
        raise f.fail("network", "an object or null")
    return RunHeader(
        format=FORMAT_VERSION,
        eps=f.required(f.number("eps", required=True, positive=True), "eps", "a finite number > 0"),
        ball=f.text("ball"),
        lipmip_version=f.text("lipmip_version"),
        created=f.text("created"),
        command=f.text("command"),
        model=f.text("model"),
        model_sha256=f.text("model_sha256"),
        network=dict(network),
        data=f.text("data"),
        data_sha256=f.text("data_sha256"),
        rows=f.integer("rows"),
        scale=f.number("scale", low=-math.inf),
        method=f.text("method"),
        time_limit=f.number("time_limit"),
        seed=f.integer("seed"),
    )


def _sample(record: Mapping[str, Any], where: str) -> SampleRecord:
    f = _Fields(record, where)
    sample = SampleRecord(
        index=f.required(f.integer("index", required=True), "index", "an integer >= 0"),
        certified=f.required(f.boolean("certified", required=True), "certified", "true or false"),
        label=f.integer("label"),
        prediction=f.integer("prediction"),
        correct=f.boolean("correct"),
        runner_up=f.integer("runner_up"),
        margin=f.number("margin"),
        certified_radius=f.number("certified_radius"),
        radius_limit=f.number("radius_limit"),
        adversarial_distance=f.number("adversarial_distance"),
        lower=f.number("lower"),
        upper=f.number("upper"),
        method=f.text("method"),
        stable_fraction=f.number("stable_fraction", high=1.0),
        unstable=f.integer("unstable"),
        seconds=f.number("seconds"),
        error=f.text("error"),
    )
    _check_consistent(sample, where)
    return sample


def _check_consistent(s: SampleRecord, where: str) -> None:
    """Contradictions inside one record: each would make a report number wrong."""
    problems = []
    if s.label is not None and s.prediction is not None and s.correct is not None and s.correct != (s.label == s.prediction):
        problems.append(f"'correct' is {str(s.correct).lower()} but label {s.label} and prediction {s.prediction}")
    if s.certified and s.correct is False:
        problems.append("a misclassified sample is marked certified")
    if s.certified and s.errored:
        problems.append("an errored sample is marked certified")
    if s.lower is not None and s.upper is not None and s.lower > s.upper:
        problems.append(f"lower bound {s.lower!r} > upper bound {s.upper!r}")
    if problems:
        raise ResultsFileError(f"{where} (sample {s.index}): {'; '.join(problems)}")


# ---------------------------------------------------------------------------- assembling
def _assemble(header: RunHeader, samples: Iterable[SampleRecord], path: Path | None, torn: bool,
              skipped: Iterable[str]) -> Results:
    by_index: dict[int, SampleRecord] = {}
    seen = 0
    for s in samples:
        by_index[s.index] = s
        seen += 1
    ordered = tuple(by_index[i] for i in sorted(by_index))
    return Results(header=header, samples=ordered, path=path, torn_last_line=torn, replaced=seen - len(ordered),
                   skipped_records=tuple(sorted(set(skipped))))


def _same_run(first: RunHeader, again: RunHeader, where: str) -> None:
    keys = ("eps", "ball", "model_sha256", "data_sha256", "scale")
    differ = [k for k in keys if getattr(first, k) != getattr(again, k)]
    if differ:
        raise ResultsFileError(f"{where}: a second header for a different run ({', '.join(differ)} differ); "
                               "a results file holds one run")


def load_results(path: str | os.PathLike) -> Results:
    """Read the results file at ``path``.

    Accepts a file of a running or interrupted job (any number of sample
    lines; a torn last line is ignored and reported in ``torn_last_line``).
    Raises :class:`ResultsFileError` for a missing or unreadable file, a file
    without a header, an unknown format version, a line that is not JSON
    (other than the last), or a record that breaks the schema."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ResultsFileError(f"results file {path}: no such file") from None
    except IsADirectoryError:
        raise ResultsFileError(f"results file {path}: is a folder, not a file") from None
    except OSError as exc:
        raise ResultsFileError(f"results file {path}: cannot read it ({exc.strerror or exc})") from None
    lines = [(number, raw) for number, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
    if not lines:
        raise ResultsFileError(f"results file {path}: is empty (no header line)")
    records: list[tuple[str, dict]] = []
    torn = False
    for position, (number, raw) in enumerate(lines):
        where = f"{path}, line {number}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if position == len(lines) - 1 and raw.lstrip().startswith(b"{"):
                torn = True  # a crash mid-write: a record begun but never finished
                break
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"not valid JSON ({exc.msg})"
            raise ResultsFileError(f"{where}: {reason}; is this a results file written by `lipmip certify`?") from None
        if not isinstance(record, dict):
            raise ResultsFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
        records.append((where, record))
    if not records:
        raise ResultsFileError(f"results file {path}: has no complete header line (the job may have stopped while writing it)")
    header = _header(records[0][1], records[0][0])
    samples = []
    skipped = []
    for where, record in records[1:]:
        kind = record.get("record")
        if kind == "sample":
            samples.append(_sample(record, where))
        elif kind == "header":
            _same_run(header, _header(record, where), where)
        else:
            skipped.append(str(kind))
    return _assemble(header, samples, path, torn, skipped)


def results_from_records(header: Mapping[str, Any], samples: Iterable[Mapping[str, Any]]) -> Results:
    """Results from records already in memory (the same schema and checks as
    :func:`load_results`; ``"record"`` keys, and the header's ``"format"``,
    may be left out)."""
    head = _header({"record": "header", "format": FORMAT_VERSION, **header}, "header")
    checked = [_sample(s, f"sample record {n}") for n, s in enumerate(samples)]
    return _assemble(head, checked, None, False, ())
