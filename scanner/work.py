"""The unit of work between the scanner and its engines: a walked file becomes a `Decoded` item
(pixels ready to score, a cache hit, or an error) through `Prepare`, and an engine scores it.

`Prepare` runs wherever an engine decodes (threads here, Ray tasks on a cluster): it is a small
frozen value, cheap to send, and it never raises for a bad file. `score_crops` is how every
engine turns a batch of crops into scores, so all engines score alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from scanner.cache import CacheReader
from scanner.decode import ImageError, checked_bytes, decode, read_file
from scanner.limits import DecodeLimits
from scanner.preprocess import PreprocessSpec, fit_geometry, normalize
from scanner.walk import WalkError, WalkItem

if TYPE_CHECKING:
    from scanner.session import ModelSession


@dataclass(frozen=True)
class Decoded:
    """One walked file on its way through an engine."""

    path: str
    crops: np.ndarray | None = None  # uint8 (crops_per_image, N, N, 3) until scored
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    error: str | None = None
    evidence: str = ""
    score: float | None = None  # set by the engine, or by the cache (then `cached`)
    cached: bool = False

    @property
    def needs_scoring(self) -> bool:
        return self.crops is not None and self.score is None


@dataclass(frozen=True)
class Prepare:
    """Walked item -> `Decoded`: read, hash, look up the cache, decode, crop. Every failure
    becomes an error item, never an exception: a bad file costs its row, not the scan."""

    spec: PreprocessSpec
    limits: DecodeLimits = DecodeLimits()
    cache: CacheReader | None = None

    def __call__(self, item: WalkItem) -> Decoded:
        if isinstance(item, WalkError):
            return Decoded(item.path, error=item.message)
        return self._guarded(item.path, lambda: read_file(item.path, self.limits.max_bytes))

    def from_bytes(self, name: str, data: bytes) -> Decoded:
        """Bytes already in memory (an upload), prepared as a file `name` holding them would
        be: the same checks, the same error messages."""
        return self._guarded(name, lambda: checked_bytes(data, self.limits.max_bytes))

    def _guarded(self, path: str, read: Callable[[], bytes]) -> Decoded:
        try:
            return self._decode(path, read())
        except ImageError as e:
            return Decoded(path, error=str(e))
        except MemoryError:
            return Decoded(path, error="out of memory while decoding (lower --max-pixels)")
        except Exception as e:  # a decoder bug must cost one row, not the scan
            return Decoded(path, error=f"unexpected decoder error: {type(e).__name__}: {e}")

    def _decode(self, path: str, data: bytes) -> Decoded:
        sha256 = hashlib.sha256(data).hexdigest()
        if self.cache is not None and (hit := self.cache.get(sha256)) is not None:
            return Decoded(
                path, None, hit.width, hit.height, hit.format, sha256, None, hit.evidence,
                score=hit.score, cached=True,
            )  # fmt: skip
        image = decode(data, self.limits.max_pixels, self.spec.draft_size, sha256)
        crops = fit_geometry(image.image, self.spec)
        i = image
        return Decoded(path, crops, i.width, i.height, i.format, i.sha256, evidence=i.evidence)


def score_crops(session: ModelSession, spec: PreprocessSpec, crops: np.ndarray) -> np.ndarray:
    """One score per image from its crops stacked in order (crops_per_image each): the mean of
    its crops' scores. Every engine, and the trainer's ONNX evaluation, score through here."""
    per_crop = session.predict(normalize(crops, spec))
    return per_crop.reshape(-1, spec.crops_per_image).mean(axis=1)


def score_items(items: list[Decoded], score: Callable[[np.ndarray], np.ndarray]) -> list[Decoded]:
    """The items, those with crops scored by one `score` call over all their crops (pixels
    dropped once scored); cache hits and errors as they are."""
    todo = [d for d in items if d.needs_scoring]
    if not todo:
        return items
    scores = iter(score(np.concatenate([d.crops for d in todo if d.crops is not None])))
    return [
        dataclasses.replace(d, crops=None, score=float(next(scores))) if d.needs_scoring else d
        for d in items
    ]


def batched(items: Iterable[Decoded], size: int) -> Iterator[list[Decoded]]:
    """Lists of `size` items (the last one shorter). (itertools.batched is Python 3.12+.)"""
    items = iter(items)
    while batch := list(islice(items, size)):
        yield batch
