"""Optional dependencies, imported only where needed, with errors that say
which pip extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from lipmip.errors import MissingDependencyError

__all__ = ["optional_import", "EXTRAS"]

# module name -> the extra of lipmip that installs it
EXTRAS = {
    "onnx": "onnx",
    "onnxruntime": "test",
    "torch": "torch",
    "flax": "jax-models",
    "equinox": "jax-models",
    "gurobipy": "gurobi",
    "dask": "dask",
    "distributed": "dask",
    "jinja2": "report",
    "matplotlib": "report",
}


def optional_import(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the
    extra that provides it and what it was needed for."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        hint = f"pip install 'lipmip[{extra}]'" if extra else f"pip install {top}"
        raise MissingDependencyError(f"{purpose} needs the package {top!r}, which is not installed ({hint}): {exc}") from None
