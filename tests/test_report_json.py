"""The JSON report: the model that scored it and the summary, beside the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from commands import facescan
from images import awkward_pile


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    return awkward_pile(tmp_path)


def test_json_report_has_model_and_summary(tmp_path: Path, pile: Path, red_model: Path) -> None:
    facescan(pile, "--model", red_model, "--out", tmp_path / "r.json", "--threshold", "0.9")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["model"]["provider"] == "CPUExecutionProvider"
    assert doc["model"]["threshold"] == 0.9
    summary = doc["summary"]
    assert summary["files"] == len(doc["results"])
    assert summary["errors"] == sum(r["status"] == "error" for r in doc["results"])
    assert summary["flagged"] == sum(r["label"] == "ai" for r in doc["results"])
    assert summary["interrupted"] is False
