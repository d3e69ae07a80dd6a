"""`--format sarif`: valid SARIF 2.1.0 (checked against the OASIS schema), one result per
finding, locations that name the file whatever its name."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from commands import facescan, sarif_errors
from conftest import save_image
from images import hostile_pile

pytest.importorskip("jsonschema", reason="jsonschema is not installed ([dev])")

# RFC 3986: a URI reference made of unreserved characters, "/" and percent-encoded bytes
# (jsonschema checks "format": "uri-reference" only when an optional package is installed).
URI = re.compile(r"(file://)?(?:[A-Za-z0-9._~/-]|%[0-9A-F]{2})+")


def validate(report: Path) -> dict:
    document = json.loads(report.read_text(encoding="utf-8"))
    assert sarif_errors(document) == []
    return document


def located(result: dict) -> str:
    """The file a result points at, decoded from its URI."""
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert URI.fullmatch(uri), uri
    return os.fsdecode(unquote_to_bytes(uri.removeprefix("file://")))


def test_one_valid_result_per_finding_whatever_the_name(tmp_path: Path, red_model: Path) -> None:
    expected = hostile_pile(tmp_path / "pile")
    out = tmp_path / "report.sarif"
    done = facescan(tmp_path / "pile", "--model", red_model, "--out", out)
    assert done.returncode == 1, done.stderr
    (run,) = validate(out)["runs"]
    assert run["tool"]["driver"]["name"] == "facescan"
    assert run["invocations"][0]["executionSuccessful"] is True
    findings = {located(r): r for r in run["results"]}
    assert len(findings) == len(run["results"])
    assert set(findings) == {p for p, k in expected.items() if k != "real"}
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for path, result in findings.items():
        assert rules[result["ruleIndex"]] == result["ruleId"]
        if expected[path] == "flagged":
            assert result["ruleId"] == "ai-generated-face" and result["level"] == "error"
            assert "score 1.000 >= threshold 0.500" in result["message"]["text"]
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            assert result["partialFingerprints"] == {"imageSha256/v1": digest}
        else:
            assert result["ruleId"] == "unreadable-image" and result["level"] == "warning"
            assert "not a supported image" in result["message"]["text"]


def test_relative_paths_stay_relative(tmp_path: Path, red_model: Path) -> None:
    save_image(tmp_path / "photos" / "a face.png", (255, 0, 0))
    facescan("./photos", "--model", red_model, "--out", "r.sarif", cwd=tmp_path)
    (result,) = validate(tmp_path / "r.sarif")["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "photos/a%20face.png"  # as GitHub resolves it against the repository root


def test_baseline_decisions_are_suppressions(tmp_path: Path, red_model: Path) -> None:
    for name in ("approved.png", "pending.png", "confirmed.png", "new.png"):
        save_image(tmp_path / "pile" / name, (255, 0, len(name)))
    baseline = tmp_path / "b.json"
    listed = [tmp_path / "pile" / n for n in ("approved.png", "pending.png", "confirmed.png")]
    facescan("baseline", "create", baseline, *listed, "--model", red_model)
    doc = json.loads(baseline.read_text())
    for entry in doc["entries"].values():
        name = Path(entry["paths"][0]).name
        entry["decision"] = {"approved.png": "approved", "confirmed.png": "confirmed-ai"}.get(
            name, entry["decision"]
        )
    baseline.write_text(json.dumps(doc))
    out = tmp_path / "r.sarif"
    facescan(tmp_path / "pile", "--model", red_model, "--baseline", baseline, "--out", out)
    results = {Path(located(r)).name: r for r in validate(out)["runs"][0]["results"]}
    statuses = {n: [s["status"] for s in r.get("suppressions", [])] for n, r in results.items()}
    assert statuses == {
        "approved.png": ["accepted"],
        "pending.png": ["underReview"],
        "confirmed.png": [],
        "new.png": [],
    }
    assert results["confirmed.png"]["properties"]["baseline"] == "confirmed-ai"
    assert "confirmed AI in the baseline" in results["confirmed.png"]["message"]["text"]
