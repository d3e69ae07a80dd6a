"""What fails the job: `--fail-on` outcomes and the exit status they give (docs/exit-status.md).

An outcome is what one report row means for a CI job:
- `ai`: a flagged file that no reviewed decision lets through: not in the `--baseline`, or in
  it as `confirmed-ai` (a moderator confirmed it: it fails until the file is removed);
- `pending`: a flagged file recorded in the baseline but not reviewed yet;
- `error`: a file that could not be read.
A flagged file `approved` in the baseline is never an outcome that fails.

`--fail-on ai,error` is the default (every flagged or unreadable file fails, as before the
baseline existed), `--fail-on none` (or `--exit-zero`) never fails. The codes keep their
meanings: 1 when a failing flagged file was found (it takes precedence), 2 when only failing
unreadable files were.
"""

from __future__ import annotations

from collections.abc import Mapping

from scanner.baseline import APPROVED, CONFIRMED, NEW, PENDING
from scanner.errors import Exit, UsageError

OUTCOMES = ("ai", "pending", "error")
DEFAULT = "ai,error"
# The outcome of a flagged row, by its baseline status (the report's `baseline` column).
FLAGGED_OUTCOME = {NEW: "ai", CONFIRMED: "ai", PENDING: "pending", APPROVED: None}


def parse_fail_on(text: str) -> frozenset[str]:
    """'ai,error' -> {'ai', 'error'}; 'none' -> {}; anything else names what is expected."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return frozenset()
    unknown = [name for name in names if name not in OUTCOMES]
    if unknown or not names:
        expected = f"a comma-separated list of {', '.join(OUTCOMES)}, or none"
        raise UsageError(f"--fail-on {text!r}: expected {expected}")
    return frozenset(names)


def exit_status(fail_on: frozenset[str], flagged: Mapping[str, int], errors: int) -> Exit:
    """The exit status of a finished scan: `flagged` counts flagged rows by baseline status."""
    if any(FLAGGED_OUTCOME[status] in fail_on for status, n in flagged.items() if n):
        return Exit.FLAGGED
    if errors and "error" in fail_on:
        return Exit.ERROR
    return Exit.CLEAN
