"""What the CI report formats (JUnit, SARIF) share: a row's verdict and the sentence that says
why. A CI report lists findings, while the exit status (`--fail-on`) decides the job, so a
format shows every finding with what the `--baseline` says about it. A C2PA credential that
fails validation (a tampered credential) is a finding of its own, whatever the row's label."""

from __future__ import annotations

from typing import Any

from scanner.baseline import APPROVED, CONFIRMED, NEW, PENDING
from scanner.policy import FLAGGED_OUTCOME
from scanner.results import ScanResult

# A row's verdict: "error" (unreadable), "flagged" (no review lets it through), "pending"
# (flagged, recorded in the baseline, not reviewed), "approved" (flagged, approved) or "pass".
VERDICT_OF_OUTCOME = {"ai": "flagged", "pending": "pending", None: "approved"}
BASELINE_SAYS = {
    PENDING: " (pending review in the baseline)",
    APPROVED: " (approved in the baseline)",
    CONFIRMED: " (confirmed AI in the baseline)",
}


def verdict(result: ScanResult, positive_label: str) -> str:
    if result.status == "error":
        return "error"
    if result.label != positive_label:
        return "pass"
    return VERDICT_OF_OUTCOME[FLAGGED_OUTCOME[result.baseline or NEW]]


def message(result: ScanResult, model: dict[str, Any]) -> str:
    """One sentence for a person: why the file is a finding."""
    if result.status == "error":
        return f"could not be read: {result.error}"
    score = f"score {result.score:.3f}" if result.score is not None else "no score"
    if result.reason == "provenance" and result.provenance:
        why = f"its valid C2PA credential declares AI creation ({result.provenance['summary']})"
        why += f"; {score}"
    elif result.reason == "metadata":
        why = f"its metadata declares AI generation ({result.evidence}); {score}"
    else:
        why = f"{score} >= threshold {float(model['threshold']):.3f}"
    return f"flagged {result.label}: {why}{BASELINE_SAYS.get(result.baseline or NEW, '')}"


def invalid_credential(result: ScanResult) -> str | None:
    """The sentence for a C2PA credential that fails validation (the pixels or the claim
    changed after signing), None when the row has no such credential."""
    found = result.provenance
    if found is None or found.get("validation") != "invalid":
        return None
    return f"C2PA credential fails validation, tampered or damaged: {found['summary']}"
