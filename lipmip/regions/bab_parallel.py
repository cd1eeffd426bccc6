"""The region branch and bound on several processes (``bab_lipschitz(workers=N)``).

The search starts in the calling process, as with one worker, until
:data:`NODES_PER_WORKER` ``× N`` nodes are open (a search that finishes
sooner simply ends there). The open nodes are then dealt, largest bound
first, round-robin into :data:`CHUNKS_PER_WORKER` ``× N`` chunks, and ``N`` worker processes
(:func:`lipmip.processes.worker_pool`: spawned, BLAS single-threaded) take the chunks
one at a time and run the same search below them. Each worker builds its own
search state once, from the same network, region, query and forward bounds.

What the workers share: the incumbent value (a verified witness's, so any
worker may prune by it) and, under a node limit, the count of nodes split.
Every part of the tree ends up in exactly one worker's outcome (finished,
pruned, or still open at a limit), so the merged outcome's
``upper`` (largest open bound, leaf upper value, pruned bound) covers every
activation region, and its ``lower`` is the best witness any worker
verified: the guarantees of :mod:`lipmip.regions.bab` hold unchanged. When
the search finishes, its value is the exact one whatever ``N`` is; only the
time, the counters and which of several equally good witnesses is kept can
differ.

Programs that call this from a script must guard their entry point with
``if __name__ == "__main__":``, as for any use of ``multiprocessing`` with
``spawn`` (the CLI does).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from lipmip.domains import Region
from lipmip.network import Network
from lipmip.processes import SPAWN, worker_pool
from lipmip.query import Query
from lipmip.regions.bab import Outcome, Progress, _BranchAndBound, _Open, _OpenNodes, report_progress
from lipmip.result import Witness

__all__ = ["parallel_search", "NODES_PER_WORKER", "CHUNKS_PER_WORKER"]

NODES_PER_WORKER = 8   # open nodes per worker before the tree is handed out
# chunks per worker: one, so that each worker searches best-first over a share of the best nodes and a time
# limit leaves no chunk unstarted with its split-time bound (with 4, ℓ∞ 0.01 on a random 100^4 net ended at
# 668 above against 631 on one process); more chunks balance the load better on searches that finish
CHUNKS_PER_WORKER = 1
_POLL = 0.1            # seconds between looks at the workers (progress)

_STATE: dict[str, Any] = {}  # per worker process: its search


def parallel_search(
    search: _BranchAndBound,
    seed: Witness | None,
    *,
    workers: int,
    options: dict,
    start: float,
    time_limit: float | None,
    node_limit: int | None,
    progress: Progress | None,
    stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Run ``search`` (a fresh :class:`~lipmip.regions.bab._BranchAndBound`
    with the constructor ``options``) from ``seed`` on ``workers`` processes;
    the merged :class:`~lipmip.regions.bab.Outcome` of every part."""
    shared_incumbent = SPAWN.Value("d", 0.0 if seed is None else float(seed.value))
    shared_nodes = SPAWN.Value("q", 0)
    search.shared_incumbent, search.shared_nodes = shared_incumbent, shared_nodes
    search.search_begin(seed, start=start, time_limit=time_limit, node_limit=node_limit, progress=progress, stop=stop)
    search.run(until_open=NODES_PER_WORKER * workers)
    if not search.open or search.stopped is not None:
        return search.outcome()
    chunks = _deal(search.take_open(), CHUNKS_PER_WORKER * workers)
    outcome = search.outcome()
    outcome.count.chunks = len(chunks)
    deadline = None if time_limit is None else time.time() + (start + time_limit - time.perf_counter())
    init = (search.net, search.region, search.query, search.bounds, options, shared_incumbent, shared_nodes)
    with worker_pool(workers, initializer=_worker_start, initargs=init) as pool:
        pending = {i: pool.apply_async(_worker_run, (chunk, outcome.witness, deadline, node_limit))
                   for i, chunk in enumerate(chunks)}
        while pending:
            if stop is not None and stop():
                pool.terminate()  # the parts still running stay open: their chunks' bounds count
                outcome.stopped = "stopped"
                outcome.open_bound = max([outcome.open_bound] + [max(item.bound for item in chunks[i]) for i in pending])
                outcome.open_nodes += sum(len(chunks[i]) for i in pending)
                break
            for i in [i for i, job in pending.items() if job.ready()]:
                outcome = outcome.merge(pending.pop(i).get())
            if progress is not None:
                open_bound = max((max(item.bound for item in chunks[i]) for i in pending), default=-math.inf)
                report_progress(progress, time.perf_counter() - start,
                                outcome.incumbent if outcome.witness is not None else None, max(outcome.upper, open_bound),
                                outcome.open_nodes + sum(len(chunks[i]) for i in pending))
            if pending:
                next(iter(pending.values())).wait(_POLL)
    return outcome


def _deal(items: list[_Open], count: int) -> list[list[_Open]]:
    """``items`` (largest bound first) dealt round-robin into at most
    ``count`` non-empty chunks, so each chunk gets some of the best nodes."""
    count = max(1, min(count, len(items)))
    return [items[i::count] for i in range(count)]


def _worker_start(net: Network, region: Region, query: Query, forward: Any, options: dict,
                  shared_incumbent: Any, shared_nodes: Any) -> None:
    search = _BranchAndBound(net, region, query, forward=forward, **options)
    search.shared_incumbent, search.shared_nodes = shared_incumbent, shared_nodes
    _STATE["search"] = search
    _STATE["max_queue"] = options["max_queue"]


def _worker_run(chunk: list[_Open], witness: Witness | None, deadline: float | None,
                node_limit: int | None) -> Outcome:
    """Search below the nodes of ``chunk`` (``deadline``: ``time.time()``)."""
    search = _STATE["search"]
    search.reset(_OpenNodes(_STATE["max_queue"]))
    if witness is not None:
        search._improve(witness)
    now = time.perf_counter()
    left = None if deadline is None else max(0.0, deadline - time.time())
    search.set_limits(start=now, time_limit=left, node_limit=node_limit, progress=None)
    for item in chunk:
        search._queue_or_prune(item)
    search.run()
    return search.outcome()
