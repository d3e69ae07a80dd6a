"""The unit of work between the scanner and its engines: a walked file becomes a `Decoded` item
(crops ready to score, a cache hit, or an error) through `Prepare`, and an engine scores it.

A file is scored in *units*: each face the detector finds (at least `min_face` pixels) when the
model asks for face crops, else the whole image. Every unit is `crops_per_image` crops, scored
by the mean of its crops; the image's score is its highest unit score.

`Prepare` runs wherever an engine decodes (threads here, Ray tasks on a cluster): it is a small
frozen value, cheap to send, and it never raises for a bad file. `score_items` is how every
engine turns a batch of crops into scores, so all engines score alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from scanner import credentials, provenance
from scanner.cache import CachedResult, CacheReader
from scanner.credentials import Credentials, TrustSettings
from scanner.decode import ImageError, checked_bytes, decode, read_file
from scanner.faces import Face, FaceDetector, FacePhoto, shared_detector
from scanner.limits import DecodeLimits
from scanner.preprocess import PreprocessSpec, fit_geometry, normalize
from scanner.walk import WalkError, WalkItem

if TYPE_CHECKING:
    from scanner.session import ModelSession


@dataclass(frozen=True)
class Decoded:
    """One walked file on its way through an engine."""

    path: str
    crops: np.ndarray | None = None  # uint8 (units * crops_per_image, N, N, 3) until scored
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    error: str | None = None
    evidence: str = ""
    # Face crops: every face found (None: detection did not run), and which of them are units,
    # in crop order (the others are under min_face). No unit: the whole image is the one unit.
    faces: tuple[Face, ...] | None = None
    scored_faces: tuple[int, ...] = ()
    scores: tuple[float, ...] | None = None  # one per unit: set by the engine, or the cache
    cached: bool = False
    # The C2PA credential as the library read it (None: no manifest, or no [provenance] extra).
    credentials: Credentials | None = None

    @property
    def needs_scoring(self) -> bool:
        return self.crops is not None and self.scores is None

    @property
    def score(self) -> float | None:
        """The image's score: its highest unit's."""
        return max(self.scores) if self.scores else None


@dataclass(frozen=True)
class Prepare:
    """Walked item -> `Decoded`: read, hash, look up the cache, decode, read the C2PA credential,
    find faces, crop. Every failure becomes an error item, never an exception: a bad file costs
    its row, not the scan (and a bad credential only the credential)."""

    spec: PreprocessSpec
    limits: DecodeLimits = DecodeLimits()
    cache: CacheReader | None = None
    provider: str = "cpu"  # the face detector's
    trust: TrustSettings | None = None  # --c2pa-trust: the anchors a "valid" signer chains to
    # Training only (box jitter): each scored face's box as cropped, from the box found.
    move_face: Callable[[Face], Face] | None = None

    def __call__(self, item: WalkItem) -> Decoded:
        if isinstance(item, WalkError):
            return Decoded(item.path, error=item.message)
        return self._guarded(item.path, lambda: read_file(item.path, self.limits.max_bytes))

    def set_up(self) -> None:
        """Load what every file needs (the face detector, where faces are scored), raising when
        it cannot. An engine's worker process calls it before its first file: a worker that
        cannot work stops the scan once, not one error row per file."""
        if self.spec.faces is not None:
            self._detector()

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
        """Bytes to crops (or a cache hit); raises ImageError."""
        sha256 = hashlib.sha256(data).hexdigest()
        if self.cache is not None and (hit := self.cache.get(sha256)) is not None:
            found = hit.credentials
            if found is None:  # none, or stored by a scan without the library: read it now
                found = read_credentials(data, hit.format, hit.evidence, self.trust)
            return from_cache(path, sha256, hit, found)
        if self.spec.faces is None:
            image = decode(data, self.limits.max_pixels, self.spec.draft_size, sha256)
            crops = fit_geometry(image.image, self.spec)
            i = image
            found = read_credentials(data, i.format, i.evidence, self.trust)
            return Decoded(
                path, crops, i.width, i.height, i.format, sha256, evidence=i.evidence,
                credentials=found,
            )  # fmt: skip
        return self._face_crops(path, data, sha256)

    def image_crops(self, image: Image.Image) -> np.ndarray:
        """An in-memory image (upright RGB) to its units' crops, as a file holding it would be
        prepared (`Scanner.score`'s path): the same detection and crops."""
        if self.spec.faces is None:
            return fit_geometry(image, self.spec)
        return self._units(FacePhoto.of_image(image))[2]

    def _face_crops(self, path: str, data: bytes, sha256: str) -> Decoded:
        """Detect on a reduced decode, crop each face large enough from a decode fine enough
        for it (FacePhoto), or take the whole image when no face is."""
        assert self.spec.faces is not None
        photo = FacePhoto(data, self.spec.faces.detect_size, self.limits.max_pixels, sha256)
        faces, scored, crops = self._units(photo)
        d = photo.decoded
        return Decoded(
            path, crops, d.width, d.height, d.format, sha256, evidence=d.evidence,
            faces=faces, scored_faces=scored,
            credentials=read_credentials(data, d.format, d.evidence, self.trust),
        )  # fmt: skip

    def _units(self, photo: FacePhoto) -> tuple[tuple[Face, ...], tuple[int, ...], np.ndarray]:
        """Every face found, which of them are units (large enough), and the units' crops: each
        such face's, or the whole image's when no face is."""
        spec, faces_spec = self.spec, self.spec.faces
        assert faces_spec is not None
        faces = tuple(photo.detect(self._detector(), faces_spec.min_face))
        scored = tuple(i for i, face in enumerate(faces) if face.size >= faces_spec.min_face)
        if scored:
            move = self.move_face or (lambda face: face)
            images = photo.crops([move(faces[i]) for i in scored], faces_spec)
        else:  # scored whole, from a decode at least twice the input (or the full one)
            images = [photo.image_at(whole_image_scale(photo, spec.input_size))]
        return faces, scored, np.concatenate([fit_geometry(image, spec) for image in images])

    def _detector(self) -> FaceDetector:
        assert self.spec.faces is not None
        return shared_detector(self.spec.faces.detect_size, self.provider, os.getpid())


def read_credentials(
    data: bytes, fmt: str, evidence: str, trust: TrustSettings | None
) -> Credentials | None:
    """The file's C2PA credential, read and validated by the library, when the byte scan found
    a manifest store (`evidence`): an unsigned photo costs no more than before, and the library
    is loaded by the first signed file, not at start-up. None without the [provenance] extra."""
    if not provenance.found_manifest(evidence) or not credentials.available():
        return None
    return credentials.read_credentials(data, credentials.mime_type(fmt), trust)


def whole_image_scale(photo: FacePhoto, input_size: int) -> float:
    """The decode scale that keeps the shorter side at least twice the model's input."""
    return min(1.0, 2 * input_size / max(1, min(photo.width, photo.height)))


def from_cache(path: str, sha256: str, hit: CachedResult, found: Credentials | None) -> Decoded:
    return Decoded(
        path, None, hit.width, hit.height, hit.format, sha256, None, hit.evidence,
        faces=hit.faces, scored_faces=hit.scored_faces, scores=hit.scores, cached=True,
        credentials=found,
    )  # fmt: skip


def score_crops(session: ModelSession, spec: PreprocessSpec, crops: np.ndarray) -> np.ndarray:
    """One score per unit from the units' crops stacked in order (crops_per_image each): the
    mean of its crops' scores. Every engine, and the trainer's ONNX evaluation, score here."""
    per_crop = session.predict(normalize(crops, spec))
    return per_crop.reshape(-1, spec.crops_per_image).mean(axis=1)


def score_items(
    items: list[Decoded], score: Callable[[np.ndarray], np.ndarray], crops_per_unit: int
) -> list[Decoded]:
    """The items, those with crops scored by one `score` call over all their crops (pixels
    dropped once scored); cache hits and errors as they are."""
    todo = [d for d in items if d.needs_scoring]
    if not todo:
        return items
    scores = score(np.concatenate([d.crops for d in todo if d.crops is not None]))
    out, start = [], 0
    for d in items:
        if d.needs_scoring and d.crops is not None:
            end = start + len(d.crops) // crops_per_unit
            d = dataclasses.replace(d, crops=None, scores=tuple(map(float, scores[start:end])))
            start = end
        out.append(d)
    return out


def batched(items: Iterable[Decoded], size: int) -> Iterator[list[Decoded]]:
    """Lists of `size` items (the last one shorter). (itertools.batched is Python 3.12+.)"""
    items = iter(items)
    while batch := list(islice(items, size)):
        yield batch
