"""Shared fixtures: the team's real networks in ../shared/networks, when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_networks_dir() -> Path | None:
    """``$LIPMIP_SHARED_NETWORKS`` or ``<repo>/../shared/networks``, if it exists."""
    env = os.environ.get("LIPMIP_SHARED_NETWORKS")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "networks")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_networks() -> Path:
    """The folder of real benchmark networks; skips the test when it is absent
    (as on a user's machine: those files are not part of lipmip)."""
    d = shared_networks_dir()
    if d is None:
        pytest.skip("../shared/networks is absent (real benchmark networks are not shipped with lipmip)")
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def no_gurobi(monkeypatch: pytest.MonkeyPatch):
    """``import gurobipy`` fails, whatever is installed (and the cached
    licence probe is cleared before and after)."""
    from lipmip.solvers import gurobi as gurobi_module

    gurobi_module._licence_probe.cache_clear()
    monkeypatch.setitem(sys.modules, "gurobipy", None)
    yield
    gurobi_module._licence_probe.cache_clear()
