"""Run files are written whole or not at all (no TensorFlow needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from trainer import files


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_text("old")

    def half_then_fail(temp: Path) -> None:
        assert temp.parent == tmp_path and temp.suffix == ".json"  # same folder, same extension
        temp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_write_replaces_the_file_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    files.write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & stat.S_IROTH  # mkstemp alone would leave it owner-only
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
