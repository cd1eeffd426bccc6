"""Errors of the robustness report (both are :class:`~lipmip.errors.LipmipError`
subclasses, so the CLI prints them as one line and exits with status 1)."""

from __future__ import annotations

from lipmip.errors import LipmipError

__all__ = ["ResultsFileError", "ReportOutputError"]


class ResultsFileError(LipmipError):
    """A results file cannot be read: missing, not UTF-8 JSON Lines, no header
    line, an unknown format version, or a record whose fields break the
    schema (the message names the file, the line and the field)."""


class ReportOutputError(LipmipError):
    """A report cannot be written: a folder that does not exist, a path that is
    a folder, no permission, an unknown output format."""
