"""A one-line status for long solves, on a terminal only.

:class:`SolveProgress` is a :data:`~lipmip.solvers.base.Progress` callback
(``seconds, incumbent, bound``) that keeps one line on stderr up to date
(tqdm draws it): elapsed time, open nodes (branch and bound), incumbent,
bound and gap. When the stream is
not a terminal it draws nothing, so logs and pipes stay clean.
"""

from __future__ import annotations

import math
import os
import sys
from typing import IO, Any

from tqdm import tqdm

__all__ = ["SolveProgress"]


class SolveProgress:
    """``progress(seconds, incumbent, bound)`` updates the line; ``close()``
    (or leaving a ``with`` block) removes it. ``enabled=None`` means "when
    ``stream`` is a terminal"."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self._own: IO[str] | None = None
        if stream is None:
            stream = sys.stderr
            if enabled is not False and _is_terminal(stream):
                # a duplicate of the terminal: solvers that redirect descriptor 2 while they
                # run (lipmip.solvers.scip) do not hide the line
                self._own = stream = os.fdopen(os.dup(stream.fileno()), "w", buffering=1)
        if enabled is None:
            enabled = _is_terminal(stream)
        self.label = label
        self._bar = tqdm(total=None, file=stream, bar_format="{desc}", leave=False, disable=not enabled,
                         dynamic_ncols=True)

    def __call__(self, seconds: float, incumbent: float | None, bound: float | None, *,
                 open_nodes: int | None = None) -> None:
        self._bar.set_description_str(self.describe(seconds, incumbent, bound, open_nodes=open_nodes))

    def describe(self, seconds: float, incumbent: float | None, bound: float | None, *,
                 open_nodes: int | None = None) -> str:
        """The status text, e.g. ``bab 12.3 s  open 41  incumbent 313.46  bound 320.1  gap 2.1%``
        (``open`` when the caller counts open nodes: the branch and bound)."""
        parts = [f"{self.label} {seconds:6.1f} s"]
        if open_nodes is not None:
            parts.append(f"open {open_nodes}")
        parts += [f"incumbent {_number(incumbent)}", f"bound {_number(bound)}"]
        if incumbent is not None and bound is not None and math.isfinite(bound) and bound > 0:
            parts.append(f"gap {max(0.0, (bound - incumbent) / bound):.2%}")
        return "  ".join(parts)

    def close(self) -> None:
        self._bar.close()
        if self._own is not None:
            self._own.close()
            self._own = None

    def __enter__(self) -> "SolveProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.8g}"
