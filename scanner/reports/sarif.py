"""SARIF 2.1.0 (`--format sarif`, `.sarif`): the format GitHub code scanning shows on a pull
request, and most security dashboards read.

One run, tool `facescan` with three rules (`ai-generated-face`, `unreadable-image`,
`invalid-content-credential`), and one result per flagged or unreadable file and per file whose
C2PA credential fails validation (a tampered credential; a file can be both): its path as the
location (a relative URI, percent-encoded
byte for byte, so any file name is a valid URI), the score and the reason in the message, the
row's values in `properties`, and the file's sha256 as a fingerprint, so an alert follows the
content, not the name. What the `--baseline` says becomes a SARIF suppression: `accepted` for
an approved file, `underReview` for a pending one. Like the JSON report, the file is streamed
into a temporary file and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scanner.reports.base import AtomicFile, ReportFormat, printable
from scanner.reports.findings import invalid_credential, message, verdict
from scanner.results import ScanResult
from scanner.version import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
AI_RULE, UNREADABLE_RULE = "ai-generated-face", "unreadable-image"
CREDENTIAL_RULE = "invalid-content-credential"
RULES = [
    {
        "id": AI_RULE,
        "name": "AiGeneratedFace",
        "shortDescription": {"text": "Image flagged as an AI-generated face"},
        "fullDescription": {
            "text": "The model scored the image at or above its threshold, or the file's "
            "metadata declares AI generation. A person should look at it: a score is a reason "
            "to review, not proof."
        },
        "help": {
            "text": "Review the image. If it is fine, record the decision in the facescan "
            "baseline (decision: approved); if it is AI-generated, remove it or mark it "
            "confirmed-ai."
        },
        "defaultConfiguration": {"level": "error"},
    },
    {
        "id": UNREADABLE_RULE,
        "name": "UnreadableImage",
        "shortDescription": {"text": "Image that could not be read"},
        "fullDescription": {
            "text": "The file is empty, truncated, corrupt, not an image, too large, or "
            "could not be opened, so it was not scored."
        },
        "defaultConfiguration": {"level": "warning"},
    },
    {
        "id": CREDENTIAL_RULE,
        "name": "InvalidContentCredential",
        "shortDescription": {"text": "C2PA Content Credential that fails validation"},
        "fullDescription": {
            "text": "The image carries a C2PA manifest whose signature or content hashes do not "
            "check out: the pixels or the claim changed after signing. The credential is not "
            "used as evidence of anything; the tampering itself is worth a look."
        },
        "defaultConfiguration": {"level": "warning"},
    },
]
CREDENTIAL_RULE_INDEX = 2
# verdict -> (rule index, level, suppression status)
RESULT_KIND = {
    "flagged": (0, "error", None),
    "pending": (0, "error", "underReview"),
    "approved": (0, "error", "accepted"),
    "error": (1, "warning", None),
}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def uri(path: str) -> str:
    """A path as a URI reference: relative paths stay relative (GitHub resolves them against
    the repository root), absolute ones become file: URIs. Every byte but unreserved ones and
    / is percent-encoded, so spaces, `#`, `%` and undecodable names all survive."""
    raw = os.fsencode(path)
    while raw.startswith(b"./"):
        raw = raw[2:]
    encoded = quote(raw, safe="/")
    return f"file://{encoded}" if raw.startswith(b"/") else encoded


class SarifReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._out = AtomicFile(path)
        self._model = model
        self._positive = model["labels"][1]
        tool = {
            "driver": {
                "name": "facescan",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": RULES,
            }
        }
        self._out.write(
            f'{{"$schema": {dumps(SCHEMA)}, "version": "2.1.0", "runs": [\n'
            f'{{"tool": {dumps(tool)},\n"results": ['
        )
        self._first = True

    def write(self, result: ScanResult) -> None:
        kind = verdict(result, self._positive)
        if kind != "pass":
            rule, level, suppression = RESULT_KIND[kind]
            item = self._result(result, rule, level, message(result, self._model))
            if suppression:
                item["suppressions"] = [
                    {"kind": "external", "status": suppression, "justification": kind}
                ]
            self._add(item)
        if credential := invalid_credential(result):
            self._add(self._result(result, CREDENTIAL_RULE_INDEX, "warning", credential))

    def _add(self, item: dict[str, Any]) -> None:
        self._out.write(("\n" if self._first else ",\n") + dumps(item))
        self._first = False

    def _result(self, result: ScanResult, rule: int, level: str, text: str) -> dict[str, Any]:
        location = {
            "physicalLocation": {
                "artifactLocation": {"uri": uri(result.path)},
                # GitHub requires a start line; an image has no lines, so the file's first.
                "region": {"startLine": 1},
            }
        }
        item: dict[str, Any] = {
            "ruleId": RULES[rule]["id"],
            "ruleIndex": rule,
            "level": level,
            "message": {"text": text},
            "locations": [location],
            "properties": self._properties(result),
        }
        if result.sha256:
            item["partialFingerprints"] = {"imageSha256/v1": result.sha256}
        return item

    def _properties(self, result: ScanResult) -> dict[str, Any]:
        """The row's values for a reader of the SARIF file (the path as the reports write it)."""
        values = {k: v for k, v in result.as_dict().items() if v not in (None, "", False)}
        return values | {"path": printable(result.path)}

    def close(self, summary: dict[str, Any]) -> None:
        invocation = {
            "executionSuccessful": bool(summary["complete"]),
            "properties": {k: v for k, v in summary.items() if k != "error_files"},
        }
        self._out.write(f'\n],\n"invocations": [{dumps(invocation)}]}}\n]}}\n')
        self._out.commit()


FORMATS = [
    ReportFormat(
        "sarif",
        (".sarif",),
        "SARIF 2.1.0, a result per finding (GitHub code scanning)",
        SarifReport,
    )
]
