"""What a scan produces per file: a light module (no numpy, no Pillow) that the report writers
and the console import without pulling in the scanning machinery."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ScanResult:
    """One row of the report: a scored image or the reason it could not be scored."""

    path: str
    status: str  # "ok" | "error"
    label: str | None = None  # labels[1] ("ai") when score >= threshold, else labels[0]
    score: float | None = None  # probability of labels[1], 0..1
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    evidence: str | None = None  # provenance evidence from the metadata ("" when none)
    reason: str | None = None  # "model" | "metadata": what decided the label
    cached: bool = False  # the score came from the --cache file
    baseline: str | None = None  # with --baseline: the file's decision, "new" if flagged

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field, once per report row.
        return {f.name: getattr(self, f.name) for f in fields(self)}
