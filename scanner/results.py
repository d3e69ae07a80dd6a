"""What a scan produces per file: a light module (no numpy, no Pillow) that the report writers
and the console import without pulling in the scanning machinery."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FaceResult:
    """One face the detector found: its box in the image's pixels (after EXIF orientation), the
    detector's confidence, and its own score and label (None when it is smaller than
    --min-face: listed, not judged)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    detection: float
    score: float | None = None
    label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "detection": round(self.detection, 4),
            "score": None if self.score is None else round(self.score, 6),
            "label": self.label,
        }


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
    reason: str | None = None  # "model" | "metadata" | "provenance": what decided the label
    cached: bool = False  # the score came from the --cache file
    # Every face found, when the model scores face crops (None: no detection ran). The image's
    # score is its highest face score; with no face large enough, the whole image is scored.
    faces: tuple[FaceResult, ...] | None = None
    baseline: str | None = None  # with --baseline: the file's decision, "new" if flagged
    # The C2PA credential (None: no manifest): its fields (`credentials.Credentials.to_dict`)
    # and a one-line "summary"; without the [provenance] extra only "validation": "unverified"
    # and the summary that says so.
    provenance: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field, once per report row.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.faces is not None:
            values["faces"] = [face.as_dict() for face in self.faces]
        return values
