"""`Scanner`: the coordinator of a scan. walk -> engine (prepare + score) -> result rows.

The scanner owns what is the same whatever runs the model: walking, the result cache, the
provenance evidence and labelling, and building one `ScanResult` per file. An engine
(`scanner.engines`) only decides where decoding and inference run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from scanner import credentials, engines
from scanner.cache import CachedResult, ResultCache, file_sha256, scan_key
from scanner.credentials import TrustSettings
from scanner.decode import to_rgb, upright
from scanner.errors import UsageError
from scanner.evidence import weigh
from scanner.faces import shared_detector
from scanner.limits import DecodeLimits
from scanner.preprocess import PreprocessSpec
from scanner.results import FaceResult, ScanResult
from scanner.settings import ScanSettings, model_header
from scanner.source import Source
from scanner.walk import Shard
from scanner.work import Decoded, Prepare

if TYPE_CHECKING:
    from PIL import Image


class Scanner:
    """Scores images with a facescan ONNX model. The CLI is a thin layer over this class.

    >>> scanner = Scanner()                       # the shipped model, best provider
    >>> for result in scanner.scan(["photos/"]):  # ScanResult per candidate file
    ...     print(result.path, result.label, result.score)
    >>> scanner.score(Image.open("face.jpg"))     # probability that one image is AI-generated

    `Scanner(settings)` takes a `ScanSettings`; `Scanner(model, provider=..., ...)` names the same
    settings by keyword (`ScanSettings.of`). `engine` is "local" (threads and one onnxruntime
    session) or any other name in `scanner.engines.names()`; `ray_address`, `actors` and
    `progress` configure the Ray engine, `batch_wait_ms` the batcher (the HTTP service's engine).
    `c2pa_trust`: PEM files of the certificates a C2PA signer must chain to for its credential to
    be valid (docs/provenance.md). Close the scanner (or use it as a context manager)
    to write the cache out.
    """

    def __init__(
        self,
        model: ScanSettings | str | os.PathLike[str] | None = None,
        provider: str = "auto",
        threshold: float | str | None = None,
        workers: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        limits: DecodeLimits | None = None,
        cache: str | os.PathLike[str] | None = None,
        use_metadata: bool = True,
        engine: str = "local",
        ray_address: str | None = None,
        actors: int = 1,
        progress: bool = False,
        batch_wait_ms: float = 5.0,
        faces: str = "auto",
        min_face: int | None = None,
        c2pa_trust: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        if isinstance(model, ScanSettings):
            settings = model
        else:
            settings = ScanSettings.of(
                model, provider=provider, threshold=threshold, workers=workers,
                batch_size=batch_size, threads=threads, limits=limits, cache=cache,
                use_metadata=use_metadata, engine=engine, ray_address=ray_address,
                actors=actors, progress=progress, batch_wait_ms=batch_wait_ms, faces=faces,
                min_face=min_face, c2pa_trust=c2pa_trust,
            )  # fmt: skip
        settings.check()
        self.settings = settings
        trust = trust_settings(settings.c2pa_trust)  # a bad file stops the scan before the model
        self.engine = engines.create(settings.engine.name, settings.engine)
        self.model_path = settings.model
        self.info = self.engine.info
        self.spec = face_settings(self.info.preprocess, settings)
        # the model's own, a number, or an operating point by name (a bad name stops here)
        self.threshold, self.threshold_name = self.info.threshold_for(settings.threshold)
        # AI evidence in a file's metadata or credential labels it positive whatever the score.
        self.use_metadata = settings.use_metadata
        detector = "cuda" if settings.engine.provider == "cuda" else "cpu"
        if self.spec.faces is not None:  # a detector that cannot load stops the scan here
            shared_detector(self.spec.faces.detect_size, detector, os.getpid())
        self.cache = None
        if settings.cache is not None:
            anchors = "" if trust is None else trust.anchors
            key = scan_key(file_sha256(self.model_path), self.spec.to_dict(), anchors)
            self.cache = ResultCache(settings.cache, key)
        reader = None if self.cache is None else self.cache.reader()
        self.prepare = Prepare(self.spec, settings.limits, reader, detector, trust)

    @property
    def header(self) -> dict[str, Any]:
        """What every report (and the service) says about the model that scored it."""
        return model_header(
            self.model_path, self.provider, self.threshold, self.info.labels,
            self.spec.to_dict(), self.threshold_name,
        )  # fmt: skip

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider the scan's inference runs on."""
        return self.engine.provider

    def label(self, score: float) -> str:
        return self.info.labels[1] if score >= self.threshold else self.info.labels[0]

    def score(self, image: Image.Image) -> float:
        """Probability that one in-memory image is AI-generated (EXIF orientation honoured):
        its highest face score when the model scores faces."""
        crops = self.prepare.image_crops(to_rgb(upright(image)))
        return float(self.engine.score(crops).max())

    def scan(
        self,
        source: Source | Iterable[str | os.PathLike[str]],
        exclude: Iterable[str] = (),
        follow_symlinks: bool = False,
        shard: Shard | None = None,
    ) -> Generator[ScanResult, None, None]:
        """One ScanResult per candidate file of `source` (a walk error is an error row), in
        walk order: the one way every front end scans. `source` is a `Source`, or paths
        walked with `exclude`, `follow_symlinks` and `shard` (`Source.of`)."""
        if not isinstance(source, Source):
            source = Source.of(source, None, False, exclude, follow_symlinks, shard)
        for batch in self.engine.run(source.items(), self.prepare):
            self._remember(batch)  # committed before reported: a killed scan keeps every row
            for decoded in batch:
                yield self._result(decoded)

    def result(self, decoded: Decoded) -> ScanResult:
        """The row `scan` yields for one prepared and scored item, for front ends that feed
        the engine themselves (the HTTP service): the same labelling, the same fields."""
        return self._result(decoded)

    def close(self) -> None:
        """Stop the engine and write the cache out (its file alone then holds every row)."""
        self.engine.close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remember(self, batch: list[Decoded]) -> None:
        """Store a batch's fresh scores in the cache, in one transaction."""
        if self.cache is None:
            return
        for d in batch:
            if not d.cached and d.scores and d.sha256 and d.width and d.height:
                stored = CachedResult(
                    d.scores, d.width, d.height, d.format or "", d.evidence,
                    d.faces, d.scored_faces, d.credentials,
                )  # fmt: skip
                self.cache.put(d.sha256, stored)
        self.cache.commit()

    def _faces(self, d: Decoded) -> tuple[FaceResult, ...] | None:
        """Every face found, the scored ones with their own score and label."""
        if d.faces is None:
            return None
        scores = dict(zip(d.scored_faces, d.scores or (), strict=False))
        return tuple(
            FaceResult(
                face.box,
                face.score,
                scores.get(i),
                self.label(scores[i]) if i in scores else None,
            )
            for i, face in enumerate(d.faces)
        )

    def _result(self, d: Decoded) -> ScanResult:
        if d.score is None:
            return ScanResult(d.path, "error", error=d.error or "not scored", faces=None)
        weighed = weigh(d.evidence, d.credentials)
        reason = weighed.reason if self.use_metadata else None  # --ignore-metadata: the score
        label = self.info.positive_label if reason else self.label(d.score)
        return ScanResult(
            d.path,
            "ok",
            label,
            d.score,
            None,
            d.width,
            d.height,
            d.format,
            d.sha256,
            evidence=weighed.evidence,
            reason=reason or "model",
            cached=d.cached,
            faces=self._faces(d),
            provenance=weighed.provenance,
        )


def trust_settings(files: Sequence[str | os.PathLike[str]]) -> TrustSettings | None:
    """The trust anchors of --c2pa-trust FILE..., checked now: a file that is not a usable
    trust list, or a trust list without the library to verify with, stops the scan."""
    if not files:
        return None
    if not credentials.available():
        hint = credentials.INSTALL_HINT
        raise UsageError(f"--c2pa-trust needs c2pa-python to verify credentials: {hint}")
    try:
        return TrustSettings.from_files(*files)
    except ValueError as e:
        raise UsageError(f"--c2pa-trust: {e}") from None


def face_settings(spec: PreprocessSpec, settings: ScanSettings) -> PreprocessSpec:
    """The model's preprocessing with --faces, --min-face and --detect-size (checked by the
    settings) applied: "auto" crops faces when the model's metadata asks for it, "off" scores
    whole images (as a model without face crops does)."""
    if settings.faces == "off" or spec.faces is None:
        return dataclasses.replace(spec, faces=None)
    faces = spec.faces
    if settings.min_face is not None:
        faces = dataclasses.replace(faces, min_face=settings.min_face)
    if settings.detect_size is not None:
        faces = dataclasses.replace(faces, detect_size=settings.detect_size)
    return dataclasses.replace(spec, faces=faces)
