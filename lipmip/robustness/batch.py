"""Running the samples of a job: in this process, or as Dask tasks.

``workers=1`` (and no scheduler) runs the samples one after the other here,
without Dask. ``workers=N >= 2`` starts a :class:`distributed.LocalCluster`
of N single-threaded worker processes on this machine (BLAS single-threaded
too); ``scheduler=ADDR`` sends the same tasks to an existing Dask cluster.
One task is one sample (the network is scattered to the workers once), with
its own solver time limit. Results come back to this process in completion
order (``as_completed``) and go to ``on_record`` here, so only one process
writes the results file. When a worker dies, Dask runs its tasks again on
another one; a task that kills workers again and again
(``distributed.scheduler.allowed-failures``) becomes an error record.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from lipmip.dependencies import optional_import
from lipmip.errors import ClusterError
from lipmip.network import Network
from lipmip.robustness.radius import SAMPLE_FIELDS, CertifySettings, certify_sample

__all__ = ["run_samples", "check_workers", "RETRIES"]

RETRIES = 2  # a task that raised (not a lost worker: Dask reschedules those by itself) is tried this many more times
_ONE_THREAD = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
_CONNECT_TIMEOUT = "10s"


def check_workers(workers: Any, scheduler: Any) -> int:
    """``workers`` as an int >= 1, or :class:`ClusterError`."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ClusterError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ClusterError(f"scheduler must be an address such as tcp://host:8786, got {scheduler!r}")
    if scheduler is not None and workers != 1:
        raise ClusterError("give a number of workers (a local cluster) or a scheduler address (an existing cluster), "
                           "not both")
    return int(workers)


def run_samples(net: Network, X: np.ndarray, y: np.ndarray | None, indices: Sequence[int], settings: CertifySettings,
                on_record: Callable[[dict], None], *, workers: int = 1, scheduler: str | None = None,
                progress: bool | None = None) -> None:
    """Certify rows ``indices`` of ``X`` (labels ``y`` or None) and pass each
    finished record to ``on_record`` in this process, in completion order.
    ``progress``: a bar with ETA on stderr (None: when stderr is a terminal)."""
    workers = check_workers(workers, scheduler)
    indices = [int(i) for i in indices]
    counts = {"done": 0, "certified": 0}
    with _bar(len(indices), progress) as bar:
        def finished(record: dict) -> None:
            on_record(record)
            counts["done"] += 1
            counts["certified"] += bool(record.get("certified"))
            bar.set_postfix_str(f"certified {counts['certified']}/{counts['done']}", refresh=False)
            bar.update(1)

        if workers == 1 and scheduler is None:
            for i in indices:
                finished(certify_sample(net, X[i], None if y is None else int(y[i]), settings, i))
        elif indices:
            _run_dask(net, X, y, indices, settings, finished, workers=workers, scheduler=scheduler)


@contextlib.contextmanager
def _bar(total: int, enabled: bool | None) -> Iterator[Any]:
    if enabled is None:
        enabled = _is_terminal(sys.stderr)
    bar = tqdm(total=total, desc="certify", unit="sample", file=sys.stderr, disable=not enabled, dynamic_ncols=True,
               leave=False)
    try:
        yield bar
    finally:
        bar.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[Any]:
    distributed = optional_import("distributed", "running samples on Dask (workers >= 2 or a scheduler address)")
    dask = optional_import("dask", "running samples on Dask (workers >= 2 or a scheduler address)")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=_CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    environ = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in _ONE_THREAD.items()}
    with dask.config.set(environ):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _run_dask(net: Network, X: np.ndarray, y: np.ndarray | None, indices: list[int], settings: CertifySettings,
              finished: Callable[[dict], None], *, workers: int, scheduler: str | None) -> None:
    distributed = optional_import("distributed", "running samples on Dask")
    job = uuid.uuid4().hex[:12]
    with _client(workers, scheduler) as client:
        shared = client.scatter(net, broadcast=True, hash=False)
        futures = [client.submit(certify_sample, shared, X[i], None if y is None else int(y[i]), settings, i,
                                 key=f"lipmip-certify-{job}-{i}", pure=False, retries=RETRIES) for i in indices]
        index_of = {future.key: i for future, i in zip(futures, indices)}
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                if future.status == "error" and isinstance(future.exception(), distributed.KilledWorker):
                    record = _lost_record(index_of[future.key], y, future.exception())
                else:
                    record = future.result()
                future.release()
                finished(record)
        finally:
            client.cancel(futures)


def _lost_record(index: int, y: np.ndarray | None, exc: BaseException) -> dict:
    record: dict[str, Any] = {name: None for name in SAMPLE_FIELDS}
    record.update(record="sample", index=index, label=None if y is None else int(y[index]), certified=False,
                  error=f"KilledWorker: the workers running this sample died repeatedly ({' '.join(str(exc).split())})")
    return record
