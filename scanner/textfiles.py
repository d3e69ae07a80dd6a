"""Text files written whole, and file names written as text: what the reports, the baseline and
the terminal output share. A leaf module (the errors aside): anything in facescan may import it.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO

from scanner.errors import ReportError

# Reversible path escapes: `\\` is a backslash, `\xNN` the byte NN (see `printable`).
_ESCAPE = re.compile(r"\\\\|\\x([0-9a-fA-F]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cannot_write(path: Path, error: OSError) -> ReportError:
    return ReportError(f"cannot write report {path}: {error.strerror or error}")


def printable(path: str, control: bool = False) -> str:
    """A path as valid UTF-8 text that names exactly one file, reversibly (`unescape_path`).

    A byte of the name that is not UTF-8 becomes `\\xNN`. So that a file literally named with
    those four characters stays distinct, a backslash becomes `\\\\` (on POSIX; on Windows a
    backslash separates folders and names are never undecodable). With `control`, control
    characters (tab, newline...) become `\\xNN` too: one path per line, one field per tab.
    """
    if os.sep == "/":
        path = path.replace("\\", "\\\\")
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if control:
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text


def unescape_path(text: str) -> str:
    """The path `printable` wrote (POSIX): undoes `\\\\` and `\\xNN`."""
    out, end = bytearray(), 0
    for match in _ESCAPE.finditer(text):
        out += text[end : match.start()].encode("utf-8")
        out += b"\\" if match.group(1) is None else bytes([int(match.group(1), 16)])
        end = match.end()
    out += text[end:].encode("utf-8")
    return out.decode("utf-8", "surrogateescape")


class AtomicFile:
    """A text file that appears whole or not at all: written to a temporary file beside the
    target (so the rename cannot cross file systems), renamed into place by `commit`."""

    def __init__(self, path: Path) -> None:
        self.target = path
        folder = path.parent if str(path.parent) else Path(".")
        try:  # fails before the scan, not after it, when the folder is not writable
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        except OSError as e:
            raise cannot_write(path, e) from None
        self.tmp = Path(tmp)
        self.file: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as e:
            raise cannot_write(self.target, e) from None

    def commit(self) -> None:
        try:
            self.file.close()
            # mkstemp makes the file private; a report is meant to be shared like any other
            # file the user creates, so it gets the mode the umask gives.
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.target)
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise cannot_write(self.target, e) from None
