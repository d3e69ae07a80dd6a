"""A streaming, deterministic walk over the paths a user names.

Rules (fd/ripgrep style, documented in docs/scanning.md):
- A folder is walked depth-first, entries sorted by name; memory holds one sorted listing per
  level of the current branch, never the tree.
- Files are candidates when their extension is an image extension (any case). A file named
  on the command line is always a candidate: the user asked for it.
- Hidden files and folders are walked: a leading dot must not hide an image from moderation.
- `exclude` globs are matched against the name and the path relative to its root; a matching
  folder is not entered.
- Symbolic links inside the tree are skipped silently unless `follow_symlinks`; then each real
  folder is entered once, by the first path in walk order (a loop or a second link to it is not
  re-entered; this remembers one (device, inode) pair per folder), and a broken link is an error.
  Paths named on the command line are always followed.
- Every file is yielded once, whatever the roots overlap: a folder root inside an earlier one is
  skipped, a later folder root does not re-enter an earlier one, and a file named on the command
  line comes once, first where the walk order meets it (as a root or inside a folder). This
  remembers one (device, inode) pair per root.
- Anything that cannot be listed or read is yielded as a `WalkError`, and the walk goes on.
- A file that is not a regular file (a FIFO, a device, a socket) is an error row at once, never
  opened: a FIFO blocks its reader until a writer comes, and a device such as /dev/zero never
  ends. Named on the command line it is always one; inside a folder, when its name has an image
  extension (like any other candidate).
"""

from __future__ import annotations

import errno
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

# What a folder walk picks up (any case). The decoder sniffs the content, never the extension:
# these only say which files inside a folder are meant to be images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)


@dataclass(frozen=True)
class WalkFile:
    path: str  # as the user would type it: the root they gave joined with the relative path


@dataclass(frozen=True)
class WalkError:
    path: str
    message: str


WalkItem = WalkFile | WalkError


@dataclass(frozen=True)
class Shard:
    """`--shard I/N`: a deterministic partition of a scan by path, so N plain CI jobs split one
    tree. An item belongs to shard `crc32(path) % N + 1`, hashed on the path as the walker yields
    it (the root as typed joined with the path inside it), so every job must name the same roots
    the same way; then the N shards hold every file exactly once, whatever machine runs them.
    CRC-32, not `hash()`: Python salts str hashes per process."""

    index: int  # 1-based, as CI matrices count
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"--shard {self.index}/{self.count}: I must be in 1..N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'I/N' -> Shard(I, N), or a ValueError that says what is expected."""
        index, sep, count = text.partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 1/4 (1 <= I <= N)")
        return cls(int(index), int(count))

    def owns(self, path: str) -> bool:
        # surrogateescape: file names with undecodable bytes hash by their original bytes.
        return zlib.crc32(path.encode("utf-8", "surrogateescape")) % self.count == self.index - 1

    def select(self, items: Iterable[WalkItem]) -> Iterator[WalkItem]:
        """This shard's files and walk errors, in walk order."""
        return (item for item in items if self.owns(item.path))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


