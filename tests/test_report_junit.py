"""`--format junit`: one test case per file, read back with a real XML parser."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from commands import facescan
from conftest import save_image
from images import hostile_pile

from scanner.reports.base import unescape_path

KIND_OF_CHILD = {"failure": "flagged", "error": "error", "skipped": "pending"}


def cases(report: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    """The <testsuites> root and the test cases by the path they name (escaping undone)."""
    root = ET.parse(report).getroot()
    found = {}
    for case in root.iter("testcase"):
        path = unescape_path(case.get("name", ""))
        assert path not in found, f"{path!r} twice"
        assert case.get("file") == case.get("name")
        found[path] = case
    return root, found


def kind(case: ET.Element) -> str:
    children = [child.tag for child in case if child.tag != "system-out"]
    assert len(children) <= 1
    return KIND_OF_CHILD[children[0]] if children else "pass"


def test_every_file_is_one_case_whatever_its_name(tmp_path: Path, red_model: Path) -> None:
    expected = hostile_pile(tmp_path / "pile")
    out = tmp_path / "report.xml"
    done = facescan(tmp_path / "pile", "--model", red_model, "--out", out)
    assert done.returncode == 1, done.stderr
    root, found = cases(out)
    assert {p: kind(c) for p, c in found.items()} == {
        p: ("pass" if k == "real" else k) for p, k in expected.items()
    }
    suite = root.find("testsuite")
    assert root.tag == "testsuites" and suite is not None
    for element in (root, suite):
        assert element.get("tests") == str(len(expected))
        assert element.get("failures") == str(list(expected.values()).count("flagged"))
        assert element.get("errors") == str(list(expected.values()).count("error"))
        assert element.get("skipped") == "0"
        assert float(element.get("time", "-1")) >= 0
    for path, case in found.items():
        if expected[path] == "flagged":
            failure = case.find("failure")
            assert failure is not None and "score 1.000 >= threshold 0.500" in failure.get(
                "message", ""
            )
        if expected[path] == "error":
            error = case.find("error")
            assert error is not None and "not a supported image" in error.get("message", "")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["state"] == "complete" and properties["threshold"] == "0.5"


def test_baseline_decisions_show_as_skipped_and_passed(tmp_path: Path, red_model: Path) -> None:
    for name in ("approved.png", "pending.png", "new.png"):
        save_image(tmp_path / "pile" / name, (255, 0, len(name)))
    baseline = tmp_path / "b.json"
    facescan("baseline", "create", baseline, tmp_path / "pile" / "approved.png",
             tmp_path / "pile" / "pending.png", "--model", red_model)  # fmt: skip
    doc = json.loads(baseline.read_text())
    for entry in doc["entries"].values():
        if entry["paths"][0].endswith("approved.png"):
            entry["decision"] = "approved"
    baseline.write_text(json.dumps(doc))
    out = tmp_path / "junit.report"  # any name, with --format
    args = ["--model", red_model, "--baseline", baseline, "--out", out, "--format", "junit"]
    assert facescan(tmp_path / "pile", *args).returncode == 1  # new.png is new
    root, found = cases(out)
    by_name = {Path(p).name: c for p, c in found.items()}
    assert {n: kind(c) for n, c in by_name.items()} == {
        "approved.png": "pass",
        "pending.png": "pending",
        "new.png": "flagged",
    }
    assert "approved in the baseline" in (by_name["approved.png"].findtext("system-out") or "")
    assert root.get("skipped") == "1" and root.get("failures") == "1"
