"""What every report writer shares: the columns, the error, the row, and the two ways a report
file is written (streamed row by row, or atomically: `scanner.textfiles.AtomicFile`, whole or not
at all; its path escaping is there too, shared with the baseline and the terminal).

Writers import this and `scanner.results`, never the scanner itself: a report is a sink of
`ScanResult`s, whichever engine produced them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from scanner.errors import ReportError
from scanner.results import ScanResult
from scanner.textfiles import AtomicFile, cannot_write, printable, unescape_path

# Re-exported: the writers (and their tests) take everything a report needs from here.
__all__ = [
    "FIELDS", "THUMBNAILS", "AtomicFile", "Report", "ReportError", "ReportFormat",
    "cannot_write", "open_streamed", "printable", "row", "unescape_path",
]  # fmt: skip
THUMBNAILS = ("flagged", "all", "none")  # the HTML report's --thumbnails: which images get one
FIELDS = (
    *("path", "status", "label", "score", "error", "width", "height", "format", "sha256"),
    *("evidence", "reason", "cached"),  # appended by issue 8: older readers keep their columns
    "faces",  # the faces found (JSON: each with box, detection, score, label; CSV: how many)
    "baseline",  # the --baseline decision ("new" when flagged and not in it)
    "provenance",  # the C2PA credential (JSON: an object; CSV: its validation)
)


class Report(Protocol):
    def write(self, result: ScanResult) -> None: ...

    def close(self, summary: dict[str, Any]) -> None:
        """Finish the report; `summary["complete"]` says whether the scan got to the end."""


@dataclass(frozen=True)
class ReportFormat:
    """One format of the registry (`scanner.reports.formats`)."""

    name: str  # the --format value
    extensions: tuple[str, ...]  # what --out names end with (lower case, with the dot)
    description: str  # one line for --help
    open: Callable[[Path, dict[str, Any]], Report]  # (path, model info) -> writer


def row(result: ScanResult) -> dict[str, Any]:
    """The report's values for one result: the path escaped, the score rounded."""
    values = result.as_dict()
    values["path"] = printable(result.path)
    if result.score is not None:
        values["score"] = round(result.score, 6)
    return values


def open_streamed(path: Path) -> IO[str]:
    """A report file written as the scan goes (rows readable at once), mode from the umask."""
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as e:
        raise cannot_write(path, e) from None
