"""Robustness reports (lipmip.reporting, `lipmip report`): numbers counted by
hand from a fixture results file, a self-contained HTML file that parses and
renders in headless Chromium, a Markdown file with the same numbers, and bad
input as LipmipError subclasses."""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lipmip.cli import main
from lipmip.errors import LipmipError, MissingDependencyError
from lipmip.reporting import (
    ReportOutputError,
    ResultsFileError,
    load_results,
    render_report,
    report,
    results_from_records,
    summarize,
)

HEADER = {
    "record": "header", "format": 1, "lipmip_version": "0.1.0", "created": "2026-12-05T05:00:00+00:00",
    "command": "lipmip certify mnist_relu_3_50.onnx mnist_test.csv --scale 1/255 --eps 0.01 --out r.jsonl",
    "model": "nets/mnist_relu_3_50.onnx", "model_sha256": "0123456789abcdef" * 4,
    "network": {"name": "mnist_relu_3_50", "widths": [784, 50, 50, 10], "relus": 110, "parameters": 42310,
                "output_activation": "relu"},
    "data": "data/mnist_test.csv", "data_sha256": "fedcba9876543210" * 4, "rows": 40, "scale": 1 / 255,
    "eps": 0.01, "ball": "inf", "method": "auto", "time_limit": 60.0, "seed": 0,
}

# index label prediction certified radius radius_limit adversarial lower upper method stable unstable seconds
# ("E": an errored sample; "-": null). Counted by hand, with eps = 0.01:
#   finished 30 of 40 (10 missing), 1 errored (10), misclassified 3, 11, 21 -> correct 26;
#   certified 0 1 4 5 | 6 8 | 12 13 15 16 | 18 19 22 | 24 25 26 28 29 -> 18;
#   adversarial within eps among the correct: 2 7 9 20 23 -> 5, so the upper limit is 21.
ROWS = """
0  0 0 T 0.021  0.05   0.08   120  131  interval 0.95  5  0.30
1  0 0 T 0.015  0.04   -      140  150  interval 0.93  7  0.25
2  0 0 F 0.006  0.012  0.009  300  520  bab      0.70  30 4.10
3  0 3 F 0      -      -      -    -    -        0.60  40 0.05
4  0 0 T 0.012  -      -      90   95   bab      0.97  3  1.2
5  0 0 T 0.030  0.09   0.12   60   61   interval 0.99  1  0.2
6  1 1 T 0.011  0.03   -      200  230  mip      0.91  9  12.5
7  1 1 F 0.004  0.009  0.007  400  800  bab      0.62  38 30.0
8  1 1 T 0.018  0.05   0.2    110  118  interval 0.96  4  0.3
9  1 1 F 0      0.002  0.004  700  1500 bab      0.55  45 60.2
10 1 E
11 1 2 F 0      -      -      -    -    -        0.58  42 0.04
12 2 2 T 0.025  0.07   -      75   80   interval 0.98  2  0.22
13 2 2 T 0.010  0.02   -      150  170  bab      0.90  10 2.5
14 2 2 F 0.008  0.011  0.015  250  300  bab      0.80  20 3.3
15 2 2 T 0.014  0.04   -      130  140  interval 0.94  6  0.27
16 2 2 T 0.016  0.05   -      100  100  bab      0.95  5  0.9
17 2 2 F 0.009  0.01   -      180  260  mip      0.85  15 20.0
18 3 3 T 0.013  0.03   0.05   140  150  interval 0.92  8  0.31
19 3 3 T 0.019  0.05   -      100  105  interval 0.96  4  0.26
20 3 3 F 0.002  0.004  0.003  900  1800 bab      0.50  50 5.5
21 3 1 F 0      -      -      -    -    -        0.52  48 0.05
22 3 3 T 0.011  0.02   -      210  225  bab      0.91  9  1.4
23 3 3 F 0      0.001  0.0015 2000 5000 bab      0.45  55 8.0
24 4 4 T 0.022  0.06   -      85   90   interval 0.97  3  0.24
25 4 4 T 0.017  0.05   -      95   99   interval 0.96  4  0.23
26 4 4 T 0.012  0.03   -      160  175  bab      0.92  8  1.1
27 4 4 F 0.007  0.012  0.02   260  330  bab      0.78  22 3.9
28 4 4 T 0.028  0.08   -      70   72   interval 0.985 1  0.21
29 4 4 T 0.010  0.03   -      190  200  mip      0.90  10 15.0
"""


def _value(text: str) -> float | None:
    return None if text == "-" else float(text)


