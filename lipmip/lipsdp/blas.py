"""BLAS on one thread in this process, for LipSDP's many small dense products."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread while inside (when threadpoolctl is installed). The
    barrier solver and the certificate run thousands of products of a few
    hundred rows, where OpenBLAS's threads gain little alone and, on a busy
    machine, spin: the ACAS Xu global LMI took 587 s with them and 7 s
    without, on two shared cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limits = threadpool_limits(limits=1, user_api="blas")
    try:
        yield
    finally:
        limits.restore_original_limits()