NOT_FOUND = "no such file or folder"
# What a file that is not a regular file is, by its stat mode (the error row names it).
SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(mode: int) -> str | None:
    """The error row of a file with this stat mode when it is not a regular file (nor a
    folder), None for a regular file: such a file is never opened."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = next((name for test, name in SPECIAL_FILES if test(mode)), "an unknown kind of file")
    return f"not a regular file: {kind}; not read"


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def excluded(name: str, relative: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, p) or fnmatchcase(relative, p) for p in patterns)


def walk(
    roots: Iterable[str],
    exclude: Iterable[str] = (),
    follow_symlinks: bool = False,
    shard: Shard | None = None,
) -> Iterator[WalkItem]:
    """Every candidate file (or error) under `roots`, in a stable order; only `shard`'s part of
    them when one is given (`--shard I/N`)."""
    items = _walk(roots, exclude, follow_symlinks)
    return items if shard is None else shard.select(items)


@dataclass
class Overlaps:
    """What keeps overlapping roots from yielding a file twice: the folder roots walked so far
    (real paths, and (device, inode) pairs) and the files named as roots."""

    walked: list[str]
    walked_keys: set[tuple[int, int]]
    named: set[tuple[int, int]]  # every file root
    met: set[tuple[int, int]]  # the file roots yielded so far, as roots or inside a folder

    @classmethod
    def of(cls, roots: list[str]) -> Overlaps:
        named = {key for root in roots if (key := _file_key(root)) is not None}
        return cls([], set(), named, set())

    def first_meeting(self, key: tuple[int, int]) -> bool:
        """False when this named file was yielded before."""
        if key in self.met:
            return False
        self.met.add(key)
        return True

    def walked_root(self, entry: os.DirEntry[str]) -> bool:
        """A folder met inside a root that is an earlier root (walked already)."""
        return bool(self.walked_keys) and _entry_key(entry) in self.walked_keys

    def named_and_met(self, entry: os.DirEntry[str]) -> bool:
        """A file met inside a folder root that is also named as a root, and was yielded
        already (as that root, or inside another folder)."""
        if not self.named or (key := _entry_key(entry)) not in self.named:
            return False
        return not self.first_meeting(key)


def _walk(
    roots: Iterable[str], exclude: Iterable[str], follow_symlinks: bool
) -> Iterator[WalkItem]:
    patterns, roots = tuple(exclude), list(roots)  # command-line paths: a short list
    overlaps = Overlaps.of(roots)
    entered: set[tuple[int, int]] | None = set() if follow_symlinks else None
    for root in roots:
        st = stat_path(root)
        if st is not None and stat.S_ISDIR(st.st_mode):
            real = os.path.realpath(root)
            if any(os.path.commonpath([real, done]) == done for done in overlaps.walked):
                continue  # already walked as part of an earlier root
            yield from _walk_folder(root, patterns, follow_symlinks, entered, overlaps)
            overlaps.walked.append(real)
            overlaps.walked_keys.add(_key(st))
        elif st is None or overlaps.first_meeting(_key(st)):
            yield named_file(root, st)


def named_file(path: str, st: os.stat_result | None) -> WalkItem:
    """A path the user named that is not a folder (`st`: `stat_path`'s): the file to scan, or
    the error row it gets (missing, a broken link, not a regular file)."""
    if st is None:
        return WalkError(path, link_problem(path) if os.path.islink(path) else NOT_FOUND)
    special = not_regular(st.st_mode)
    return WalkFile(path) if special is None else WalkError(path, special)


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def stat_path(path: str) -> os.stat_result | None:
    """What `path` names (links followed), None if nothing does."""
    try:
        return os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None


def _file_key(path: str) -> tuple[int, int] | None:
    """(device, inode) of what `path` names if it exists and is not a folder."""
    st = stat_path(path)
    return None if st is None or stat.S_ISDIR(st.st_mode) else _key(st)


def _walk_folder(
    root: str,
    patterns: tuple[str, ...],
    follow: bool,
    entered: set[tuple[int, int]] | None,
    overlaps: Overlaps,
) -> Iterator[WalkItem]:
    # A stack of sorted listings; each level is dropped as soon as it is consumed.
    stack: list[Iterator[os.DirEntry[str]]] = []
    listing = _list(root, entered)
    if isinstance(listing, WalkError):
        yield listing
    if not isinstance(listing, Iterator):
        return  # unreadable, or a root already walked under another root
    stack.append(listing)
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if patterns:
            relative = os.path.relpath(entry.path, root).replace(os.sep, "/")
            if excluded(entry.name, relative, patterns):
                continue
        item = _classify(entry, follow)
        if item == "dir":
            if overlaps.walked_root(entry):
                continue
            sub = _list(entry.path, entered)
            if isinstance(sub, WalkError):
                yield sub
            elif sub is not None:
                stack.append(sub)
        elif item == "file":
            if is_image_name(entry.name) and not overlaps.named_and_met(entry):
                yield WalkFile(entry.path)
        elif item == "special":  # a candidate by its name, never opened
            if is_image_name(entry.name) and not overlaps.named_and_met(entry):
                yield _special_file(entry, follow)
        elif isinstance(item, WalkError):
            yield item


def _entry_key(entry: os.DirEntry[str]) -> tuple[int, int] | None:
    """(device, inode) of what a directory entry names (links followed), None if it vanished:
    a stat only where an overlap is possible (roots that overlap, or files named as roots)."""
    try:
        return _key(entry.stat())
    except OSError:
        return None


def link_problem(path: str) -> str:
    """Why a symbolic link leads nowhere: a loop (it points back to itself, directly or through
    other links) or a missing target."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop (the link points back to itself)"
    return "broken symbolic link"


def _classify(entry: os.DirEntry[str], follow: bool) -> str | WalkError | None:
    """'dir', 'file', 'special' (not a regular file), None (skip) or a WalkError for one
    directory entry."""
    try:
        if entry.is_symlink():
            if not follow:
                return None
            if not os.path.exists(entry.path):
                return WalkError(entry.path, link_problem(entry.path))
        if entry.is_dir(follow_symlinks=follow):
            return "dir"
        if entry.is_file(follow_symlinks=follow):
            return "file"
        return "special"  # a FIFO, a device, a socket
    except OSError as e:
        return WalkError(entry.path, f"cannot stat: {e.strerror or e}")


def _special_file(entry: os.DirEntry[str], follow: bool) -> WalkError:
    try:
        message = not_regular(entry.stat(follow_symlinks=follow).st_mode)
    except OSError as e:
        message = f"cannot stat: {e.strerror or e}"
    return WalkError(entry.path, message or "not a regular file; not read")


def _list(
    folder: str, entered: set[tuple[int, int]] | None
) -> Iterator[os.DirEntry[str]] | WalkError | None:
    """The folder's entries sorted by name, None if already entered, or the reason it failed."""
    try:
        if entered is not None:  # following links: loops and second links are possible
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in entered:
                return None
            entered.add(key)
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return WalkError(folder, "folder vanished during the scan")
    except PermissionError:
        return WalkError(folder, "permission denied: folder cannot be listed")
    except OSError as e:
        return WalkError(folder, f"cannot list folder: {e.strerror or e}")
    return iter(entries)
