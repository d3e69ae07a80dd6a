"""The scan: walk -> decode/preprocess in parallel workers -> batched inference -> results.

Memory stays flat whatever the tree's size: the walker streams, at most `workers * 4` chunks of
files are in flight, and results leave in walk order as soon as their batch is scored.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import numpy as np
from PIL import Image

from scanner.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageError, load, to_rgb, upright
from scanner.preprocess import PreprocessSpec, fit_geometry, normalize
from scanner.session import ModelSession
from scanner.walk import WalkError, WalkItem, walk

CHUNK = 8  # files per worker task: amortises inter-process overhead, keeps latency low
TASKS_PER_WORKER = 4  # in-flight tasks per worker: enough to hide inference, bounded memory


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decoded:
    """What a worker sends back: uint8 crops ready to batch, or an error."""

    path: str
    crops: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def decode_item(item: WalkItem, spec: PreprocessSpec, limits: DecodeLimits) -> Decoded:
    """Decode and crop one walked file; every failure becomes an error, never an exception."""
    if isinstance(item, WalkError):
        return Decoded(item.path, error=item.message)
    try:
        image = load(item.path, limits.max_pixels, limits.max_bytes, spec.draft_size)
        crops = fit_geometry(image.image, spec)
    except ImageError as e:
        return Decoded(item.path, error=str(e))
    except MemoryError:
        return Decoded(item.path, error="out of memory while decoding (lower --max-pixels)")
    except Exception as e:  # a decoder bug must cost one row, not the scan
        return Decoded(item.path, error=f"unexpected decoder error: {type(e).__name__}: {e}")
    return Decoded(item.path, crops, image.width, image.height, image.format, image.sha256)


def decode_chunk(
    items: list[WalkItem], spec: PreprocessSpec, limits: DecodeLimits
) -> list[Decoded]:
    return [decode_item(item, spec, limits) for item in items]


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Scanner:
    """Scores images with a facescan ONNX model. The CLI is a thin layer over this class.

    >>> scanner = Scanner()                       # the shipped model, best provider
    >>> for result in scanner.scan(["photos/"]):  # ScanResult per candidate file
    ...     print(result.path, result.label, result.score)
    >>> scanner.score(Image.open("face.jpg"))     # probability that one image is AI-generated
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        provider: str = "auto",
        threshold: float | None = None,
        workers: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        limits: DecodeLimits = DecodeLimits(),
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is not in 0..1")
        self.session = ModelSession(model, provider=provider, threads=threads)
        self.info = self.session.info
        self.spec = self.info.preprocess
        self.threshold = self.info.threshold if threshold is None else threshold
        self.workers = available_cores() if workers is None else workers
        self.batch_size = batch_size
        self.limits = limits

    def label(self, score: float) -> str:
        return self.info.labels[1] if score >= self.threshold else self.info.labels[0]

    def score(self, image: Image.Image) -> float:
        """Probability that one in-memory image is AI-generated (EXIF orientation honoured)."""
        crops = fit_geometry(to_rgb(upright(image)), self.spec)
        return float(self.session.predict(normalize(crops, self.spec)).mean())

    def scan(
        self,
        paths: Iterable[str | os.PathLike[str]],
        exclude: Iterable[str] = (),
        follow_symlinks: bool = False,
    ) -> Generator[ScanResult, None, None]:
        """One ScanResult per candidate file under `paths`, in walk order."""
        items = walk([os.fspath(p) for p in paths], exclude, follow_symlinks)
        batch: list[Decoded] = []
        for decoded in self._decode(items):
            batch.append(decoded)
            if len(batch) >= self.batch_size:
                yield from self._score_batch(batch)
                batch = []
        yield from self._score_batch(batch)

    def _decode(self, items: Iterator[WalkItem]) -> Iterator[Decoded]:
        if self.workers <= 1:
            for item in items:
                yield decode_item(item, self.spec, self.limits)
            return
        context = multiprocessing.get_context("spawn")  # never fork a process holding ORT threads
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_sigint)
        pending: deque[Future[list[Decoded]]] = deque()
        try:
            while chunk := list(islice(items, CHUNK)):
                pending.append(pool.submit(decode_chunk, chunk, self.spec, self.limits))
                if len(pending) >= self.workers * TASKS_PER_WORKER:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _score_batch(self, batch: list[Decoded]) -> Iterator[ScanResult]:
        ok = [d for d in batch if d.crops is not None]
        scores: dict[int, float] = {}
        if ok:
            crops = np.concatenate([d.crops for d in ok if d.crops is not None])
            per_crop = self.session.predict(normalize(crops, self.spec))
            per_image = per_crop.reshape(len(ok), self.spec.crops_per_image).mean(axis=1)
            scores = {id(d): float(s) for d, s in zip(ok, per_image, strict=True)}
        for d in batch:
            if d.crops is None:
                yield ScanResult(d.path, "error", error=d.error)
            else:
                s = scores[id(d)]
                yield ScanResult(
                    d.path, "ok", self.label(s), s, None, d.width, d.height, d.format, d.sha256
                )
