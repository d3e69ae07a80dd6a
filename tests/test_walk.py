"""Walker rules: order, candidates, hidden files, excludes, symlinks, errors, flat memory."""

from __future__ import annotations

import os
import shutil
import stat
import tracemalloc
from pathlib import Path

import pytest

from scanner.walk import WalkError, WalkFile, not_regular, walk


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def files(items) -> list[str]:
    return [item.path for item in items if isinstance(item, WalkFile)]


def errors(items) -> dict[str, str]:
    return {item.path: item.message for item in items if isinstance(item, WalkError)}


def test_order_is_sorted_depth_first_and_stable(tmp_path: Path) -> None:
    touch(tmp_path, "b.jpg", "a.png", "sub/z.jpg", "sub/deeper/y.webp", "c.gif")
    first = files(walk([str(tmp_path)]))
    assert first == files(walk([str(tmp_path)]))
    rel = [os.path.relpath(p, tmp_path) for p in first]
    assert rel == ["a.png", "b.jpg", "c.gif", "sub/deeper/y.webp", "sub/z.jpg"]


def test_candidates_by_extension_any_case(tmp_path: Path) -> None:
    names = ["a.JPG", "b.Jpeg", "c.PNG", "d.webp", "e.BMP", "f.gif", "g.TIF", "h.tiff"]
    touch(tmp_path, *names, "notes.txt", "archive.zip", "noext")
    assert sorted(Path(p).name for p in files(walk([str(tmp_path)]))) == sorted(names)


def test_hidden_files_and_folders_are_scanned(tmp_path: Path) -> None:
    touch(tmp_path, ".hidden.jpg", ".secret/face.png")
    found = {os.path.relpath(p, tmp_path) for p in files(walk([str(tmp_path)]))}
    assert found == {".hidden.jpg", ".secret/face.png"}


def test_exclude_matches_names_and_relative_paths_and_prunes_folders(tmp_path: Path) -> None:
    touch(tmp_path, "keep.jpg", "skip.jpg", "thumbs/t.jpg", "a/cache/c.jpg", "a/b.jpg")
    found = files(walk([str(tmp_path)], exclude=["skip.*", "thumbs", "a/cache"]))
    assert {os.path.relpath(p, tmp_path) for p in found} == {"keep.jpg", "a/b.jpg"}


def test_a_file_named_on_the_command_line_is_always_a_candidate(tmp_path: Path) -> None:
    touch(tmp_path, "photo.dat")
    assert files(walk([str(tmp_path / "photo.dat")])) == [str(tmp_path / "photo.dat")]


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    assert errors(walk([str(tmp_path / "nope")])) == {
        str(tmp_path / "nope"): "no such file or folder"
    }


