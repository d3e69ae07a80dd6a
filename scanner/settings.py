"""`ScanSettings`: everything that decides a scan's rows, in one typed record, whoever asks for
the scan (`facescan`, `facescan serve`, a program). Built once (`ScanSettings.of`, the model
resolved there), checked once (`check` names the option at fault), handed to `Scanner` as it is;
the engine gets its own sub-record, `engine`, as it is too.

A new setting is a field here, its option (scanner/cli_options.py, shared by both commands)
and its use. Light: no numpy, Pillow or onnxruntime (`--help` and usage errors stay fast).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from scanner import engines
from scanner.engines.base import EngineSettings
from scanner.errors import SettingError
from scanner.limits import MAX_DETECT_SIZE, SIZE_MULTIPLE, DecodeLimits, valid_detect_size
from scanner.shipped import resolve_model

FACES_MODES = ("auto", "off")


@dataclass(frozen=True)
class ScanSettings:
    # model (resolved), provider, threads, workers, batch size; where the engine runs
    engine: EngineSettings
    # flag when score >= this: a number, the name of one of the model's operating points (its
    # metadata's, e.g. fpr1), or None: the model's own
    threshold: float | str | None = None
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    cache: Path | None = None  # SQLite result cache (None: none)
    use_metadata: bool = True  # AI evidence in metadata or a credential labels a file positive
    faces: str = "auto"  # auto: score faces when the model asks; off: whole images
    min_face: int | None = None  # smaller faces are listed, not scored (None: the model's)
    detect_size: int | None = None  # the longer side detection runs at, at most (the model's)
    # PEM files: the anchors a valid C2PA signer chains to (checked when the Scanner opens)
    c2pa_trust: tuple[Path, ...] = ()

    @classmethod
    def of(
        cls, model: str | os.PathLike[str] | None = None, precision: str = "auto", **values: Any
    ) -> ScanSettings:
        """Settings by name, as `Scanner(...)` and the command lines (`scanner.cli_options`) give
        them: each keyword a field of ScanSettings, of its `engine` record (whose `name` is the
        keyword `engine`) or of its `limits` (`max_pixels`, `max_bytes`), or `limits` whole; an
        unknown name is a TypeError. The model (a shipped name or a file; `precision` picks a
        shipped one's) is resolved here, once."""
        engine = {"model": resolve_model(model, precision), "name": values.pop("engine", "local")}
        engine |= _taken(values, EngineSettings)
        limits = values.pop("limits", None) or DecodeLimits(**_taken(values, DecodeLimits))
        if values.get("cache") is not None:
            values["cache"] = Path(values["cache"])
        values["c2pa_trust"] = tuple(Path(p) for p in values.get("c2pa_trust") or ())
        return cls(EngineSettings(**engine), limits=limits, **values)

    @staticmethod
    def names() -> frozenset[str]:
        """Every keyword `of` takes."""
        nested = {f.name for f in (*fields(EngineSettings), *fields(DecodeLimits))}
        own = {f.name for f in fields(ScanSettings)}
        return frozenset((own | nested | {"precision"}) - {"name"})  # "engine": the engine's name

    @property
    def model(self) -> Path:
        return self.engine.model

    def problems(self) -> list[str]:
        """Every setting that cannot work, each naming its option."""
        e = self.engine
        problems = [
            f"{option} must be at least 1 (got {value})"
            for option, value in (
                ("--batch-size", e.batch_size),
                ("--workers", e.workers),
                ("--threads", e.threads),
                ("--actors", e.actors),
                ("--max-pixels", self.limits.max_pixels),
                ("--max-bytes", self.limits.max_bytes),
            )
            if value is not None and value < 1
        ]
        number = _number(self.threshold)
        if number is not None and not 0.0 <= number <= 1.0:
            problems.append(f"--threshold must be in 0..1 (got {self.threshold})")
        if self.faces not in FACES_MODES:
            problems.append(f"--faces {self.faces!r}: choose from {', '.join(FACES_MODES)}")
        if self.min_face is not None and self.min_face < 0:
            problems.append(f"--min-face must be 0 or more (got {self.min_face})")
        if self.detect_size is not None and not valid_detect_size(self.detect_size):
            problems.append(
                f"--detect-size must be a multiple of {SIZE_MULTIPLE} in {SIZE_MULTIPLE}.."
                f"{MAX_DETECT_SIZE} (got {self.detect_size})"
            )
        if e.name not in engines.names():
            problems.append(f"--engine {e.name!r}: choose from {', '.join(engines.names())}")
        return problems

    def check(self) -> None:
        """Raise a SettingError naming every setting that cannot work, before anything loads."""
        if problems := self.problems():
            raise SettingError("; ".join(problems))

    def header(self) -> dict[str, Any]:
        """The report header of a scan stopped before its model loaded: what the settings name
        (labels: the metadata's defaults). `Scanner.header` once it has loaded."""
        from scanner.metadata import ModelInfo

        number = _number(self.threshold)
        name = None if number is not None or self.threshold is None else str(self.threshold)
        return model_header(self.model, self.engine.provider, number, ModelInfo.labels, None, name)


def model_header(
    model: Path,
    provider: str,
    threshold: float | None,
    labels: Sequence[str],
    preprocess: dict[str, Any] | None = None,
    threshold_name: str | None = None,
) -> dict[str, Any]:
    """What every report (and the service) says about the model that scored it. The threshold's
    name is there only when it is one of the model's operating points."""
    header = {
        "model": str(model),
        "provider": provider,
        "threshold": threshold,
        "labels": list(labels),
        "preprocess": preprocess,
    }
    return header | ({"threshold_name": threshold_name} if threshold_name else {})


def _number(threshold: float | str | None) -> float | None:
    """--threshold as a number, or None when it is absent or an operating point's name."""
    if threshold is None or isinstance(threshold, float | int):
        return threshold
    try:
        return float(threshold)
    except ValueError:
        return None


def _taken(values: dict[str, Any], record: type) -> dict[str, Any]:
    """The keywords that name fields of the dataclass `record`, taken out of `values`."""
    return {f.name: values.pop(f.name) for f in fields(record) if f.name in values}
