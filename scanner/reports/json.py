"""JSON (`.json`, one document, written atomically) and JSON Lines (`.jsonl`, one object per
line, streamed and flushed row by row; the last line of a partial report says so:
`scanner.reports.partial`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scanner.reports.base import AtomicFile, ReportFormat, cannot_write, open_streamed, row
from scanner.reports.partial import marker_row
from scanner.results import ScanResult


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class JsonlReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._path = path
        self._file = open_streamed(path)

    def write(self, result: ScanResult) -> None:
        self._write_line(row(result))

    def _write_line(self, values: dict[str, Any]) -> None:
        try:
            self._file.write(dumps(values) + "\n")
            self._file.flush()
        except OSError as e:
            raise cannot_write(self._path, e) from None

    def close(self, summary: dict[str, Any]) -> None:
        if not summary["complete"]:  # a partial report says so in its last line
            self._write_line(marker_row(summary))
        self._file.close()


class JsonReport:
    """{"model": {...}, "results": [...], "summary": {...}}: streamed into a temporary file and
    renamed into place at the end, so a reader never sees half a document."""

    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._out = AtomicFile(path)
        self._out.write('{"model": ' + dumps(model) + ',\n"results": [')
        self._first = True

    def write(self, result: ScanResult) -> None:
        self._out.write(("\n" if self._first else ",\n") + dumps(row(result)))
        self._first = False

    def close(self, summary: dict[str, Any]) -> None:
        self._out.write('\n],\n"summary": ' + dumps(summary) + "}\n")
        self._out.commit()


FORMATS = [
    ReportFormat("json", (".json",), "one document with the model and summary", JsonReport),
    ReportFormat("jsonl", (".jsonl",), "one JSON object per line, streamed", JsonlReport),
]
