"""`--shard I/N`: N plain jobs split one tree, every file in exactly one shard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from commands import facescan, read_report
from conftest import save_image

from scanner.walk import Shard, walk


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """40 images in nested folders, a hidden one, and a broken link (a walk error)."""
    root = tmp_path / "tree"
    for i in range(40):
        save_image(root / f"d{i % 4}" / f"sub{i % 3}" / f"img{i:02d}.png", (i * 6, 0, 0), size=8)
    save_image(root / ".hidden" / "h.png", (255, 0, 0), size=8)
    (root / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    return root


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_every_item_exactly_once(tree: Path, count: int) -> None:
    full = list(walk([str(tree)], follow_symlinks=True))
    shards = [list(walk([str(tree)], (), True, Shard(i, count))) for i in range(1, count + 1)]
    assert sum(len(s) for s in shards) == len(full) == 42  # pairwise disjoint, nothing lost
    assert sorted(map(repr, (item for s in shards for item in s))) == sorted(map(repr, full))
    for shard in shards:  # each shard keeps walk order
        assert shard == [item for item in full if item in shard]


def test_partition_is_deterministic_and_by_path() -> None:
    paths = [f"photos/{i}.jpg" for i in range(1000)] + ["odd/\udcff.jpg"]  # undecodable byte
    first = [[p for p in paths if Shard(i, 4).owns(p)] for i in (1, 2, 3, 4)]
    again = [[p for p in paths if Shard(i, 4).owns(p)] for i in (1, 2, 3, 4)]
    assert first == again
    assert all(200 <= len(part) <= 300 for part in first)  # roughly even


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "3", "-1/2", ""])
def test_bad_shard_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        Shard.parse(text)


def test_cli_shards_union_is_the_full_report(tmp_path: Path, tree: Path, red_model: Path) -> None:
    args = (tree, "--model", red_model, "--workers", "1", "--follow-symlinks", "--exit-zero")
    assert facescan(*args, "--out", tmp_path / "full.csv").returncode == 0
    full = read_report(tmp_path / "full.csv")
    parts = []
    for i in (1, 2):
        done = facescan(*args, "--shard", f"{i}/2", "--out", tmp_path / f"part{i}.jsonl")
        assert done.returncode == 0, done.stderr
        parts.append(read_report(tmp_path / f"part{i}.jsonl"))
    assert parts[0] and parts[1]
    merged = sorted(parts[0] + parts[1], key=lambda r: r["path"])
    assert merged == sorted(full, key=lambda r: r["path"])


def test_cli_rejects_a_bad_shard(tmp_path: Path, red_model: Path) -> None:
    save_image(tmp_path / "a.png", (0, 0, 0))
    done = facescan(tmp_path / "a.png", "--model", red_model, "--shard", "3/2")
    assert done.returncode == 2
    assert "--shard 3/2" in done.stderr and "Traceback" not in done.stderr
    assert not os.path.exists(tmp_path / "report.csv")
