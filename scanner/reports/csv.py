"""CSV (`.csv`): UTF-8 with a header, one row per file, written and flushed row by row so that a
crash or Ctrl-C keeps every row already scanned; the last row of a partial report says so
(`scanner.reports.partial`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from scanner.reports.base import FIELDS, ReportFormat, cannot_write, open_streamed, row
from scanner.reports.partial import marker_row
from scanner.results import ScanResult

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate with ' (the OWASP recommendation)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON writes it, not Python's True
    return neutralise_formula(value) if isinstance(value, str) else value


class CsvReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._path = path
        self._file = open_streamed(path)
        self._csv = csv.writer(self._file)
        self._write_cells(FIELDS)

    def write(self, result: ScanResult) -> None:
        values = row(result)
        if result.faces is not None:  # one row per file: the count (JSON reports list them)
            values["faces"] = len(result.faces)
        if result.provenance is not None:  # its summary is in `evidence`; the state here
            values["provenance"] = result.provenance["validation"]
        self._write_cells([cell(values[f]) for f in FIELDS])

    def _write_cells(self, cells: Any) -> None:
        try:
            self._csv.writerow(cells)
            self._file.flush()
        except OSError as e:
            raise cannot_write(self._path, e) from None

    def close(self, summary: dict[str, Any]) -> None:
        if not summary["complete"]:  # a partial report says so in its last row
            self._write_cells([cell(value) for value in marker_row(summary).values()])
        self._file.close()


FORMATS = [ReportFormat("csv", (".csv",), "one row per file, for spreadsheets", CsvReport)]
