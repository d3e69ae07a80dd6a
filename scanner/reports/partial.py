"""How a streamed report says that the scan stopped before the end (Ctrl-C, SIGTERM, a crash):
a reader that has only the file must not take a partial report for a finished one.

JSON, HTML and SARIF carry the scan's state in their summary. CSV and JSONL, written row by row,
end with one more row, `status` "incomplete", no path, and the reason in `error`; JUnit XML with
one more test case, an `<error>` (what GitLab and Jenkins show). A complete report has none, so
it stays as it was. A scan killed outright (SIGKILL, power loss) cannot write it: its exit
status says so."""

from __future__ import annotations

from typing import Any

from scanner.reports.base import FIELDS

INCOMPLETE = "incomplete"  # the marker row's status
STOPPED = {"interrupted": "was interrupted", "terminated": "was terminated", "failed": "failed"}


def stopped(summary: dict[str, Any]) -> str:
    """One sentence: how the scan ended, and what the report lacks."""
    how = STOPPED.get(summary["state"], f"ended {summary['state']}")
    return (
        f"the scan {how} after {summary['files']} files: this report is partial, "
        "the files not reached are missing"
    )


def marker_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The last row of a partial CSV or JSONL report: every column empty but these two."""
    return {**dict.fromkeys(FIELDS), "status": INCOMPLETE, "error": stopped(summary)}