def sample_records() -> list[dict]:
    records = []
    for line in ROWS.strip().splitlines():
        f = line.split()
        index, label = int(f[0]), int(f[1])
        if f[2] == "E":
            records.append({"record": "sample", "index": index, "label": label, "prediction": None, "correct": None,
                            "runner_up": None, "margin": None, "certified": False, "certified_radius": None,
                            "radius_limit": None, "adversarial_distance": None, "lower": None, "upper": None,
                            "method": None, "stable_fraction": None, "unstable": None, "seconds": 0.9,
                            "error": "bab: the LP solver failed on node 17"})
            continue
        prediction = int(f[2])
        records.append({
            "record": "sample", "index": index, "label": label, "prediction": prediction, "correct": prediction == label,
            "runner_up": (prediction + 1) % 10, "margin": 2.5, "certified": f[3] == "T", "certified_radius": float(f[4]),
            "radius_limit": _value(f[5]), "adversarial_distance": _value(f[6]), "lower": _value(f[7]),
            "upper": _value(f[8]), "method": None if f[9] == "-" else f[9], "stable_fraction": float(f[10]),
            "unstable": int(f[11]), "seconds": float(f[12]), "error": None,
        })
    return records


def write_results(path: Path, header: dict = HEADER, records: list[dict] | None = None, torn: bool = True) -> Path:
    """A results file as a running job leaves it: samples in completion order
    (shuffled), a last line cut off mid-write."""
    records = sample_records() if records is None else records
    order = list(records)
    random.Random(3).shuffle(order)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(header) + "\n")
        for record in order:
            handle.write(json.dumps(record) + "\n")
        if torn:
            handle.write('{"record": "sample", "index": 30, "label": 0, "predic')
    return path


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results") / "r.jsonl")


@pytest.fixture(scope="module")
def html_report(results_file) -> str:
    out = report(results_file, results_file.with_name("report.html"))
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def md_report(results_file) -> str:
    out = report(results_file, results_file.with_name("report.md"))
    return out.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- reading
def test_load_keeps_every_finished_sample_in_index_order(results_file):
    results = load_results(results_file)
    assert [s.index for s in results.samples] == list(range(30))
    assert results.torn_last_line and results.finished == 30 and results.missing == 10
    assert results.header.eps == 0.01 and results.header.network["relus"] == 110
    assert results.samples[10].errored and not results.samples[10].certified


def test_later_line_for_the_same_index_wins(tmp_path):
    records = sample_records()
    again = dict(records[9], certified_radius=0.003)  # sample 9 finished again (a resumed job)
    path = tmp_path / "r.jsonl"
    write_results(path, records=records, torn=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(HEADER) + "\n" + json.dumps(again) + "\n")
    results = load_results(path)
    assert results.finished == 30 and results.replaced == 1 and not results.torn_last_line
    assert results.samples[9].certified_radius == 0.003
    assert any("superseded" in note for note in summarize(results).notes)


# ---------------------------------------------------------------------------- the numbers, by hand
def test_headline_numbers(results_file):
    h = summarize(load_results(results_file)).headline
    assert (h.finished, h.expected, h.missing, h.errored) == (30, 40, 10, 1)
    assert (h.correct, h.certified, h.attacked) == (26, 18, 5)
    assert h.clean_accuracy == pytest.approx(26 / 30) and h.certified_accuracy == pytest.approx(18 / 30)
    assert h.robust_upper == pytest.approx(21 / 30)


def test_certified_accuracy_versus_radius(results_file):
    rows = {r.factor: (r.certified, r.not_refuted) for r in summarize(load_results(results_file)).radius_table}
    # r = 0: every correct sample; eps/2 = 0.005 adds the uncertified radii 0.006 0.007 0.008 0.009 to the 18;
    # 2 eps = 0.02: radii 0.021 0.022 0.025 0.028 0.030; 4 eps: none
    assert rows[0.0] == (26, 26) and rows[0.5] == (22, 23) and rows[1.0] == (18, 21)
    assert rows[2.0] == (5, 19) and rows[4.0] == (0, 19)
    # eps/4 = 0.0025: adversarial 0.0015 (sample 23) found, and radius 0.004 (sample 7) added
    assert rows[0.25] == (23, 25)


