"""Running `facescan` as a user does (a scan, or a server), and reading its reports back (tests
only)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

STARTUP_S = 60  # generous: a loaded CI machine imports onnxruntime slowly
STOP_S = 60


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


class Served:
    """A `facescan serve ...` process (any free port unless `port` is given): its URL once it
    listens, its stderr so far; stopped with SIGTERM at the end of a `with` block."""

    def __init__(self, *args: object, port: int = 0, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "scanner", "serve", "--port", str(port), *map(str, args)]
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
        )
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self.listening.wait(STARTUP_S):
            self.stop()
            raise AssertionError("facescan serve did not start:\n" + "".join(self.lines))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # read to the end, so the pipe never fills
            self.lines.append(line)
            if found := re.search(r"serving on (http://\S+)", line):
                self.url = found.group(1)
                self.listening.set()
        self.listening.set()  # exited before listening: stop waiting

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the process (if it still runs) and wait for its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
