"""Report writers: CSV, JSONL (both streamed and flushed row by row) and JSON (atomic).

A crash or Ctrl-C keeps every row already written to CSV/JSONL; JSON is built in a temporary file
beside the target and renamed into place, so readers never see half a document.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol

from scanner.pipeline import ScanResult

FORMATS = ("csv", "json", "jsonl", "html", "parquet")
FIELDS = (
    *("path", "status", "label", "score", "error", "width", "height", "format", "sha256"),
    *("evidence", "reason", "cached"),  # appended by issue 8: older readers keep their columns
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ReportError(Exception):
    """The report cannot be written where or how the user asked."""


class Report(Protocol):
    def write(self, result: ScanResult) -> None: ...
    def close(self, summary: dict[str, Any]) -> None: ...


def format_for(path: Path, explicit: str | None) -> str:
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ReportError(
            f"cannot tell the report format of {str(path)!r}: use a .csv, .json, .jsonl, "
            ".html or .parquet name or --format csv|json|jsonl|html|parquet"
        )
    return fmt


def printable(path: str) -> str:
    """A path as valid UTF-8: undecodable bytes of a file name become \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def row(result: ScanResult) -> dict[str, Any]:
    values = result.as_dict()
    values["path"] = printable(result.path)
    if result.score is not None:
        values["score"] = round(result.score, 6)
    return values


def neutralise_formula(value: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate with ' (the OWASP recommendation)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class CsvReport:
    def __init__(self, path: Path) -> None:
        self._file = _open_for_writing(path)
        self._csv = csv.writer(self._file)
        self._csv.writerow(FIELDS)
        self._file.flush()

    def write(self, result: ScanResult) -> None:
        values = row(result)
        cells = [_cell(values[f]) for f in FIELDS]
        self._csv.writerow(cells)
        self._file.flush()

    def close(self, summary: dict[str, Any]) -> None:
        self._file.close()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON writes it, not Python's True
    return neutralise_formula(value) if isinstance(value, str) else value


class JsonlReport:
    def __init__(self, path: Path) -> None:
        self._file = _open_for_writing(path)

    def write(self, result: ScanResult) -> None:
        self._file.write(json.dumps(row(result), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self, summary: dict[str, Any]) -> None:
        self._file.close()


class JsonReport:
    """{"model": {...}, "results": [...], "summary": {...}}, streamed to a temp file."""

    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._target = path
        folder = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        self._tmp = Path(tmp)
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self._file.write('{"model": ' + json.dumps(model, ensure_ascii=False) + ',\n"results": [')
        self._first = True

    def write(self, result: ScanResult) -> None:
        self._file.write(
            ("\n" if self._first else ",\n") + json.dumps(row(result), ensure_ascii=False)
        )
        self._first = False

    def close(self, summary: dict[str, Any]) -> None:
        self._file.write('\n],\n"summary": ' + json.dumps(summary, ensure_ascii=False) + "}\n")
        self._file.close()
        os.replace(self._tmp, self._target)


def open_report(path: Path, fmt: str | None, model: dict[str, Any]) -> Report:
    kind = format_for(path, fmt)
    if kind == "html":
        from scanner.html_report import HtmlReport  # deferred: only HTML reports need it

        return HtmlReport(path, model)
    if kind == "parquet":
        from scanner.parquet_report import ParquetReport  # deferred: needs pyarrow

        return ParquetReport(path)
    if kind == "json":
        try:
            return JsonReport(path, model)
        except OSError as e:
            raise ReportError(f"cannot write report {path}: {e.strerror or e}") from None
    return CsvReport(path) if kind == "csv" else JsonlReport(path)


def _open_for_writing(path: Path) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as e:
        raise ReportError(f"cannot write report {path}: {e.strerror or e}") from None