def test_per_class_table(results_file):
    summary = summarize(load_results(results_file))
    table = {c.label: (c.samples, c.errored, c.correct, c.certified, c.median_radius) for c in summary.classes}
    assert summary.class_key == "label"
    # median radius over the correctly classified samples of each class
    assert table["0"] == (6, 0, 5, 4, pytest.approx(0.015))
    assert table["1"] == (6, 1, 4, 2, pytest.approx(0.0075))
    assert table["2"] == (6, 0, 6, 4, pytest.approx(0.012))
    assert table["3"] == (6, 0, 5, 3, pytest.approx(0.011))
    assert table["4"] == (6, 0, 6, 5, pytest.approx(0.0145))


def test_methods_time_and_stability(results_file):
    summary = summarize(load_results(results_file))
    methods = {m.method: (m.samples, m.certified) for m in summary.methods}
    assert methods == {"interval": (11, 11), "bab": (12, 5), "mip": (3, 2), "(no bound computed)": (3, 0)}
    assert [s.index for s in summary.slowest[:3]] == [9, 7, 17]
    assert summary.time_stats["total"] == pytest.approx(173.43)
    st = summary.stability_stats
    assert (st["samples"], st["certified_samples"], st["not_certified_samples"]) == (29, 18, 8)
    assert sum(b.samples for b in summary.stability_bins) == 26
    assert sum(b.certified for b in summary.stability_bins) == 18
    assert summary.lipschitz_stats["samples"] == 26 and summary.lipschitz_stats["exact"] == 1


def test_unlabelled_data_counts_proven_predictions(tmp_path):
    records = [dict(r, label=None, correct=None) for r in sample_records()]
    summary = summarize(results_from_records(HEADER, records))
    h = summary.headline
    # without labels the misclassified samples 3, 11, 21 are ordinary predictions; none of them is certified
    assert not h.labelled and (h.correct, h.certified) == (29, 18)
    assert summary.class_key == "prediction"
    text = render_report(results_from_records(HEADER, records), format="md")
    assert "Certified robust at ε = 0.01 | 18 / 30 (60.0%)" in text



def test_records_with_only_the_required_fields(tmp_path):
    records = [{"index": i, "label": i % 3, "prediction": i % 3 if i % 4 else (i + 1) % 3, "correct": bool(i % 4),
                "certified": i % 2 == 1 and bool(i % 4)} for i in range(12)]
    results = results_from_records({"eps": 0.5}, records)
    h = summarize(results).headline
    assert (h.finished, h.correct, h.certified, h.robust_upper) == (12, 9, 6, None)
    doc = parse_html(render_report(results, format="html"))
    assert dict(doc.tables["headline"][1:])["Certified accuracy at ε = 0.5"] == "6 / 12 (50.0%)"
    assert len([t for t, _ in doc.tags if t == "img"]) == 1  # only the radius curve has data
    assert [r.certified for r in summarize(results).radius_table] == [9, 6, 6, 6, 0, 0]  # radius 0: correct is enough

