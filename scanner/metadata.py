"""What a facescan ONNX model says about itself, written by the exporter and read by the scanner.

Each value is JSON under a `facescan.` key of the ONNX `metadata_props`, so the runtime needs
nothing but the file (no eval of strings, no sidecar). `ModelInfo.from_props` names the key that
is missing or wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from scanner.errors import InvalidModelError, UsageError
from scanner.preprocess import PreprocessSpec

PREFIX = "facescan."
SCHEMA_VERSION = 1
OUTPUT_KINDS = ("probability", "logit")


class InvalidThresholdError(UsageError, ValueError):
    """--threshold is neither a number in 0..1 nor one of the model's operating points."""


@dataclass(frozen=True)
class ModelInfo:
    preprocess: PreprocessSpec
    # Output index -> label. The model's output is one score per image: the probability
    # (or logit, see `output`) of `labels[1]`, the positive class a scan flags.
    labels: tuple[str, str] = ("real", "ai")
    threshold: float = 0.5  # flag when score >= threshold; chosen on validation data
    output: str = "probability"
    extra: dict[str, Any] = field(default_factory=dict)  # metrics, versions, data fingerprint...

    def __post_init__(self) -> None:
        if len(self.labels) != 2 or len(set(self.labels)) != 2:
            raise InvalidModelError(f"labels must be two distinct names, got {self.labels!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise InvalidModelError(f"threshold {self.threshold} is not in 0..1")
        if self.output not in OUTPUT_KINDS:
            raise InvalidModelError(f"output {self.output!r} is not one of {OUTPUT_KINDS}")

    @property
    def positive_label(self) -> str:
        return self.labels[1]

    @property
    def operating_points(self) -> dict[str, float]:
        """Named thresholds measured on the validation reals (`fpr1`: flags at most 1 % of
        them), by name; empty for a model exported without them."""
        points = self.extra.get("operating_points") or {}
        return {str(name): float(value) for name, value in points.items()}

    def threshold_for(self, wanted: float | str | None) -> tuple[float, str | None]:
        """The threshold a scan flags at, and its name: the model's own (None given: named
        after the operating point it equals, if any), a number in 0..1, or an operating
        point's name. InvalidThresholdError names what this model offers."""
        if wanted is None:
            named = [n for n, v in self.operating_points.items() if v == self.threshold]
            return self.threshold, (named[0] if named else None)
        if isinstance(wanted, str):
            try:
                wanted = float(wanted)
            except ValueError:
                if wanted not in self.operating_points:
                    offered = ", ".join(self.operating_points) or "none: give a number"
                    raise InvalidThresholdError(
                        f"threshold {wanted!r} is not an operating point of this model "
                        f"(it has: {offered})"
                    ) from None
                return self.operating_points[wanted], wanted
        if not 0.0 <= wanted <= 1.0:
            raise InvalidThresholdError(f"threshold {wanted} is not in 0..1")
        return float(wanted), None

    def to_props(self) -> dict[str, str]:
        """ONNX metadata_props entries (key -> JSON text)."""
        values: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "preprocess": self.preprocess.to_dict(),
            "labels": list(self.labels),
            "threshold": self.threshold,
            "output": self.output,
            **self.extra,
        }
        return {PREFIX + key: json.dumps(value, sort_keys=True) for key, value in values.items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelInfo:
        """Parse metadata_props; raise InvalidModelError naming what is missing or malformed."""
        values: dict[str, Any] = {}
        for key, text in props.items():
            if not key.startswith(PREFIX):
                continue
            try:
                values[key[len(PREFIX) :]] = json.loads(text)
            except json.JSONDecodeError:
                raise InvalidModelError(
                    f"metadata {key} is not valid JSON: {text[:80]!r}"
                ) from None
        missing = [k for k in ("preprocess", "labels", "threshold") if k not in values]
        if missing:
            found = ", ".join(sorted(values)) or "none"
            raise InvalidModelError(
                f"not a facescan model: metadata lacks {', '.join(PREFIX + k for k in missing)} "
                f"(found facescan keys: {found}); export it with `facescan-train export`"
            )
        try:
            return cls(
                preprocess=PreprocessSpec.from_dict(values.pop("preprocess")),
                labels=tuple(values.pop("labels")),
                threshold=float(values.pop("threshold")),
                output=values.pop("output", "probability"),
                extra={k: v for k, v in values.items() if k != "schema_version"},
            )
        except (TypeError, ValueError) as e:
            raise InvalidModelError(f"invalid facescan metadata: {e}") from None
