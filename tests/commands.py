"""Running `facescan` as a user does, and reading its reports back (tests only)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path


def facescan(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scanner", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def read_report(path: Path) -> list[dict[str, str]]:
    """Rows of any report format, with CSV's formula guard undone and cells as text."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            row["path"] = row["path"][1:] if row["path"].startswith("'") else row["path"]
        return rows
    if path.suffix == ".jsonl":
        raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        raw = json.loads(path.read_text(encoding="utf-8"))["results"]
    return [{k: _text(v) for k, v in row.items()} for row in raw]


def _text(value: object) -> str:
    """A JSON value as the CSV report writes it."""
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
