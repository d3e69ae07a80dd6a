"""`--files-from`: exactly the listed paths, one row each, read as a stream."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from commands import facescan, git, read_report
from conftest import save_image

from scanner.command import bar_total
from scanner.errors import UsageError
from scanner.filelist import listed, split
from scanner.source import Source
from scanner.walk import WalkError, WalkFile


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A checkout: images, a non-image, a folder of images, paths relative to it."""
    save_image(tmp_path / "photos" / "red.png", (255, 0, 0))
    save_image(tmp_path / "photos" / "blue.jpg", (0, 0, 255))
    save_image(tmp_path / "photos" / "deep" / "other.png", (0, 0, 255))
    (tmp_path / "photos" / "bad.webp").write_text("not an image")
    (tmp_path / "src.py").write_text("print('not an image')\n")
    return tmp_path


def test_listed_paths_are_scanned_in_list_order_one_row_each(work: Path, red_model: Path) -> None:
    listing = [
        "photos/blue.jpg",
        "src.py",  # not an image name: skipped without a word
        "photos/gone.png",  # deleted since the list was made: an error row
        "photos",  # a folder (find lists them): skipped, its files are not walked
        "deleted.txt",  # missing, but not an image name: skipped
        "photos/red.png",
        "photos/bad.webp",
    ]
    (work / "changed.txt").write_text("\r\n".join(listing) + "\r\n")  # CRLF lines work too
    out = work / "r.csv"
    done = facescan("--files-from", "changed.txt", "--model", red_model, "--out", out, cwd=work)
    rows = read_report(out)
    assert [r["path"] for r in rows] == [
        "photos/blue.jpg",
        "photos/gone.png",
        "photos/red.png",
        "photos/bad.webp",
    ]
    by_path = {r["path"]: r for r in rows}
    assert by_path["photos/gone.png"]["error"] == "no such file or folder"
    assert by_path["photos/red.png"]["label"] == "ai"
    assert by_path["photos/bad.webp"]["status"] == "error"
    assert done.returncode == 1, done.stderr
    assert "src.py" not in done.stderr and "deleted.txt" not in done.stderr


def test_nul_separated_list_from_stdin_carries_any_name(tmp_path: Path, red_model: Path) -> None:
    names = ["new\nline.png", "tab\there.png", "-dash.png", "caf\u00e9.png"]
    raw_name = b"raw\xff\xfebytes.png"  # not UTF-8: only a NUL-separated list can carry it
    for name in names:
        save_image(tmp_path / name, (255, 0, 0))
    save_image(Path(os.fsdecode(bytes(tmp_path) + b"/" + raw_name)), (255, 0, 0))
    listing = b"\0".join([*(os.fsencode(n) for n in names), raw_name]) + b"\0"
    done = facescan_with_input(
        listing, "--files-from", "-", "-0", "--model", red_model, "--out", "r.jsonl", cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr.decode(errors="replace")
    rows = read_report(tmp_path / "r.jsonl")
    assert [r["path"] for r in rows] == [*names, "raw\\xff\\xfebytes.png"]
    assert all(r["status"] == "ok" and r["label"] == "ai" for r in rows)


def facescan_with_input(stdin: bytes, *args: object, cwd: Path) -> CompletedProcess[bytes]:
    command = [sys.executable, "-m", "scanner", *map(str, args)]
    return subprocess.run(command, input=stdin, capture_output=True, cwd=cwd, timeout=120)


def test_exclude_matches_the_listed_path_and_the_name(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / "list").write_text("photos/red.png\nphotos/deep/other.png\nphotos/blue.jpg\n")
    monkeypatch.chdir(work)
    items = listed("list", null=False, exclude=["photos/deep/*", "blue.*"])
    assert [i.path for i in items] == ["photos/red.png"]


def test_a_broken_link_is_an_error_row_and_a_link_to_a_file_is_followed(tmp_path: Path) -> None:
    save_image(tmp_path / "real.png", (0, 0, 255))
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "list").write_text(f"{tmp_path}/link.png\n{tmp_path}/dangling.png\n")
    items = list(listed(str(tmp_path / "list"), null=False))
    assert items == [
        WalkFile(f"{tmp_path}/link.png"),
        WalkError(f"{tmp_path}/dangling.png", "broken symbolic link"),
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("null", [False, True], ids=["lines", "nul"])
def test_both_forms_of_git_diff_output_list_every_changed_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, null: bool
) -> None:
    # Without -z, git quotes unusual names ("caf\303\251.png"): they must not be skipped.
    names = ["caf\u00e9.png", "tab\tname.png", 'quote".png', "back\\slash.png", "plain.png"]
    git("init", "-q", cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "base", cwd=tmp_path)
    for name in names:
        save_image(tmp_path / name, (0, 0, 255))
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "images", cwd=tmp_path)
    listing = git("diff", "--name-only", *(["-z"] * null), "HEAD~1", "HEAD", cwd=tmp_path)
    (tmp_path / "list").write_text(listing)
    monkeypatch.chdir(tmp_path)
    assert sorted(i.path for i in listed("list", null)) == sorted(names)
    assert all(isinstance(i, WalkFile) for i in listed("list", null))


def test_a_nul_separated_list_without_minus_0_is_refused_with_a_hint() -> None:
    with pytest.raises(UsageError, match="needs -0"):
        list(split(io.BytesIO(b"a.png\0b.png\0"), null=False))


class Endless(io.RawIOBase):
    """`count` entries of a NUL-separated list, generated as they are read."""

    def __init__(self, count: int) -> None:
        self.left, self.pending = count, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while len(self.pending) < len(buffer) and self.left:
            self.pending += f"folder/sub/image-{self.left:09d}.png\0".encode()
            self.left -= 1
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


def test_the_list_is_streamed_not_held() -> None:
    count = 60_000  # 2 MB of list; held as str objects it would take about 5 MB
    tracemalloc.start()
    seen = sum(1 for _ in split(io.BufferedReader(Endless(count)), null=True))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seen == count
    assert peak < 1_000_000, f"reading the list peaked at {peak} bytes"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["photos", "--files-from", "list"], "give PATHs or --files-from, not both"),
        (["--files-from", "nope.txt"], "--files-from nope.txt: no such file"),
        (["photos", "-0"], "-0 describes a --files-from list"),
    ],
)
def test_usage_errors(work: Path, red_model: Path, args: list[str], message: str) -> None:
    (work / "list").write_text("photos/red.png\n")
    done = facescan(*args, "--model", red_model, cwd=work)
    assert done.returncode == 2 and message in done.stderr


def test_a_list_that_cannot_be_read_twice_is_not_counted_for_the_progress_bar(
    tmp_path: Path,
) -> None:
    """The bar counts its total by reading the items again: from a pipe, that second reader
    would take entries away from the scan."""
    pipe, listing = tmp_path / "pipe", tmp_path / "list"
    os.mkfifo(pipe)
    image = tmp_path / "a.png"
    image.touch()
    listing.write_text(f"{image}\n")
    assert bar_total(Source(files_from=str(pipe))) is None
    assert bar_total(Source(files_from="-")) is None
    total = bar_total(Source(files_from=str(listing)))
    assert total is not None and list(total()) == [WalkFile(str(image))]
