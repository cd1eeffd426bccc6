"""Certification on Dask: the same records with 2 workers as in-process (every decision, method
and class; floats to 1e-9 relative), and no sample lost or duplicated when a worker is killed
mid-job (its tasks run again elsewhere)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest

import lipmip
from lipmip.cli import main
from lipmip.examples import DIGITS_MODEL, DIGITS_TEST
from lipmip.robustness import ClusterError, certify, read_results

distributed = pytest.importorskip("distributed")

EPS = 0.03  # on the digits network some rows need the branch and bound at this radius, others fail by attack
ROWS = 24


@pytest.fixture(scope="module")
def digits():
    X, y = lipmip.examples.digits_test_data()
    return lipmip.examples.digits_network(), X, y


@pytest.fixture(scope="module")
def reference(digits):
    net, X, y = digits
    records = certify(net, X, y, EPS, time_limit=None, limit=ROWS)
    methods = {r["method"] for r in records}
    assert "interval" in methods and len(methods) >= 3  # rows decided in different ways
    return without_seconds(records)


def without_seconds(records):
    return {r["index"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


def assert_same_records(got: dict, expected: dict) -> None:
    """The same rows and decisions; floats equal up to the last few bits (a worker process may
    round a witness quotient one way and this process the other, 1e-14 apart)."""
    assert sorted(got) == sorted(expected)
    for index, record in got.items():
        reference = expected[index]
        assert list(record) == list(reference)
        for key, value in record.items():
            if isinstance(value, float) and isinstance(reference[key], float):
                assert math.isclose(value, reference[key], rel_tol=1e-9, abs_tol=1e-300), (index, key)
            else:
                assert value == reference[key], (index, key)


def test_two_workers_give_the_records_of_one(digits, reference, tmp_path):
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    records = certify(net, X, y, EPS, time_limit=None, limit=ROWS, workers=2, out=out)
    assert [r["index"] for r in records] == list(range(ROWS))
    assert_same_records(without_seconds(records), reference)
    _, lines = read_results(out)
    assert sorted(r["index"] for r in lines) == list(range(ROWS))


def test_cli_with_two_workers(digits, reference, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    code = main(["certify", str(DIGITS_MODEL), str(DIGITS_TEST), "--eps", str(EPS), "--time-limit", "none",
                 "--limit", "8", "--workers", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("certified ")
    _, lines = read_results(out)
    assert_same_records(without_seconds(lines), {i: reference[i] for i in range(8)})


def test_killing_a_worker_loses_no_sample(digits, reference, tmp_path):
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        errors = []

        def job():
            try:
                certify(net, X, y, EPS, time_limit=None, limit=ROWS, scheduler=cluster.scheduler_address, out=out)
            except BaseException as exc:  # reported below
                errors.append(exc)

        worker = threading.Thread(target=job)
        worker.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.is_alive():
            if out.exists() and out.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.005)
        assert worker.is_alive(), "the job ended before a worker could be killed"
        victim = next(iter(cluster.workers.values()))
        killed = victim.process.pid
        os.kill(killed, signal.SIGKILL)
        worker.join(300)
        assert not worker.is_alive() and not errors, errors
        assert victim.process is None or victim.process.pid != killed  # the nanny saw it die
    _, lines = read_results(out)
    assert sorted(r["index"] for r in lines) == list(range(ROWS))  # none lost, none twice
    assert_same_records(without_seconds(lines), reference)


def test_unreachable_scheduler_is_a_cluster_error(digits, monkeypatch):
    from lipmip.robustness import batch

    monkeypatch.setattr(batch, "_CONNECT_TIMEOUT", "1s")
    net, X, y = digits
    with pytest.raises(ClusterError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        certify(net, X, y, EPS, limit=2, scheduler="tcp://127.0.0.1:9")
