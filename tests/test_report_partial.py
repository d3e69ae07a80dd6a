"""A partial CSV, JSONL or JUnit report says so in the file itself (scanner.reports.partial),
and a complete one is written as it always was."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from scanner.console import Tally
from scanner.reports import open_report
from scanner.results import ScanResult

MODEL = {"model": "m.onnx", "provider": "cpu", "threshold": 0.5, "labels": ["real", "ai"]}
RESULTS = [
    ScanResult("a.png", "ok", "ai", 0.9, width=8, height=8, format="PNG", sha256="0" * 64),
    ScanResult("b.jpg", "error", error="empty file (0 bytes)"),
]


def report(path: Path, state: str) -> str:
    """The report of a scan of RESULTS that ended in `state`."""
    tally = Tally("ai", keep_flagged=False)
    writer = open_report(path, None, MODEL)
    for result in RESULTS:
        writer.write(result)
        tally.add(result)
    tally.finish(state)
    writer.close(tally.summary(MODEL))
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
@pytest.mark.parametrize("state", ["interrupted", "terminated", "failed"])
def test_a_partial_report_is_the_complete_one_and_one_last_row(
    tmp_path: Path, ext: str, state: str
) -> None:
    complete = report(tmp_path / f"complete.{ext}", "complete")
    partial = report(tmp_path / f"partial.{ext}", state)
    assert "incomplete" not in complete
    assert partial.startswith(complete)
    (line,) = partial[len(complete) :].splitlines()
    if ext == "csv":
        (row,) = csv.DictReader([complete.splitlines()[0], line])
        empty: Any = ""
    else:
        row, empty = json.loads(line), None
    assert (row["path"], row["status"], row["score"]) == (empty, "incomplete", empty)
    how = "failed" if state == "failed" else f"was {state}"
    assert row["error"] == (
        f"the scan {how} after 2 files: this report is partial, the files not reached are missing"
    )


def test_a_partial_junit_report_ends_with_an_error_test_case(tmp_path: Path) -> None:
    complete = ET.fromstring(report(tmp_path / "complete.xml", "complete"))
    partial = ET.fromstring(report(tmp_path / "partial.xml", "terminated"))
    assert [case.get("name") for case in complete.iter("testcase")] == ["a.png", "b.jpg"]
    *cases, last = partial.iter("testcase")
    assert [case.get("name") for case in cases] == ["a.png", "b.jpg"]
    assert last.get("name") == "scan terminated" and last.get("file") is None
    (error,) = last
    assert (error.tag, error.get("type")) == ("error", "incomplete")
    assert error.get("message", "").startswith("the scan was terminated after 2 files")
    for suite in (partial, *partial.iter("testsuite")):  # counted, as CI systems count
        assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("3", "2", "1")
    for suite in (complete, *complete.iter("testsuite")):
        assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("2", "1", "1")
