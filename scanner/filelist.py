"""`--files-from FILE`: scan exactly the paths a list names (`git diff --name-only`, `find`).

Rules (docs/ci.md, "Scan only what changed"):
- One path per line, or per NUL byte with `-0` (`git diff -z`, `find -print0`): NUL-separated
  lists carry file names as raw bytes, so any name survives; they are decoded as the file
  system does (`os.fsdecode`). Empty entries are skipped; `-` reads standard input.
- In a list of lines, a line in double quotes is unquoted the way git quotes unusual names
  (`git diff --name-only` writes `"caf\303\251.png"` for café.png): skipping it as a name
  without an image extension would let such a file past the job.
- The list is streamed: a list of a million paths is never held in memory.
- A listed path with an image extension is one row: scanned (a symbolic link is followed, as
  for a file on the command line), or an error row when it is missing, a broken link or not a
  regular file (a FIFO, a device: never opened).
- Anything else is skipped without a word: other files (a diff lists code too) and folders
  (`find` lists a folder and then its files: walking it would scan them twice).
- `--exclude` globs match the listed path and its name, as the walker matches relative paths.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from scanner.errors import UsageError
from scanner.walk import WalkItem, excluded, is_image_name, named_file, stat_path

CHUNK = 1 << 16
LONGEST = 1 << 20  # no file name is this long: the list is not what it was said to be
# git's C-style quoting (quote_c_style): the escapes it writes, and octal bytes.
GIT_QUOTED = re.compile(rb'"((?:[^"\\]|\\[abtnvfr"\\]|\\[0-3][0-7]{2})*)"')
GIT_ESCAPE = re.compile(rb'\\([abtnvfr"\\]|[0-3][0-7]{2})')
GIT_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13, b'"': 34}
GIT_ESCAPES[b"\\"] = 92


def listed(source: str, null: bool, exclude: Iterable[str] = ()) -> Iterator[WalkItem]:
    """The candidate files (and error rows) of the list in `source` (a file, or - for stdin)."""
    patterns = tuple(exclude)
    for path in read_paths(source, null):
        if not is_image_name(path):
            continue
        if patterns and excluded(os.path.basename(path), path.replace(os.sep, "/"), patterns):
            continue
        item = classify(path)
        if item is not None:
            yield item


def classify(path: str) -> WalkItem | None:
    """A listed image path: a file to scan, an error row, or None for a folder."""
    st = stat_path(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        return None
    return named_file(path, st)


def read_paths(source: str, null: bool) -> Iterator[str]:
    """Every non-empty entry of the list, decoded as the file system decodes names."""
    if source == "-":
        yield from split(sys.stdin.buffer, null)
        return
    try:
        with open(source, "rb") as stream:
            yield from split(stream, null)
    except OSError as e:
        raise UsageError(f"--files-from {source}: cannot read it: {e.strerror or e}") from None


def split(stream: BinaryIO, null: bool) -> Iterator[str]:
    """Entries separated by NUL (`null`) or by newlines (a CRLF line loses its CR too), read in
    chunks so that memory holds one chunk and one entry, never the list."""
    separator = b"\0" if null else b"\n"
    rest = b""
    while chunk := stream.read(CHUNK):
        entries = (rest + chunk).split(separator)
        rest = entries.pop()
        if len(rest) > LONGEST:
            raise UsageError(f"--files-from: an entry is over {LONGEST} bytes long{_HINT[null]}")
        yield from _decoded(entries, null)
    yield from _decoded([rest], null)


# What a list with the other separator looks like, and what to do about it.
_HINT = {
    False: ": a NUL-separated list (git diff -z, find -print0) needs -0",
    True: ": a list of lines needs no -0",
}


def _decoded(entries: list[bytes], null: bool) -> Iterator[str]:
    for entry in entries:
        if not null:
            entry = git_unquoted(entry.removesuffix(b"\r"))
            if b"\0" in entry:  # no file name holds a NUL byte
                raise UsageError(f"--files-from: an entry holds a NUL byte{_HINT[False]}")
        if entry:
            yield os.fsdecode(entry)


def git_unquoted(line: bytes) -> bytes:
    """The name git quoted in `line` (`"caf\\303\\251.png"` -> café.png), or `line` as it is."""
    quoted = GIT_QUOTED.fullmatch(line)
    if quoted is None:
        return line

    def byte(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        return bytes([GIT_ESCAPES[code] if len(code) == 1 else int(code, 8)])

    return GIT_ESCAPE.sub(byte, quoted.group(1))
