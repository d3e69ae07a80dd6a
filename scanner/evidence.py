"""A file's evidence, weighed: what its metadata says (the byte scan, `scanner.provenance`) and
what its C2PA credential holds up to (`scanner.credentials`) become the report's `evidence`
line, its `provenance` object, and the reason, if any, that labels it positive whatever the
model scored (docs/provenance.md):

- a valid credential (trusted signer, intact) that declares AI creation: reason `provenance`;
- an intact credential from an untrusted signer that declares it, or other AI metadata (XMP,
  generator text, ...): reason `metadata`, as the byte scan alone labels it, so that installing
  the [provenance] extra never flags less;
- an AI edit of a real ingredient, a camera capture, and every credential that fails validation
  or cannot be read: reported, never evidence. Once the library has read a credential, the byte
  scan's `c2pa:` items no longer count: they would label a tampered AI claim positive.

Without the extra, a manifest the byte scan found is reported as not verified, and its `c2pa:`
items count as they always have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.credentials import NOT_VERIFIED, Credentials
from scanner.provenance import C2PA_PREFIX, SEPARATOR, declares_ai, found_manifest

PROVENANCE, METADATA = "provenance", "metadata"  # the reasons evidence gives a label
UNVERIFIED = "unverified"  # the validation of a credential read without the library


@dataclass(frozen=True)
class Weighed:
    evidence: str  # the report's evidence column: the items, "; "-separated
    provenance: dict[str, Any] | None  # the report's provenance object; None: no C2PA manifest
    reason: str | None  # PROVENANCE or METADATA when the evidence labels the file positive


def weigh(found: str, credentials: Credentials | None) -> Weighed:
    """`found`: the byte scan's items (`provenance.inspect`); `credentials`: the manifest as the
    library read it, None when there is none or the library is not installed."""
    items = [item for item in found.split(SEPARATOR) if item]
    if credentials is None:
        if not found_manifest(found):
            return Weighed(found, None, METADATA if declares_ai(found) else None)
        unverified = {"validation": UNVERIFIED, "summary": NOT_VERIFIED}
        return Weighed(_join([*items, NOT_VERIFIED]), unverified, _metadata(items))
    others = [item for item in items if not item.startswith(C2PA_PREFIX)]
    summary = credentials.summary()
    provenance = credentials.to_dict() | {"summary": summary}
    if credentials.proves_ai_creation:
        reason: str | None = PROVENANCE
    elif credentials.validation == "untrusted" and credentials.declares_ai_creation:
        reason = METADATA
    else:
        reason = _metadata(others)
    return Weighed(_join([*others, summary]), provenance, reason)


def _metadata(items: list[str]) -> str | None:
    return METADATA if declares_ai(_join(items)) else None


def _join(items: list[str]) -> str:
    return SEPARATOR.join(items)
