"""The error hierarchy of lipmip.

Every problem a user can cause (a bad file, a bad shape, a bad region, a
missing solver or extra) raises a subclass of :class:`LipmipError` whose
message names the problem. The CLI turns these into one line on stderr and a
non-zero exit; anything else reaching the user is a bug in lipmip.
"""

from __future__ import annotations

__all__ = [
    "LipmipError",
    "ModelFormatError",
    "UnsupportedOperatorError",
    "ShapeError",
    "NonFiniteError",
    "InvalidRegionError",
    "InvalidQueryError",
    "UnknownActivationError",
    "MissingDependencyError",
    "SolverUnavailableError",
    "RegionLimitError",
    "AmbiguousRegionsError",
    "DataError",
    "ResultsFileError",
    "ReportOutputError",
    "ClusterError",
]


class LipmipError(Exception):
    """Base class of every error lipmip raises on purpose."""


class ModelFormatError(LipmipError):
    """A model file or object cannot be read: unreadable path, truncated or
    corrupt file, missing arrays, unknown file type."""


class UnsupportedOperatorError(ModelFormatError):
    """A model contains an operator lipmip cannot represent exactly
    (the message names the operator and the node)."""


class ShapeError(LipmipError):
    """Array shapes do not fit together (layers that do not chain, an input of
    the wrong dimension, an empty layer list)."""


class NonFiniteError(LipmipError):
    """An array that must be finite holds NaN or infinity."""


class InvalidRegionError(LipmipError):
    """An input region is malformed: inverted or empty box, radius <= 0,
    unknown norm, or a dimension that does not match the network."""


class InvalidQueryError(LipmipError):
    """A Lipschitz query is malformed: unknown norm, wrong length of the output
    functional, unsupported norm pair."""


class UnknownActivationError(LipmipError):
    """An activation name that lipmip does not know."""


class MissingDependencyError(LipmipError):
    """An optional dependency is needed and not installed (the message names
    the pip extra that provides it)."""


class SolverUnavailableError(LipmipError):
    """A requested solver is not installed, not licensed, or refuses the model
    (e.g. the size-limited Gurobi licence)."""


class RegionLimitError(LipmipError):
    """An exhaustive method (activation-region enumeration) passed its limit
    on the number of regions or on time before finishing."""


class AmbiguousRegionsError(LipmipError):
    """Some activation regions could be neither certified full-dimensional nor
    ruled out (thinner than the enumeration's tolerance), so an exact count
    cannot be given."""


class DataError(LipmipError):
    """A data set that cannot be certified: a ragged or non-numeric CSV row,
    labels that are not class numbers of the network, points whose dimension
    is not the network's input dimension, an empty row selection."""


class ResultsFileError(LipmipError):
    """A results file of ``lipmip certify`` that cannot be written, resumed
    or read: an unwritable or missing path, a file written for another
    model, data set or settings, no header line, an unknown format version,
    a record that breaks the schema (the message names the file, the line
    and the field), a file another job is writing."""


class ReportOutputError(LipmipError):
    """A report cannot be written: a folder that does not exist, a path that
    is a folder, no permission, an unknown output format."""


class ClusterError(LipmipError):
    """Samples cannot be run on Dask: a bad worker count, a scheduler address
    that does not answer."""
