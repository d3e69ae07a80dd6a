"""The Parquet report: a folder of row files and a summary, the JSONL report's rows as one
table (needs pyarrow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from commands import facescan
from images import awkward_pile


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    return awkward_pile(tmp_path)


def test_parquet_report_holds_the_rows_in_walk_order(
    tmp_path: Path, pile: Path, red_model: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet reports need pyarrow")
    args = (pile, "--model", red_model, "--workers", "1", "--exit-zero")
    assert facescan(*args, "--out", tmp_path / "r.jsonl").returncode == 0
    assert facescan(*args, "--out", tmp_path / "r.parquet").returncode == 0
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()  # the folder, as one table
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert table == [json.loads(line) for line in lines]
    assert (tmp_path / "r.parquet" / "_summary.json").is_file()
    again = facescan(*args, "--out", tmp_path / "r.parquet")  # never mixed with an old report
    assert again.returncode == 2 and "new or empty folder" in again.stderr