# ---------------------------------------------------------------------------- HTML
class _Collector(HTMLParser):
    """Tags, attributes and nesting of an HTML document (void elements need no end tag)."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.problems: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_html(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack)
    return parser


def parse_markdown_tables(text: str) -> dict[tuple[str, int], list[list[str]]]:
    """Every pipe table of a Markdown text, as rows of cells (separator rows
    dropped), keyed by (section heading, position in the section)."""
    tables: dict[tuple[str, int], list[list[str]]] = {}
    section, count, current = "", 0, None
    for line in text.splitlines():
        if line.startswith("## "):
            section, count = line[3:], 0
        if line.startswith("| "):
            cells = [c.strip().replace("\\|", "|").replace("\\<", "<") for c in line.strip().strip("|").split(" | ")]
            if current is None:
                current = tables[(section, count)] = []
                count += 1
            if not all(set(c) <= set(":-") for c in cells):
                current.append(cells)
        else:
            current = None
    return tables


def test_html_parses_and_is_self_contained(html_report):
    doc = parse_html(html_report)
    images = [a for tag, a in doc.tags if tag == "img"]
    assert len(images) == 5  # radius curve, histogram, Lipschitz intervals, stability, time
    for a in images:
        assert a["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(a["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for tag, a in doc.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for attr in ("src", "href"):
            if attr in a:
                assert a[attr].startswith("data:") or a[attr].startswith("#"), (tag, a[attr][:60])
    assert "url(" not in html_report and "@import" not in html_report


def test_html_shows_the_run_and_the_numbers(html_report):
    doc = parse_html(html_report)
    headline = dict(doc.tables["headline"][1:])
    assert headline["Clean accuracy"] == "26 / 30 (86.7%)"
    assert headline["Certified accuracy at ε = 0.01"] == "18 / 30 (60.0%)"
    assert headline["Samples finished"] == "30 of 40" and headline["Samples still missing"] == "10"
    run = dict(doc.tables["run"][1:])
    assert "784-50-50-10" in run["Network"] and "110 ReLUs" in run["Network"] and "42,310 parameters" in run["Network"]
    assert "sha256 0123456789ab" in run["Model file"] and run["Time limit per sample"] == "60 s"
    assert HEADER["command"] in html_report
    assert "The last line of the file was cut off" in html_report and "10 of 40 samples have no record yet" in html_report
    assert "bab: the LP solver failed on node 17" in html_report


def test_markdown_holds_the_same_numbers_as_html(html_report, md_report):
    html_tables = parse_html(html_report).tables
    md_tables = parse_markdown_tables(md_report)
    for table_id, place in [("headline", ("Summary", 0)), ("run", ("Run", 0)), ("per-class", ("Per class", 0)),
                            ("radius-table", ("Certified accuracy versus radius", 0)), ("lipschitz", ("Lipschitz bounds", 0)),
                            ("stability", ("Stability", 0)), ("stability-bins", ("Stability", 1)),
                            ("methods", ("Methods that decided", 0)), ("time", ("Time", 0)), ("slowest", ("Time", 1)),
                            ("errors", ("Errors", 0))]:
        assert md_tables[place] == html_tables[table_id], table_id
    assert md_tables[("Per class", 0)][2] == ["1", "6", "1", "4 / 6 (66.7%)", "2 / 6 (33.3%)", "0.0075"]
    assert "data:" not in md_report and HEADER["command"] in md_report


def test_markdown_figures_are_written_beside_it(tmp_path):
    results = write_results(tmp_path / "r.jsonl")
    out = report(results, tmp_path / "report.md", figures_dir=tmp_path / "figs")
    text = out.read_text(encoding="utf-8")
    links = [line[line.index("](") + 2:-1] for line in text.splitlines() if line.startswith("![")]
    assert len(links) == 5 and all(link.startswith("figs/") for link in links)
    for link in links:
        assert (tmp_path / link).read_bytes()[:4] == b"\x89PNG"


def test_a_job_that_has_just_started(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(HEADER) + "\n", encoding="utf-8")
    text = report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    doc = parse_html(text)
    headline = dict(doc.tables["headline"][1:])
    assert headline["Samples finished"] == "0 of 40" and headline["Clean accuracy"] == "0 / 0"
    assert not [t for t, _ in doc.tags if t == "img"] and "No samples to show yet" in text
    assert "| Samples still missing | 40 |" in render_report(path, format="md")


# ---------------------------------------------------------------------------- the command line
def test_cli_writes_html_and_prints_markdown(results_file, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(results_file), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["report", str(results_file), "-o", "-"]) == 0
    assert "| Certified accuracy at ε = 0.01 | 18 / 30 (60.0%) |" in capsys.readouterr().out
    copy = tmp_path / "job.jsonl"
    copy.write_bytes(results_file.read_bytes())
    assert main(["report", str(copy), "--format", "md"]) == 0  # default output: beside the results file
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'job.md'}"
    assert "| Clean accuracy | 26 / 30 (86.7%) |" in (tmp_path / "job.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such file"),
        ("", "is empty"),
        ('{"record": "header", "format": 1, "eps": 0.0', "no complete header"),
        (json.dumps(sample_records()[0]) + "\n", "not a results header"),
        (json.dumps(dict(HEADER, format=2)) + "\n", "unknown results format version 2"),
        (json.dumps(dict(HEADER, eps=-0.1)) + "\n", "'eps'"),
        (json.dumps(HEADER) + "\nnot json\n" + json.dumps(sample_records()[0]) + "\n", "line 2: not valid JSON"),
        (json.dumps(HEADER) + "\n" + json.dumps(dict(sample_records()[0], certified="yes")) + "\n", "'certified'"),
        (json.dumps(HEADER) + "\n" + json.dumps(dict(sample_records()[0], stable_fraction=1.5)) + "\n", "'stable_fraction'"),
        (json.dumps(HEADER) + "\n" + json.dumps(dict(sample_records()[3], certified=True)) + "\n", "misclassified"),
        (json.dumps(HEADER) + "\n" + json.dumps(dict(sample_records()[0], lower=200.0)) + "\n", "lower bound"),
        (json.dumps(HEADER) + "\n" + json.dumps(dict(HEADER, eps=0.02)) + "\n", "different run"),
    ],
)
def test_bad_results_files(tmp_path, capsys, content, message):
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsFileError, match=message):
        load_results(path)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lipmip: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("content,message", [(b"\x08\x07\x12\x04\xff\xfe\x00\x01\n\x89PNG\n", "line 1: not UTF-8"),
                                             (b"\x08\x07\x12\x04\xff\xfe\x00\x01", "line 1: not UTF-8"),
                                             (b"index,label\n0,7", "line 1: not valid JSON")])
def test_other_files_are_not_results_files(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match=message):
        load_results(path)


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "a-folder", "format"])
def test_unwritable_output(results_file, tmp_path, capsys, where):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    out = {"missing-folder": tmp_path / "nope" / "r.html", "under-a-file": tmp_path / "file.txt" / "r.html",
           "a-folder": tmp_path / "folder", "format": tmp_path / "r.pdf"}[where]
    with pytest.raises(ReportOutputError):
        report(results_file, out, format="pdf" if where == "format" else None)
    args = ["report", str(results_file), "-o", str(out)] + (["--figures", str(tmp_path / "f")] if where == "format" else [])
    assert main(args) == 1  # --figures with an HTML report is refused too
    assert capsys.readouterr().err.startswith("lipmip: error: ")
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "f").exists()


@pytest.mark.parametrize("module", ["jinja2", "matplotlib.figure"])
def test_missing_report_dependency_names_the_extra(results_file, tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=r"lipmip\[report\]"):
        report(results_file, tmp_path / "r.html")
    assert issubclass(MissingDependencyError, LipmipError)
    if module != "jinja2":  # a Markdown report without figures needs no matplotlib
        assert "| Clean accuracy | 26 / 30 (86.7%) |" in render_report(results_file, format="md")


def test_text_from_the_file_is_escaped(tmp_path):
    header = dict(HEADER, command="lipmip certify <script>alert(1)</script> a|b", network={"name": "<b>net</b>"})
    records = [dict(sample_records()[10], error="failed: <img src=http://x/y.png> | boom")] + sample_records()[:3]
    path = write_results(tmp_path / "r.jsonl", header=header, records=records, torn=False)
    html = report(path, tmp_path / "r.html").read_text(encoding="utf-8")
    doc = parse_html(html)
    assert not [t for t, _ in doc.tags if t in ("script", "b")]
    assert all(a["src"].startswith("data:") for t, a in doc.tags if t == "img")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    errors = parse_markdown_tables(render_report(path, format="md"))[("Errors", 0)]
    assert errors[1] == ["10", "1", "failed: <img src=http://x/y.png> | boom"]  # one cell: the pipe is escaped


def test_importing_lipmip_needs_no_report_dependencies():
    code = ("import sys, lipmip, lipmip.reporting, lipmip.cli; lipmip.cli.build_parser(); "
            "print(sorted(m for m in ('jinja2', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- headless Chromium
def test_html_renders_in_headless_chromium(html_report, results_file, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    image = optional_png_reader()
    page = results_file.with_name("report.html")
    shot = tmp_path / "shot.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,3000",
               page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    pixels = image.imread(str(shot))
    assert pixels.shape[0] >= 3000 and pixels.shape[1] >= 1200  # (more on a high-density display)
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.05  # text, tables and figures, not a blank page
    assert (grey < 0.5).mean() > 0.01  # a real share of dark pixels (text, lines)
    assert (abs(pixels[..., 1] - pixels[..., 0]) > 0.15).mean() > 0.0005  # the green certified curve is drawn


def optional_png_reader():
    return pytest.importorskip("matplotlib.image")


def test_curves_agree_with_the_per_sample_rule(results_file):
    from lipmip.reporting.summary import certified_at, certified_curve, not_refuted_at, not_refuted_curve

    results = load_results(results_file)
    radii = sorted({0.0, 0.01, 0.05, *(s.certified_radius for s in results.samples if s.certified_radius is not None),
                    *(s.adversarial_distance for s in results.samples if s.adversarial_distance is not None)})
    radii += [r * (1 + 1e-9) for r in radii]
    by_rule = [sum(certified_at(s, r, 0.01, True) for s in results.samples) / 30 for r in radii]
    refuted = [sum(not_refuted_at(s, r, True) for s in results.samples) / 30 for r in radii]
    assert list(certified_curve(results, radii)) == pytest.approx(by_rule)
    assert list(not_refuted_curve(results, radii)) == pytest.approx(refuted)
