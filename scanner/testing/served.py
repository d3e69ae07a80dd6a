"""A `facescan serve` process for tests and bench/serve_bench.py: started on a free port, its URL
read from its stderr, stopped with a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

STARTUP_S = 60  # generous: a loaded CI machine imports onnxruntime slowly
STOP_S = 60


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
