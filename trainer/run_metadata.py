"""The ModelInfo an export writes into its ONNX file, from a run's record: one place for both
model families (trainer/export.py, trainer/probe_export.py)."""

from __future__ import annotations

import datetime
from typing import Any

from scanner.metadata import ModelInfo
from scanner.preprocess import PreprocessSpec
from trainer import data


def exported_info(record: dict[str, Any], extra: dict[str, Any]) -> ModelInfo:
    """The run's preprocessing, labels and threshold, `extra` and the export's time."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return ModelInfo(
        preprocess=PreprocessSpec.from_dict(record["preprocess"]),
        labels=data.LABELS,
        threshold=float(record["calibration"]["threshold"]),
        output="probability",
        extra={**extra, "exported": now},
    )
