"""The CSV report: the same rows as the JSON reports, formulas neutralised, odd names whole."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from commands import facescan, read_report
from conftest import build_red_model, save_image
from images import ODD_NAMES, awkward_pile


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    return awkward_pile(tmp_path)


def test_the_three_formats_hold_the_same_rows(tmp_path: Path, pile: Path, red_model: Path) -> None:
    reports = {}
    for ext in ("csv", "json", "jsonl"):
        facescan(pile, "--model", red_model, "--out", tmp_path / f"r.{ext}", "-q")
        reports[ext] = read_report(tmp_path / f"r.{ext}")
    assert reports["csv"] == reports["json"] == reports["jsonl"]


def test_csv_neutralises_formulas_and_round_trips_odd_names(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    for name in ODD_NAMES:
        save_image(folder / name, (0, 0, 200))
    model = build_red_model(tmp_path / "m.onnx")
    done = facescan("--model", model, "--out", tmp_path / "r.csv", "--", *ODD_NAMES, cwd=folder)
    assert done.returncode == 0, done.stderr  # blue images: nothing flagged
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        cells = [row["path"] for row in csv.DictReader(f)]
    assert sorted(cells) == sorted("'" + n if n[0] in "=+-@" else n for n in ODD_NAMES)
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells)
