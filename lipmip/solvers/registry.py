"""Choosing a MIP backend by name: ``"highs"``, ``"scip"``, ``"gurobi"`` or ``"auto"``.

Backends are imported only when asked for, so a missing optional solver
costs nothing until it is named. ``"auto"`` prefers Gurobi when it is
installed, licensed and its licence accepts the model; otherwise HiGHS for a
linear model and SCIP for a quadratic one (HiGHS solves linear models only).
:func:`solve_with_fallback` also solves, and when Gurobi turns the model down
under ``"auto"`` (the size-limited licence of the pip package) it says so in
one line and uses the open-source choice instead.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

from lipmip.dependencies import EXTRAS
from lipmip.errors import SolverUnavailableError
from lipmip.formulate.model import MIPModel
from lipmip.solvers.base import MIPResult, MIPSolver, SolveOptions

__all__ = [
    "SOLVER_NAMES",
    "available_solvers",
    "get_solver",
    "print_to_stderr",
    "solve_with_fallback",
    "solver_class",
]

# backend name -> (module, class); imported on first use
_BACKENDS: dict[str, tuple[str, str]] = {
    "highs": ("lipmip.solvers.highs", "HighsSolver"),
    "scip": ("lipmip.solvers.scip", "ScipSolver"),
    "gurobi": ("lipmip.solvers.gurobi", "GurobiSolver"),
}
# backend name -> the package it drives
_PACKAGES = {"highs": "highspy", "scip": "pyscipopt", "gurobi": "gurobipy"}
SOLVER_NAMES = ("auto", *_BACKENDS)


def print_to_stderr(line: str) -> None:
    """The default ``notify`` of :func:`solve_with_fallback`."""
    print(line, file=sys.stderr)


def _install_hint(name: str) -> str:
    package = _PACKAGES[name]
    extra = EXTRAS.get(package)
    if extra:
        return f"pip install 'lipmip[{extra}]'"
    return f"pip install {package}; it is a dependency of lipmip, so reinstalling lipmip also fixes this"


def solver_class(name: str) -> type[MIPSolver]:
    """The backend class called ``name``, imported now.

    Raises :class:`SolverUnavailableError` for an unknown name, or when the
    backend's module cannot be imported (naming what to install)."""
    if name not in _BACKENDS:
        raise SolverUnavailableError(f"unknown solver {name!r}; choose one of {', '.join(SOLVER_NAMES)}")
    module_name, class_name = _BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            message = f"solver {name!r} is not part of this lipmip installation ({module_name} is missing)"
            raise SolverUnavailableError(message) from None
        raise SolverUnavailableError(f"solver {name!r} is not available: {exc} ({_install_hint(name)})") from None
    return getattr(module, class_name)


def _unavailable_reason(name: str, cls: type[MIPSolver]) -> str | None:
    """Why ``cls`` cannot run here, or None when it can."""
    if cls.available():
        return None
    reason = getattr(cls, "unavailable_reason", None)
    detail = reason() if callable(reason) else None
    hint = _install_hint(name)
    if detail and hint in detail:
        return detail
    return f"{detail or _PACKAGES[name] + ' is not installed or not usable'} ({hint})"


def _usable_class(name: str) -> type[MIPSolver] | None:
    """The backend class when it imports and is available, else None."""
    try:
        cls = solver_class(name)
    except SolverUnavailableError:
        return None
    return cls if _unavailable_reason(name, cls) is None else None


def available_solvers() -> list[str]:
    """Names of the backends that can run here."""
    return [name for name in _BACKENDS if _usable_class(name) is not None]


def _model_kind(model: MIPModel) -> str:
    parts = []
    if model.objective_quadratic is not None:
        parts.append("a quadratic objective")
    if model.quadratic_constraints:
        parts.append("quadratic constraints")
    return " and ".join(parts) or "this kind of model"


def _check_supported(name: str, solver: MIPSolver, model: MIPModel) -> None:
    """Raise when ``solver`` cannot take ``model``: wrong kind, or beyond its licence."""
    if not solver.supports(model):
        capable = [other for other in _BACKENDS if other != name and _supports(other, model)]
        use = " or ".join(repr(c) for c in capable) or "another solver"
        raise SolverUnavailableError(f"solver {name!r} cannot solve a model with {_model_kind(model)}; use {use}")
    check_licence = getattr(solver, "check_licence", None)
    if callable(check_licence):
        check_licence(model)


def _supports(name: str, model: MIPModel) -> bool:
    cls = _usable_class(name)
    return cls is not None and cls().supports(model)


def _open_source_choice(model: MIPModel | None) -> MIPSolver:
    """HiGHS for a linear model (or no model), SCIP otherwise or when HiGHS is unusable."""
    if model is None or model.is_linear:
        highs = _usable_class("highs")
        if highs is not None and (model is None or highs().supports(model)):
            return highs()
    return get_solver("scip", model)


def _gurobi_for(model: MIPModel | None) -> MIPSolver | None:
    """Gurobi when it is usable here and (given a model) its licence takes the model."""
    cls = _usable_class("gurobi")
    if cls is None:
        return None
    solver = cls()
    check_licence = getattr(solver, "check_licence", None)
    if model is not None and callable(check_licence):
        try:
            check_licence(model)
        except SolverUnavailableError:
            return None
    return solver


def _normalised(name: object) -> str:
    """``name`` stripped and lower-cased; anything but a string is refused."""
    if not isinstance(name, str):
        raise SolverUnavailableError(f"solver must be a name, one of {', '.join(SOLVER_NAMES)}; got {name!r}")
    return name.strip().lower()


def get_solver(name: str, model: MIPModel | None = None) -> MIPSolver:
    """The backend ``name`` (``"highs"``, ``"scip"``, ``"gurobi"`` or ``"auto"``),
    checked against ``model`` when one is given.

    Raises :class:`SolverUnavailableError` for an unknown name, a backend that
    is not installed or licensed (naming the pip extra), or a model the
    backend cannot solve (naming the backends that can)."""
    name = _normalised(name)
    if name == "auto":
        return _gurobi_for(model) or _open_source_choice(model)
    cls = solver_class(name)
    reason = _unavailable_reason(name, cls)
    if reason is not None:
        raise SolverUnavailableError(f"solver {name!r} is not available: {reason}")
    solver = cls()
    if model is not None:
        _check_supported(name, solver, model)
    return solver


def solve_with_fallback(
    model: MIPModel,
    name: str = "auto",
    options: SolveOptions | None = None,
    *,
    notify: Callable[[str], None] = print_to_stderr,
) -> MIPResult:
    """Solve ``model`` with the backend ``name``.

    Under ``"auto"``, when Gurobi is usable but refuses the model (its
    size-limited licence), ``notify`` gets one line saying so and which
    backend is used instead, and that backend solves the model. A backend
    named explicitly is never replaced: its refusal is raised."""
    options = options or SolveOptions()
    if _normalised(name) != "auto":
        return get_solver(name, model).solve(model, options)
    gurobi_cls = _usable_class("gurobi")
    if gurobi_cls is not None:
        try:
            return gurobi_cls().solve(model, options)
        except SolverUnavailableError as exc:
            fallback = _open_source_choice(model)
            notify(f"{exc}; using {fallback.name}")
            return fallback.solve(model, options)
    return _open_source_choice(model).solve(model, options)
