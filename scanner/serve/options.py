"""Every option of `facescan serve`, typed, with checks that name the option at fault. The
scanning settings are the scan's own `ScanSettings` (one set of checks for both). No heavy
imports: `facescan serve --help` loads this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import UsageError
from scanner.settings import ScanSettings

TOKEN_ENV = "FACESCAN_TOKEN"  # a bearer token, as --token-file holds them
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServeOptions:
    # the model and how it scores (the batcher engine: settings.engine.batch_wait_ms is the
    # longest wait for more images to fill a batch)
    settings: ScanSettings
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    queue: int = 256  # images held at once (reading, decoding, waiting, scoring); 503 past it
    max_request_bytes: int = 64 * MiB  # one request's body; 413 past it
    max_buffered_bytes: int = 512 * MiB  # all requests' bodies held at once; 503 past it
    max_files: int = 256  # images in one request; 413 past it
    token_file: Path | None = None
    cors_origins: tuple[str, ...] = ()
    keep: Path | None = None  # write every upload here (named by its sha256); never otherwise
    debug: bool = False

    def check(self) -> None:
        """Raise a UsageError naming every option that cannot work, before the model loads."""
        problems = self.settings.problems()
        for option, value in (
            ("--queue", self.queue),
            ("--max-request-bytes", self.max_request_bytes),
            ("--max-buffered-bytes", self.max_buffered_bytes),
            ("--max-files", self.max_files),
        ):
            if value < 1:
                problems.append(f"{option} must be at least 1 (got {value})")
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be in 0..65535 (got {self.port})")
        if not 0 <= (wait := self.settings.engine.batch_wait_ms) <= 1000:
            problems.append(f"--batch-wait-ms must be in 0..1000 (got {wait})")
        if self.max_files > self.queue:
            problems.append("--max-files must be at most --queue (a request must fit)")
        if self.max_buffered_bytes < self.max_request_bytes:
            problems.append("--max-buffered-bytes must be at least --max-request-bytes")
        if self.keep is not None and not self.keep.is_dir():
            problems.append(f"--keep {self.keep}: no such folder")
        if problems:
            raise UsageError("; ".join(problems))

    def tokens(self) -> list[bytes]:
        """The accepted bearer tokens: each non-empty line of --token-file, and $FACESCAN_TOKEN.
        None at all: auth is off."""
        found = []
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise UsageError(f"--token-file {self.token_file}: cannot read it ({e})") from None
            found = [line.strip() for line in text.splitlines() if line.strip()]
            if not found:
                raise UsageError(f"--token-file {self.token_file} holds no token")
        if env := os.environ.get(TOKEN_ENV, "").strip():
            found.append(env)
        return [token.encode("utf-8") for token in found]
