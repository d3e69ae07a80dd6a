"""Every option of `facescan PATH...`, typed, with the checks that name the option at fault.

The CLI fills a `ScanOptions` and hands it to `scanner.command.run`; tests and other front ends
(the HTTP service) can build one directly. No heavy imports here: `--help` loads this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import UsageError
from scanner.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DecodeLimits
from scanner.walk import Shard


@dataclass(frozen=True)
class ScanOptions:
    paths: tuple[str, ...]
    out: Path | None = None
    format: str | None = None
    model: Path | None = None
    precision: str = "auto"
    threshold: float | None = None
    provider: str = "auto"
    workers: int | None = None
    batch_size: int = 32
    threads: int | None = None
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    cache: Path | None = None
    ignore_metadata: bool = False
    shard: str | None = None
    faces: str = "auto"
    min_face: int | None = None
    engine: str = "local"
    ray_address: str | None = None
    actors: int = 1
    exit_zero: bool = False
    quiet: bool = False
    debug: bool = False

    def check(self) -> None:
        """Raise a UsageError naming every option that cannot work, before anything loads."""
        problems = [
            f"{option} must be at least 1 (got {value})"
            for option, value in (
                ("--batch-size", self.batch_size),
                ("--workers", self.workers),
                ("--threads", self.threads),
                ("--actors", self.actors),
                ("--max-pixels", self.max_pixels),
                ("--max-bytes", self.max_bytes),
            )
            if value is not None and value < 1
        ]
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            problems.append(f"--threshold must be in 0..1 (got {self.threshold})")
        if self.format is not None and self.out is None:
            problems.append("--format needs --out")
        missing = [p for p in self.paths if not os.path.lexists(p)]
        if missing:
            problems.append(f"no such file or folder: {', '.join(missing)}")
        if problems:
            raise UsageError("; ".join(problems))
        self.shard_part()  # a malformed --shard is a usage error too

    def shard_part(self) -> Shard | None:
        if self.shard is None:
            return None
        try:
            return Shard.parse(self.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None

    @property
    def limits(self) -> DecodeLimits:
        return DecodeLimits(self.max_pixels, self.max_bytes)
