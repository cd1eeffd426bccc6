"""The lipmip command line: real runs, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lipmip
from lipmip.cli import main
from lipmip.examples import DIGITS_MODEL, DIGITS_TEST


def test_info_prints_layers(capsys):
    assert main(["info", str(DIGITS_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "3 affine layers" in out and "3,466 parameters" in out and "identity" in out


def test_info_json(capsys):
    assert main(["info", str(DIGITS_MODEL), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["widths"] == [64, 32, 32, 10] and info["parameters"] == 3466


def test_bound_json_is_consistent(capsys):
    args = ["bound", str(DIGITS_MODEL), "--center", str(DIGITS_TEST), "--index", "3", "--radius", "0.02",
            "--margin", "top2", "--json", "--witness", "--samples", "300"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["lower"] <= out["upper"]
    a, b = np.array(out["witness"]["a"]), np.array(out["witness"]["b"])
    net = lipmip.load(DIGITS_MODEL)
    c = np.array(out["query"]["c"])
    quotient = abs(c @ (net(a) - net(b))) / np.abs(a - b).max()
    assert quotient >= out["lower"] * (1 - 1e-12)  # float64 re-evaluation; the bound itself is exact-rational
    center = np.array(out["region"]["center"])
    assert np.abs(a - center).max() <= 0.02 and np.abs(b - center).max() <= 0.02


@pytest.mark.parametrize(
    "args,message",
    [
        (["bound", "missing.onnx", "--box", "0", "1"], "no such file"),
        (["bound", str(DIGITS_MODEL), "--box", "1", "0"], "lo > hi"),
        (["bound", str(DIGITS_MODEL), "--center", "0.5", "--radius", "0"], "radius"),
        (["bound", str(DIGITS_MODEL), "--center", "0.5", "--radius", "-1"], "radius"),
        (["bound", str(DIGITS_MODEL), "--center", "0.5,0.5", "--radius", "0.1"], "dimension 2"),
        (["bound", str(DIGITS_MODEL), "--center", "0.5"], "needs --radius"),
        (["bound", str(DIGITS_MODEL)], "input region"),
        (["bound", str(DIGITS_MODEL), "--box", "0", "1", "--norm", "3"], "norm"),
        (["bound", str(DIGITS_MODEL), "--box", "0", "1", "--margin", "3,3"], "two different outputs"),
        (["bound", str(DIGITS_MODEL), "--box", "0", "1", "--output", "10"], "out of range"),
        (["bound", str(DIGITS_MODEL), "--center", str(DIGITS_TEST), "--index", "999", "--radius", "0.1"], "out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(capsys, args, message):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("lipmip: error: ") and message in err
    assert err.count("\n") == 1


def test_console_script_runs_as_a_process(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"this is not onnx")
    ok = subprocess.run([sys.executable, "-m", "lipmip.cli", "info", str(DIGITS_MODEL)], capture_output=True, text=True)
    assert ok.returncode == 0 and "digits_mlp.npz" in ok.stdout
    junk = str(tmp_path / "junk.onnx")
    bad = subprocess.run([sys.executable, "-m", "lipmip.cli", "info", junk], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and bad.stderr.startswith("lipmip: error:")


SHARED_MODELS = [
    "acasxu/ACASXU_run2a_1_1_batch_2000.onnx",
    "acasxu/ACASXU_run2a_1_2_batch_2000.onnx",
    "acasxu/ACASXU_run2a_2_1_batch_2000.onnx",
    "acasxu/ACASXU_run2a_3_3_batch_2000.onnx",
    "acasxu/ACASXU_run2a_5_9_batch_2000.onnx",
    "mnist/mnist-net_256x2.onnx",
    "mnist/mnist-net_256x4.onnx",
    "mnist/mnist-net_256x6.onnx.gz",
    "mnist/mnist_relu_3_50.onnx",
    "mnist/mnist_relu_3_100.onnx",
    "mnist/mnist_relu_6_100.onnx",
    "mnist/mnist_relu_9_100.onnx",
    "mnist/mnist_relu_9_200.onnx",
]


@pytest.mark.parametrize("relative", SHARED_MODELS)
def test_info_on_every_shared_network(shared_networks, capsys, relative):
    assert main(["info", str(shared_networks / relative), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output_dim"] in (5, 10)
    assert info["input_dim"] in (5, 784)
    # ERAN networks keep their output ReLU
    assert (info["activations"][-1] == "relu") == ("mnist_relu_" in relative)


def test_info_with_region_prints_stability(capsys):
    args = ["info", str(DIGITS_MODEL), "--center", str(DIGITS_TEST), "--radius", "0.05", "--clip", "0", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stability over the box" in out and "ReLUs unstable" in out
    assert main(args + ["--json", "--bounds", "interval"]) == 0
    info = json.loads(capsys.readouterr().out)
    layers = info["bounds"]["layers"]
    assert [row["neurons"] for row in layers] == [32, 32, 10]
    assert info["bounds"]["unstable"] == sum(row["unstable"] or 0 for row in layers)


def test_clip_needs_an_inf_ball(capsys):
    args = ["bound", str(DIGITS_MODEL), "--center", "0.5", "--radius", "0.1", "--ball", "2", "--clip", "0", "1"]
    assert main(args) == 1
    assert "only an l-inf ball" in capsys.readouterr().err


# ---------------------------------------------------------------------------- what to bound
CENTER = ["--center", str(DIGITS_TEST), "--index", "0", "--radius", "0.01"]


def _bound_json(capsys, *extra: str) -> dict:
    assert main(["bound", str(DIGITS_MODEL), *CENTER, "--method", "interval", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_logit_versus_is_the_margin(capsys):
    c = _bound_json(capsys, "--logit", "7", "--versus", "9")["query"]["c"]
    assert c == [0, 0, 0, 0, 0, 0, 0, 1, 0, -1]
    assert _bound_json(capsys, "--logit", "4")["query"]["c"] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


def test_c_from_a_comma_list_and_from_files(capsys, tmp_path):
    vec = np.linspace(-1, 1, 10)
    np.save(tmp_path / "c.npy", vec)
    np.savetxt(tmp_path / "c.txt", vec)
    listed = _bound_json(capsys, "--c=" + ",".join(repr(float(v)) for v in vec))  # "=": the list starts with "-"
    for path in (tmp_path / "c.npy", tmp_path / "c.txt"):
        loaded = _bound_json(capsys, "--c", str(path))
        assert loaded["query"]["c"] == pytest.approx(vec.tolist(), rel=1e-15)
        assert loaded["upper"] == pytest.approx(listed["upper"], rel=1e-12)


def test_output_norm_bounds_the_operator_norm(capsys):
    out = _bound_json(capsys, "--input-norm", "1", "--output-norm", "1")
    assert out["query"]["c"] is None and out["query"]["input_norm"] == out["query"]["output_norm"] == "1"


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--c", "1,2,3"], "3 entries but the network has 10 outputs"),
        (["--c", "1,x"], "expected numbers"),
        (["--c", "missing.npy"], "cannot read"),
        (["--c", "1,0,0,0,0,0,0,0,0,0", "--logit", "1"], "not --c and --logit"),
        (["--versus", "2"], "needs --logit"),
        (["--logit", "1", "--output-norm", "inf"], "whole Jacobian"),
        (["--input-norm", "1", "--output-norm", "2"], "not supported"),
    ],
)
def test_bad_query_arguments(capsys, extra, message):
    assert main(["bound", str(DIGITS_MODEL), *CENTER, "--method", "interval", *extra]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_progress_line_draws_on_a_terminal_only():
    import io

    from lipmip.progress import SolveProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        with SolveProgress("mip", stream=stream) as progress:
            progress(1.5, 90.0, 100.0)
    assert pipe.getvalue() == ""
    assert "incumbent 90  bound 100  gap 10.00%" in terminal.getvalue()
    assert SolveProgress("mip", enabled=False).describe(2.0, None, None).endswith("incumbent -  bound -")


def test_json_has_the_documented_keys(capsys):
    args = ["bound", str(DIGITS_MODEL), *CENTER, "--logit", "7", "--versus", "9", "--method", "mip", "--json", "--witness"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"lower", "upper", "status", "method", "solver", "seconds", "witness", "gap"} <= set(out)
    assert out["method"] == "mip" and out["solver"] == "highs+scip" and out["status"] == "optimal"
    assert out["upper"] - out["lower"] <= 1e-6 * out["upper"]


def test_bab_from_the_command_line_is_exact_and_node_limit_brackets(capsys):
    args = ["bound", str(DIGITS_MODEL), "--center", str(DIGITS_TEST), "--index", "0", "--radius", "0.05",
            "--logit", "7", "--versus", "9", "--method", "bab", "--json"]
    assert main(args) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["status"] == "optimal" and exact["lower"] == pytest.approx(313.4630539, rel=1e-9)
    assert main([*args, "--node-limit", "0"]) == 0
    root = json.loads(capsys.readouterr().out)
    assert root["status"] == "node_limit" and root["lower"] <= exact["lower"] <= exact["upper"] <= root["upper"]


def test_workers_from_the_command_line_give_the_same_value(capsys):
    args = ["bound", str(DIGITS_MODEL), "--center", str(DIGITS_TEST), "--index", "3", "--radius", "0.08",
            "--logit", "7", "--versus", "3", "--method", "bab", "--json"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*args, "--workers", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert one["status"] == two["status"] == "optimal"
    assert two["details"]["workers"] == 2 and two["details"]["chunks"] > 0
    assert two["lower"] == pytest.approx(one["lower"], rel=1e-9) and two["upper"] == pytest.approx(one["upper"], rel=1e-9)
    assert one["lower"] == pytest.approx(278.68902134, rel=1e-9)


def test_bad_worker_count_is_a_clear_error(capsys):
    args = ["bound", str(DIGITS_MODEL), *CENTER, "--logit", "7", "--versus", "9", "--method", "auto", "--workers", "0"]
    assert main(args) != 0
    assert "workers must be an integer >= 1" in capsys.readouterr().err
