"""What `facescan PATH...` takes besides the scan's settings and source: the report, the CI
gate, the terminal. Typed, with the checks that name the option at fault.

The CLI fills a `ScanOptions` (its `settings` and `source` mapped once, by
`scanner.cli_options`) and hands it to `scanner.command.run`; tests can build one directly. No
heavy imports here: `--help` loads this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scanner import policy
from scanner.errors import UsageError
from scanner.reports.base import THUMBNAILS
from scanner.settings import ScanSettings
from scanner.source import Source


@dataclass(frozen=True)
class ScanOptions:
    settings: ScanSettings  # what decides the rows
    source: Source  # what is scanned
    out: Path | None = None
    format: str | None = None
    thumbnails: str | None = None  # the HTML report's --thumbnails (None: its default, flagged)
    quiet: bool = False
    debug: bool = False
    exit_zero: bool = False
    # The CI job (issue 16): what a reviewed baseline lets through, what fails.
    baseline: Path | None = None
    update_baseline: bool = False
    prune_baseline: bool = False
    fail_on: str | None = None  # None: policy.DEFAULT

    def check(self) -> None:
        """Raise a UsageError naming every option that cannot work, before anything loads."""
        problems = self.settings.problems()
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
        problems += self.source.problems()
        problems += self._ci_problems()
        if problems:
            raise UsageError("; ".join(problems))
        self.fail_outcomes()  # a malformed --fail-on is a usage error too

    def _ci_problems(self) -> list[str]:
        problems = []
        if self.exit_zero and self.fail_on is not None and policy.parse_fail_on(self.fail_on):
            problems.append(f"--exit-zero contradicts --fail-on {self.fail_on}: use one")
        if (self.update_baseline or self.prune_baseline) and self.baseline is None:
            problems.append("--update-baseline and --prune-baseline need --baseline FILE")
        elif self.prune_baseline and not self.update_baseline:
            problems.append("--prune-baseline needs --update-baseline")
        elif self.prune_baseline and (
            self.source.files_from is not None or self.source.shard is not None
        ):
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
