"""Running `facescan` as a user does, and reading its reports back (tests only)."""

from __future__ import annotations

import csv
import json
import os
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


def run_in_process(*paths: object, **options: object) -> int:
    """`facescan` in this process (no interpreter start-up): the exit status of ScanOptions."""
    from scanner.command import run
    from scanner.options import ScanOptions

    return run(ScanOptions(paths=tuple(map(str, paths)), **options))  # type: ignore[arg-type]


def facescan_on_path(folder: Path) -> Path:
    """A `facescan` executable in `folder` that runs this tree's scanner with this Python (the
    console script installed in the environment may belong to another checkout)."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = Path(__file__).resolve().parent.parent
    script = folder / "facescan"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH="{tree}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" -m scanner "$@"\n'
    )
    script.chmod(0o755)
    return script


def git(*args: object, cwd: Path) -> str:
    """Run git in `cwd` as a throwaway user; its output."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout
