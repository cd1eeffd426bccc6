"""lipmip: certified lower and upper bounds on the Lipschitz constant of ReLU networks."""

from lipmip.api import lipschitz
from lipmip.domains import Ball, Box, Region
from lipmip.errors import (
    AmbiguousRegionsError,
    ClusterError,
    DataError,
    InvalidQueryError,
    InvalidRegionError,
    LipmipError,
    MissingDependencyError,
    ModelFormatError,
    NonFiniteError,
    RegionLimitError,
    ReportOutputError,
    ResultsFileError,
    ShapeError,
    SolverUnavailableError,
    UnknownActivationError,
    UnsupportedOperatorError,
)
from lipmip.io import load, save
from lipmip.network import Layer, Network
from lipmip.query import Query
from lipmip.reporting import report
from lipmip.result import LipschitzBound, Witness
from lipmip.robustness import certify

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRegionsError",
    "Ball",
    "Box",
    "ClusterError",
    "DataError",
    "InvalidQueryError",
    "InvalidRegionError",
    "Layer",
    "LipmipError",
    "LipschitzBound",
    "MissingDependencyError",
    "ModelFormatError",
    "Network",
    "NonFiniteError",
    "Query",
    "Region",
    "RegionLimitError",
    "ReportOutputError",
    "ResultsFileError",
    "ShapeError",
    "SolverUnavailableError",
    "UnknownActivationError",
    "UnsupportedOperatorError",
    "Witness",
    "certify",
    "examples",
    "lipschitz",
    "load",
    "report",
    "save",
]

from lipmip import examples  # noqa: E402  (the bundled network and data; loads nothing until called)
