"""Every option of `facescan PATH...`, typed, with the checks that name the option at fault.

The CLI fills a `ScanOptions` and hands it to `scanner.command.run`; tests and other front ends
(the HTTP service) can build one directly. No heavy imports here: `--help` loads this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner import policy
from scanner.errors import UsageError
from scanner.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DecodeLimits
from scanner.reports.html import THUMBNAILS
from scanner.walk import Shard

if TYPE_CHECKING:
    from scanner.scan import Scanner


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
    c2pa_trust: tuple[Path, ...] = ()  # PEM files: the anchors a valid C2PA signer chains to
    shard: str | None = None
    faces: str = "auto"
    min_face: int | None = None
    engine: str = "local"
    ray_address: str | None = None
    actors: int = 1
    exit_zero: bool = False
    quiet: bool = False
    debug: bool = False
    # The CI job (issue 16): what to scan, what a reviewed baseline lets through, what fails.
    files_from: str | None = None  # a list of paths instead of PATHs; "-" is stdin
    null: bool = False  # the list is NUL-separated
    baseline: Path | None = None
    update_baseline: bool = False
    prune_baseline: bool = False
    fail_on: str | None = None  # None: policy.DEFAULT
    thumbnails: str | None = None  # the HTML report's --thumbnails (None: its default, flagged)

    def check(self, sources: bool = True) -> None:
        """Raise a UsageError naming every option that cannot work, before anything loads.
        `sources`: check what to scan too (PATHs or --files-from); a front end that gets its
        images otherwise (the HTTP service) checks only the settings."""
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
        if self.out is not None and str(self.out) == "-":  # surely not a file called "-"
            problems.append(
                "--out -: reports go to files (without --out the flagged files are listed on "
                "stdout); write ./- for a file of that name"
            )
        if self.thumbnails is not None and self.thumbnails not in THUMBNAILS:
            problems.append(f"--thumbnails must be {', '.join(THUMBNAILS)} (got {self.thumbnails})")
        elif self.thumbnails is not None and self.out is None:
            problems.append("--thumbnails needs --out REPORT.html")
        if sources:
            problems += self._source_problems()
        problems += self._ci_problems()
        if problems:
            raise UsageError("; ".join(problems))
        self.shard_part()  # a malformed --shard is a usage error too
        self.fail_outcomes()  # and so is a malformed --fail-on

    def _source_problems(self) -> list[str]:
        problems = []
        missing = [p for p in self.paths if not os.path.lexists(p)]
        if missing:
            problems.append(f"no such file or folder: {', '.join(missing)}")
        if self.files_from is not None and self.paths:
            problems.append("give PATHs or --files-from, not both")
        elif self.files_from is None and not self.paths:
            problems.append("nothing to scan: give PATHs or --files-from FILE")
        if self.files_from not in (None, "-"):  # a pipe is fine: --files-from <(git diff -z ...)
            if not os.path.exists(self.files_from):
                problems.append(f"--files-from {self.files_from}: no such file")
            elif os.path.isdir(self.files_from):
                problems.append(f"--files-from {self.files_from} is a folder, not a list")
        return problems

    def _ci_problems(self) -> list[str]:
        problems = []
        if self.null and self.files_from is None:
            problems.append("-0 describes a --files-from list")
        if self.exit_zero and self.fail_on is not None and policy.parse_fail_on(self.fail_on):
            problems.append(f"--exit-zero contradicts --fail-on {self.fail_on}: use one")
        if (self.update_baseline or self.prune_baseline) and self.baseline is None:
            problems.append("--update-baseline and --prune-baseline need --baseline FILE")
        elif self.prune_baseline and not self.update_baseline:
            problems.append("--prune-baseline needs --update-baseline")
        elif self.prune_baseline and (self.files_from is not None or self.shard is not None):
            # A part of the files sees a part of the entries: the rest would be dropped.
            problems.append("--prune-baseline drops what the scan did not see: scan everything")
        elif self.baseline and not self.update_baseline and not self.baseline.is_file():
            problems.append(
                f"no baseline {self.baseline}: make one with "
                f"facescan baseline create {self.baseline} PATH..."
            )
        return problems

    def fail_outcomes(self) -> frozenset[str]:
        """What fails the job (`--fail-on`); nothing with --exit-zero."""
        if self.exit_zero:
            return frozenset()
        return policy.parse_fail_on(self.fail_on or policy.DEFAULT)

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

    def open_scanner(self, **engine: Any) -> Scanner:
        """The Scanner these options describe (`engine` overrides engine settings, as the HTTP
        service does with its batcher). Loads the model: call after `check`."""
        from scanner.scan import Scanner
        from scanner.session import resolve_model

        settings: dict[str, Any] = {
            "engine": self.engine,
            "ray_address": self.ray_address,
            "actors": self.actors,
            "progress": self.debug,
            **engine,
        }
        return Scanner(
            resolve_model(self.model, self.precision),
            provider=self.provider,
            threshold=self.threshold,
            workers=self.workers,
            batch_size=self.batch_size,
            threads=self.threads,
            limits=self.limits,
            cache=self.cache,
            use_metadata=not self.ignore_metadata,
            faces=self.faces,
            min_face=self.min_face,
            c2pa_trust=self.c2pa_trust,
            **settings,
        )