def test_symlinks_are_not_followed_or_reported_by_default(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "other/b.jpg")
    (tmp_path / "real" / "link.jpg").symlink_to(tmp_path / "other" / "b.jpg")
    (tmp_path / "real" / "dirlink").symlink_to(tmp_path / "other")
    (tmp_path / "real" / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    items = list(walk([str(tmp_path / "real")]))
    assert files(items) == [str(tmp_path / "real" / "a.jpg")]
    assert errors(items) == {}


def test_follow_symlinks_visits_a_loop_once_and_reports_broken_links(tmp_path: Path) -> None:
    touch(tmp_path, "top/a.jpg", "top/sub/b.jpg")
    (tmp_path / "top" / "sub" / "loop").symlink_to(tmp_path / "top")
    (tmp_path / "top" / "again").symlink_to(tmp_path / "top" / "sub")
    (tmp_path / "top" / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    items = list(walk([str(tmp_path / "top")], follow_symlinks=True))
    rel = [os.path.relpath(p, tmp_path / "top") for p in files(items)]
    # sub/ is reached first through the link "again" (sorted order); neither the loop back to
    # top/ nor the second path to sub/ is entered again.
    assert rel == ["a.jpg", "again/b.jpg"]
    assert errors(items) == {str(tmp_path / "top" / "broken.jpg"): "broken symbolic link"}


def test_overlapping_roots_list_each_file_once(tmp_path: Path) -> None:
    touch(tmp_path, "a/x.jpg", "a/b/y.jpg")
    found = files(walk([str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(tmp_path / "a")]))
    assert sorted(found) == sorted({str(tmp_path / "a/x.jpg"), str(tmp_path / "a/b/y.jpg")})


@pytest.mark.parametrize(
    ("roots", "wanted"),
    [
        (["a/b", "a"], "xyz"),  # a later root holding an earlier one
        (["a", "a/b"], "xyz"),
        (["a/b/y.jpg", "a"], "xyz"),  # a file named, then its folder
        (["a", "a/b/y.jpg", "a/b/y.jpg"], "xyz"),
        (["a/x.jpg", "a/x.jpg", "a/b/y.jpg", "a/b"], "xyz"),
        (["link", "a"], "xyz"),  # a link to a/b named first
        (["a/b/y.jpg", "hard.jpg", "a/b"], "yz"),  # one file by two names
    ],
)
def test_every_file_is_listed_once_however_the_roots_overlap(
    tmp_path: Path, roots: list[str], wanted: str
) -> None:
    touch(tmp_path, "a/x.jpg", "a/b/y.jpg", "a/b/c/z.jpg")
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    os.link(tmp_path / "a/b/y.jpg", tmp_path / "hard.jpg")
    found = files(walk([str(tmp_path / root) for root in roots]))
    inodes = [os.stat(path).st_ino for path in found]
    names = {"x": "a/x.jpg", "y": "a/b/y.jpg", "z": "a/b/c/z.jpg"}
    assert sorted(inodes) == sorted(os.stat(tmp_path / names[n]).st_ino for n in wanted), found
    assert found[0].startswith(str(tmp_path / roots[0]))  # in the order the roots are named


def test_a_file_named_and_excluded_from_its_folder_is_listed_once(tmp_path: Path) -> None:
    touch(tmp_path, "a/x.jpg", "a/skip.jpg")
    named = str(tmp_path / "a" / "skip.jpg")
    found = files(walk([str(tmp_path / "a"), named], exclude=["skip.*"]))
    assert found == [str(tmp_path / "a" / "x.jpg"), named]


def test_folder_vanishing_mid_walk_is_an_error_and_the_walk_goes_on(tmp_path: Path) -> None:
    touch(tmp_path, "a/1.jpg", "b/2.jpg", "c/3.jpg")
    items = walk([str(tmp_path)])
    first = next(items)
    shutil.rmtree(tmp_path / "b")
    rest = list(items)
    assert first == WalkFile(str(tmp_path / "a" / "1.jpg"))
    assert errors(rest) == {str(tmp_path / "b"): "folder vanished during the scan"}
    assert files(rest) == [str(tmp_path / "c" / "3.jpg")]


def test_unlistable_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path, "ok/1.jpg", "locked/2.jpg")
    real_scandir = os.scandir

    def scandir(path):  # root can read anything, so refuse the way a locked folder would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = list(walk([str(tmp_path)]))
    assert errors(items) == {str(tmp_path / "locked"): "permission denied: folder cannot be listed"}
    assert files(items) == [str(tmp_path / "ok" / "1.jpg")]


def _walk_peak(root: Path) -> tuple[int, int]:
    tracemalloc.start()
    count = sum(1 for _ in walk([str(root)]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_the_tree(tmp_path: Path) -> None:
    # Folders of 10 entries each; the big tree is two levels deeper, with 100x the files.
    touch(tmp_path / "small", *(f"{a}/{f}.jpg" for a in range(10) for f in range(10)))
    touch(
        tmp_path / "big",
        *(
            f"{a}/{b}/{c}/{f}.jpg"
            for a in range(10)
            for b in range(10)
            for c in range(10)
            for f in range(10)
        ),
    )
    small_count, small_peak = _walk_peak(tmp_path / "small")
    big_count, big_peak = _walk_peak(tmp_path / "big")
    assert (small_count, big_count) == (100, 10_000)
    assert big_peak < small_peak * 1.5 + 64 * 1024


def test_a_link_to_itself_is_a_loop_not_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "self.jpg").symlink_to(tmp_path / "self.jpg")
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")  # a -> b -> a
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    named = errors(walk([str(tmp_path / n) for n in ("self.jpg", "a.jpg", "gone.jpg")]))
    assert named[str(tmp_path / "self.jpg")].startswith("symbolic link loop")
    assert named[str(tmp_path / "a.jpg")].startswith("symbolic link loop")
    assert named[str(tmp_path / "gone.jpg")] == "broken symbolic link"
    inside = errors(walk([str(tmp_path)], follow_symlinks=True))  # the same rule in a folder
    assert inside[str(tmp_path / "self.jpg")].startswith("symbolic link loop")
    assert inside[str(tmp_path / "gone.jpg")] == "broken symbolic link"


def test_what_is_not_a_regular_file_is_an_error_never_a_file(tmp_path: Path) -> None:
    """A FIFO or a device is an error row, named or inside a folder with an image name (a FIFO
    opened to be read blocks until a writer comes; /dev/zero never ends): never a file to
    open. Inside a folder, one without an image name is no candidate, as any other file."""
    touch(tmp_path, "photos/a.jpg")
    os.mkfifo(tmp_path / "photos" / "b.jpg")
    os.mkfifo(tmp_path / "photos" / "notes.txt")
    os.mkfifo(tmp_path / "named.png")
    items = list(walk([str(tmp_path / "photos"), str(tmp_path / "named.png"), "/dev/null"]))
    assert files(items) == [str(tmp_path / "photos" / "a.jpg")]
    fifo = "not a regular file: a named pipe (FIFO); not read"
    assert errors(items) == {
        str(tmp_path / "photos" / "b.jpg"): fifo,
        str(tmp_path / "named.png"): fifo,
        "/dev/null": "not a regular file: a character device; not read",
    }


def test_a_listed_fifo_is_an_error_row(tmp_path: Path) -> None:
    from scanner.filelist import classify

    os.mkfifo(tmp_path / "pipe.jpg")
    item = classify(str(tmp_path / "pipe.jpg"))
    assert item == WalkError(str(tmp_path / "pipe.jpg"), not_regular(stat.S_IFIFO))
