"""Certification jobs: ``lipmip.robustness.certify``, the results file, resume, ``lipmip certify``, bad input.

* the API returns one schema record per row, in row order, the same with and without a results file;
* resume: a rerun skips the rows already in the file; after SIGKILL of a running ``lipmip certify``
  (and a torn last line) the rerun completes the file with exactly one record per row, identical
  (but for ``seconds``) to an uninterrupted run;
* the file refuses to resume a job for another model, data set or setting, a file that is not a
  results file, and a file another job holds;
* bad input is one line on stderr and exit status 1 (CLI) or a LipmipError subclass (API).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lipmip
from lipmip.cli import main
from lipmip.errors import LipmipError, MissingDependencyError
from lipmip.examples import DIGITS_MODEL, DIGITS_TEST
from lipmip.robustness import ClusterError, DataError, ResultsFileError, certify, read_results, summary_line
from lipmip.robustness import batch as batch_module
from lipmip.robustness.radius import SAMPLE_FIELDS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    X, y = lipmip.examples.digits_test_data()
    return lipmip.examples.digits_network(), X, y


def without_seconds(records):
    return {r["index"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


def sample_lines(path: Path) -> list[dict]:
    header, samples = read_results(path)
    assert header is not None and header["record"] == "header"
    return samples


# ---------------------------------------------------------------------------- the API
def test_certify_returns_schema_records_in_row_order(digits, tmp_path):
    net, X, y = digits
    records = certify(net, X, y, 0.02, method="interval", start=5, limit=12)
    assert [r["index"] for r in records] == list(range(5, 17))
    for r in records:
        assert list(r) == list(SAMPLE_FIELDS) and r["record"] == "sample" and r["error"] is None
        assert r["label"] == y[r["index"]] and r["correct"] == (r["prediction"] == r["label"])
        assert isinstance(r["certified"], bool) and isinstance(r["certified_radius"], float)
        assert r["certified"] == (r["certified_radius"] >= 0.02)
        assert 0.0 <= r["stable_fraction"] <= 1.0 and isinstance(r["unstable"], int)
        if r["correct"]:
            assert 0.0 <= r["lower"] <= r["upper"] and r["margin"] >= 0 and r["runner_up"] != r["prediction"]
            assert r["certified_radius"] < r["radius_limit"]
    out = tmp_path / "r.jsonl"
    again = certify(net, X, y, 0.02, method="interval", start=5, limit=12, out=out)
    assert without_seconds(again) == without_seconds(records)
    assert without_seconds(sample_lines(out)) == without_seconds(records)


def test_certify_without_labels(digits):
    net, X, _ = digits
    records = certify(net, X[:4], None, 0.02, method="interval")
    assert all(r["label"] is None and r["correct"] is None for r in records)
    assert summary_line(records, 0.02, "inf").startswith("certified ")
    assert "% certified" in summary_line(records, 0.02, "inf")


def test_resume_skips_rows_already_in_the_file(digits, tmp_path, monkeypatch):
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    first = certify(net, X, y, 0.02, method="interval", limit=6, out=out)
    ran = []
    real = batch_module.certify_sample

    def counting(*args, **kwargs):
        ran.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_module, "certify_sample", counting)
    assert without_seconds(certify(net, X, y, 0.02, method="interval", limit=6, out=out)) == without_seconds(first)
    assert ran == []
    # a torn last line (a crash mid-write) is truncated and its row redone
    lines = out.read_bytes().split(b"\n")
    dropped = json.loads(lines[-2])["index"]
    out.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][:40])
    assert without_seconds(certify(net, X, y, 0.02, method="interval", limit=6, out=out)) == without_seconds(first)
    assert ran == [dropped]
    assert sorted(r["index"] for r in sample_lines(out)) == list(range(6))
    assert out.read_bytes().endswith(b"}\n")


def test_results_file_refuses_another_job(digits, tmp_path):
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    certify(net, X, y, 0.02, method="interval", limit=3, out=out)
    before = out.read_bytes()
    other = lipmip.Network.from_params([(W * 1.0001, b) for W, b in net.params])
    cases = [
        (dict(net=other), "model"),
        (dict(eps=0.03), "eps 0.02 in the file, 0.03 now"),
        (dict(ball=2), "ball"),
        (dict(method="bab"), "method"),
        (dict(limit=4), "number of rows 3 in the file, 4 now"),
        (dict(X=X * 0.5), "data"),
        (dict(seed=1), "seed"),
    ]
    for change, message in cases:
        args = dict(net=net, X=X, y=y, eps=0.02, method="interval", limit=3, out=out) | change
        with pytest.raises(ResultsFileError, match=message) as info:
            certify(args.pop("net"), args.pop("X"), args.pop("y"), args.pop("eps"), **args)
        assert "refusing to resume" in str(info.value)
    assert out.read_bytes() == before  # untouched


def test_results_file_errors(digits, tmp_path):
    net, X, y = digits
    text = tmp_path / "notes.txt"
    text.write_text("my notes, not results")
    with pytest.raises(ResultsFileError, match="not a results file"):
        certify(net, X, y, 0.02, method="interval", limit=2, out=text)
    assert text.read_text() == "my notes, not results"
    with pytest.raises(ResultsFileError, match="cannot write results"):
        certify(net, X, y, 0.02, method="interval", limit=2, out=tmp_path / "missing" / "r.jsonl")
    with pytest.raises(ResultsFileError, match="is a folder"):
        certify(net, X, y, 0.02, method="interval", limit=2, out=tmp_path)
    corrupt = tmp_path / "corrupt.jsonl"
    certify(net, X, y, 0.02, method="interval", limit=3, out=corrupt)
    lines = corrupt.read_text().splitlines()
    corrupt.write_text("\n".join([lines[0], "garbage", *lines[2:]]) + "\n")
    with pytest.raises(ResultsFileError, match="line 2: not a JSON record"):
        certify(net, X, y, 0.02, method="interval", limit=3, out=corrupt)


def test_a_locked_results_file_is_refused(digits, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    with open(out, "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ResultsFileError, match="being written by another job"):
            certify(net, X, y, 0.02, method="interval", limit=2, out=out)


def test_bad_input_raises_lipmip_errors(digits):
    net, X, y = digits
    bad_labels = y.copy()
    bad_labels[3] = 10
    with pytest.raises(DataError, match="label 10 in row 3 is out of range: the network has 10 outputs"):
        certify(net, X, bad_labels, 0.02)
    with pytest.raises(DataError, match="63 features but the network takes 64 inputs"):
        certify(net, X[:, :63], y, 0.02)
    with pytest.raises(DataError, match="labels must be integers"):
        certify(net, X, y + 0.5, 0.02)
    with pytest.raises(DataError, match="NaN or inf"):
        certify(net, np.where(np.arange(64) == 5, np.nan, X), y, 0.02)
    with pytest.raises(DataError, match="past the end"):
        certify(net, X, y, 0.02, start=360)
    with pytest.raises(ClusterError, match="workers must be an integer >= 1"):
        certify(net, X, y, 0.02, workers=0)
    with pytest.raises(ClusterError, match="not both"):
        certify(net, X, y, 0.02, workers=2, scheduler="tcp://127.0.0.1:9")
    single = lipmip.Network.from_params([(np.ones((1, 64)), np.zeros(1))], ["identity"])
    with pytest.raises(LipmipError, match="at least 2 outputs"):
        certify(single, X, None, 0.02)


def test_as_frame_needs_pandas(digits, monkeypatch):
    net, X, y = digits
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match="pandas"):
        certify(net, X, y, 0.02, method="interval", limit=1, as_frame=True)


def test_summary_line():
    records = [{"certified": True, "label": 1, "correct": True, "seconds": 1.0, "error": None},
               {"certified": False, "label": 2, "correct": True, "seconds": 2.0, "error": None},
               {"certified": False, "label": 2, "correct": False, "seconds": 3.0, "error": "X: boom"}]
    assert summary_line(records, 0.01, "inf") == ("certified 1/3 at eps=0.01 (linf): certified accuracy 33.3%, "
                                                  "clean accuracy 66.7%, 2 s/sample, 1 error")


def test_report_reader_accepts_the_file(digits, tmp_path):
    load = pytest.importorskip("lipmip.reporting.load")
    net, X, y = digits
    out = tmp_path / "r.jsonl"
    records = certify(net, X, y, 0.02, method="interval", limit=5, out=out)
    results = load.load_results(out)
    assert results.finished == 5 and results.missing == 0
    assert [s.certified for s in results.samples] == [r["certified"] for r in records]


# ---------------------------------------------------------------------------- the command line
def run_cli(capsys, *args):
    code = main(["certify", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_file_and_prints_the_summary(tmp_path, capsys, digits):
    out = tmp_path / "r.jsonl"
    code, stdout, stderr = run_cli(capsys, DIGITS_MODEL, DIGITS_TEST, "--eps", "0.02", "--limit", "8",
                                   "--method", "interval", "--out", out)
    assert code == 0 and stderr == ""
    records = sorted(sample_lines(out), key=lambda r: r["index"])
    n_cert = sum(r["certified"] for r in records)
    n_correct = sum(r["correct"] for r in records)
    assert stdout.startswith(f"certified {n_cert}/8 at eps=0.02 (linf): certified accuracy {100 * n_cert / 8:.1f}%, "
                             f"clean accuracy {100 * n_correct / 8:.1f}%, ")
    header, _ = read_results(out)
    assert header["rows"] == 8 and header["start"] == 0 and header["eps"] == 0.02 and header["ball"] == "inf"
    assert header["command"].startswith("lipmip certify ") and "--limit 8" in header["command"]
    assert header["network"]["widths"] == [64, 32, 32, 10] and len(header["model_sha256"]) == 64
    net, X, y = digits
    assert without_seconds(records) == without_seconds(certify(net, X, y, 0.02, method="interval", limit=8))
    # the same command again: nothing to do, the same summary counts
    code, again, _ = run_cli(capsys, DIGITS_MODEL, DIGITS_TEST, "--eps", "0.02", "--limit", "8",
                             "--method", "interval", "--out", out)
    assert code == 0 and again.split(", ")[:2] == stdout.split(", ")[:2]
    assert len(sample_lines(out)) == 8


@pytest.fixture
def data_files(tmp_path, digits):
    net, X, y = digits
    files = {}
    np.savez(tmp_path / "bad_labels.npz", X=X[:5], y=np.array([1, 2, 3, 12, 4]))
    np.save(tmp_path / "narrow.npy", X[:5, :60])
    rows = [",".join(str(v) for v in [int(y[i])] + list(X[i])) for i in range(4)]
    rows[2] = rows[2].rsplit(",", 1)[0]
    (tmp_path / "ragged.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "header.csv").write_text("label," + ",".join(f"p{i}" for i in range(64)) + "\n" + rows[0] + "\n")
    files.update({name: tmp_path / name for name in ("bad_labels.npz", "narrow.npy", "ragged.csv", "header.csv")})
    other = lipmip.Network.from_params([(W * 1.0001, b) for W, b in net.params])
    lipmip.save(other, tmp_path / "other.npz")
    files["other.npz"] = tmp_path / "other.npz"
    return files


@pytest.mark.parametrize("case, message", [
    ("labels", "label 12 in row 3 is out of range: the network has 10 outputs"),
    ("features", "60 features but the network takes 64 inputs"),
    ("ragged", "ragged.csv, line 3: 64 values, but line 1 has 65"),
    ("header", "header.csv, line 1: 'label' is not a number (a header line? remove it)"),
    ("unwritable", "cannot write results to"),
    ("other model", "holds results of a different job (model"),
    ("eps", "eps 0.02 in the file, 0.05 now"),
    ("scale", "scale 1.0 in the file, 0.5 now"),
    ("rows", "first row 0 in the file, 1 now"),
    ("workers", "workers must be an integer >= 1"),
])
def test_cli_bad_input_is_one_line_and_exit_1(case, message, data_files, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    base = [DIGITS_MODEL, DIGITS_TEST, "--eps", "0.02", "--limit", "3", "--method", "interval", "--out", out]
    if case in ("other model", "eps", "scale", "rows"):
        assert run_cli(capsys, *base)[0] == 0
    args = {
        "labels": [DIGITS_MODEL, data_files["bad_labels.npz"], "--eps", "0.02", "--out", out],
        "features": [DIGITS_MODEL, data_files["narrow.npy"], "--eps", "0.02", "--out", out],
        "ragged": [DIGITS_MODEL, data_files["ragged.csv"], "--eps", "0.02", "--out", out],
        "header": [DIGITS_MODEL, data_files["header.csv"], "--eps", "0.02", "--out", out],
        "unwritable": [*base[:-1], tmp_path / "no" / "such" / "dir" / "r.jsonl"],
        "other model": [data_files["other.npz"], *base[1:]],
        "eps": [*base[:3], "0.05", *base[4:]],
        "scale": [*base, "--scale", "1/2"],
        "rows": [*base, "--start", "1"],
        "workers": [*base, "--workers", "0"],
    }[case]
    code, stdout, stderr = run_cli(capsys, *args)
    assert code == 1 and stdout == ""
    assert stderr.startswith("lipmip: error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr, stderr


# ---------------------------------------------------------------------------- resume after SIGKILL
def test_resume_after_sigkill_gives_the_uninterrupted_records(tmp_path, digits):
    net, X, y = digits
    rows = 120
    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "lipmip.cli", "certify", str(DIGITS_MODEL), str(DIGITS_TEST), "--eps", "0.02",
               "--method", "interval", "--limit", str(rows), "--out", str(out)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and job.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 20:  # the header and >= 19 samples
                break
            time.sleep(0.005)
        assert job.poll() is None, "the job ended before it could be killed"
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait(30)
        job.stderr.close()
    assert job.returncode == -signal.SIGKILL
    done = sample_lines(out)
    assert 19 <= len(done) < rows
    # as if the kill had come mid-write: a torn line for a row not finished yet
    missing = min(set(range(rows)) - {r["index"] for r in done})
    with open(out, "ab") as fh:
        fh.write(b'{"record": "sample", "index": %d, "label": 3, "predict' % missing)
    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("certified ")
    final = sample_lines(out)
    assert sorted(r["index"] for r in final) == list(range(rows))  # exactly one record per row
    reference = certify(net, X, y, 0.02, method="interval", limit=rows)
    assert without_seconds(final) == without_seconds(reference)
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in final)


def test_no_progress_bar_off_a_terminal(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    code, stdout, stderr = run_cli(capsys, DIGITS_MODEL, DIGITS_TEST, "--eps", "0.02", "--limit", "2",
                                   "--method", "interval", "--out", out)
    assert code == 0 and stderr == "" and stdout.count("\n") == 1
    assert math.isclose(json.loads(out.read_text().splitlines()[0])["scale"], 1.0)
