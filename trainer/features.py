"""Encoder features of every image and view, computed once and cached on disk.

A *view* is what a user's copy of an image might look like: the file itself (`native`), a copy
shrunk at random to 96-192 px and re-saved as JPEG q60-90 (`small`, the size-proof training copy
both classes get), the image brought to a fixed size (`px96`, `px128`, ...: the size rows), or
any of these with the face box moved a little before the crop (`native+jitter`: box jitter).
Each view's bytes go through the scanner's own `Prepare` (decode, face detection, the model's
`FaceCropSpec` crop, or the whole image when no face is found), so the features are those of the
pixels a scan feeds the encoder.

The encoder costs ~0.3 s an image on two cores (all 12 blocks; a head reading early blocks runs
only those: `Encoder(depth=...)`), so the features are cached per view in chunk
files under `cache_dir()/<spec fingerprint>/<view>/`: a head then trains in seconds, an
interrupted extraction resumes where it stopped, and a changed crop or encoder starts afresh.
An image contributes one feature row per unit (scored face, or the whole image).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from scanner.faces import Face
from scanner.preprocess import PreprocessSpec, normalize
from scanner.work import Prepare
from trainer import data
from trainer.config import TrainerError
from trainer.encoder import Encoder

CHUNK = 128  # images per cache file: an interrupted extraction loses at most this many

View = Callable[[bytes, random.Random], bytes]


def _shrunk(data_: bytes, rng: random.Random) -> bytes:
    """Short side to 96-192 px, then JPEG q60-90: what a thumbnail or a chat app makes."""
    with Image.open(io.BytesIO(data_)) as image:
        rgb = image.convert("RGB")
    side = rng.randint(96, 192)
    scale = side / min(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    out = io.BytesIO()
    rgb.resize(size, Image.Resampling.BICUBIC).save(out, "JPEG", quality=rng.randint(60, 90))
    return out.getvalue()


def _fixed(side: int) -> View:
    """The image brought to `side` px on its longer side, saved as PNG: only size changes."""

    def view(data_: bytes, rng: random.Random) -> bytes:
        with Image.open(io.BytesIO(data_)) as image:
            rgb = image.convert("RGB")
        scale = side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        out = io.BytesIO()
        rgb.resize(size, Image.Resampling.BICUBIC).save(out, "PNG")
        return out.getvalue()

    return view


VIEWS: dict[str, View | None] = {
    "native": None,
    "small": _shrunk,
    "small2": _shrunk,
    **{f"px{side}": _fixed(side) for side in (96, 128, 192, 384)},
}

# A view named "<view>+jitter" is that view's bytes with every face box moved a little before
# the crop, as a different detector resolution or a re-encode moves it (`tools/measure_faces.py
# box-shift`): the centre by up to JITTER_SHIFT of the face's size each way, the size by up to
# JITTER_SCALE.
JITTER = "+jitter"
JITTER_SHIFT = 0.03
JITTER_SCALE = 0.05


def jittered(rng: random.Random) -> Callable[[Face], Face]:
    def move(face: Face) -> Face:
        x0, y0, x1, y1 = face.box
        half = (x1 - x0) / 2, (y1 - y0) / 2
        dx, dy = (rng.uniform(-JITTER_SHIFT, JITTER_SHIFT) * face.size for _ in "xy")
        cx, cy, k = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, 1 + rng.uniform(-1, 1) * JITTER_SCALE
        landmarks = tuple((x + dx, y + dy) for x, y in face.landmarks)  # only their angle is read
        box = (cx - half[0] * k, cy - half[1] * k, cx + half[0] * k, cy + half[1] * k)
        return Face(box, face.score, landmarks)

    return move


def base_view(view: str) -> str:
    return view.removesuffix(JITTER)


@dataclass
class Features:
    """Feature rows of some images: image i's units are rows[starts[i]:starts[i + 1]]."""

    rows: np.ndarray  # float32 (units, blocks * 768): each unit's CLS token after every block
    starts: np.ndarray  # int (images + 1,)

    def first_units(self) -> np.ndarray:
        """One row per image: its first unit (the largest face, or the whole image)."""
        return self.rows[self.starts[:-1]]

    def per_image_max(self, unit_scores: np.ndarray) -> np.ndarray:
        """An image's score is its highest unit's, as in a scan."""
        return np.maximum.reduceat(unit_scores, self.starts[:-1])


def cache_dir() -> Path:
    env = os.environ.get("FACESCAN_FEATURES")
    return Path(env) if env else Path("runs") / "features"


def fingerprint(spec: PreprocessSpec, encoder_identity: str) -> str:
    text = json.dumps({"spec": spec.to_dict(), "encoder": encoder_identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FeatureCache:
    """Features by (file sha256, view), loaded from and appended to chunk files."""

    def __init__(
        self,
        spec: PreprocessSpec,
        encoder: Encoder,
        encoder_identity: str,
        columns: np.ndarray | None = None,
    ) -> None:
        """`columns`: the part of each cached row `features` returns (None: all of it)."""
        self.spec, self.encoder, self.columns = spec, encoder, columns
        self.root = cache_dir() / fingerprint(spec, encoder_identity)
        self._known: dict[str, dict[str, np.ndarray]] = {}

    def features(self, samples: Sequence[data.Sample], view: str, log: bool = True) -> Features:
        """Every sample's feature rows in `view`, computing (and caching) the missing ones."""
        known = self._load(view)
        keys = [file_key(s.path) for s in samples]
        # A row holds the CLS tokens of the blocks its encoder ran, first block first: a deeper
        # row serves a shallower need, a shallower one is computed again.
        width = self.encoder.width
        missing = [
            (s, k)
            for s, k in zip(samples, keys, strict=True)
            if k not in known or known[k].shape[1] < width
        ]
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            known.update(self._compute(chunk, view))
            if log:
                done = min(start + CHUNK, len(missing))
                print(f"features {view}: {done}/{len(missing)} computed", flush=True)
        units = [known[k][:, :width] for k in keys]
        starts = np.concatenate([[0], np.cumsum([len(u) for u in units])]).astype(np.int64)
        rows = np.concatenate(units) if units else np.zeros((0, self.encoder.width))
        if self.columns is not None:
            rows = rows[:, self.columns]
        return Features(rows.astype(np.float32), starts)

    def _compute(self, chunk: list[tuple[data.Sample, str]], view: str) -> dict[str, np.ndarray]:
        base = base_view(view)
        transform = VIEWS[base]

        def crops(item: tuple[data.Sample, str]) -> np.ndarray:
            sample, key = item
            raw = Path(sample.path).read_bytes()
            if transform is not None:
                raw = transform(raw, random.Random(f"{base}:{key}"))
            move = jittered(random.Random(f"jitter:{key}")) if view != base else None
            decoded = Prepare(self.spec, move_face=move).from_bytes(sample.path, raw)
            if decoded.crops is None:
                raise TrainerError(f"{sample.rel}: {decoded.error}")
            return decoded.crops

        with ThreadPoolExecutor(2) as pool:
            per_image = list(pool.map(crops, chunk))
        counts = [len(c) for c in per_image]
        tokens = self.encoder.layer_tokens(normalize(np.concatenate(per_image), self.spec))
        bounds = np.cumsum([0, *counts])
        result = {
            key: tokens[bounds[i] : bounds[i + 1]].astype(np.float16)
            for i, (_, key) in enumerate(chunk)
        }
        self._write(view, result)
        return result

    def _write(self, view: str, result: dict[str, np.ndarray]) -> None:
        folder = self.root / view
        folder.mkdir(parents=True, exist_ok=True)
        keys = list(result)
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:12]
        temp = folder / f".{name}.tmp.npz"
        np.savez(
            temp,
            keys=np.array(keys),
            counts=np.array([len(result[k]) for k in keys]),
            rows=np.concatenate([result[k] for k in keys]),
        )
        os.replace(temp, folder / f"{name}.npz")

    def _load(self, view: str) -> dict[str, np.ndarray]:
        if view not in self._known:
            known: dict[str, np.ndarray] = {}
            for chunk in sorted((self.root / view).glob("[!.]*.npz")):
                with np.load(chunk) as z:
                    bounds = np.cumsum([0, *z["counts"]])
                    rows = z["rows"]
                    for i, key in enumerate(z["keys"]):
                        old = known.get(str(key))
                        if old is None or old.shape[1] < rows.shape[1]:
                            known[str(key)] = rows[bounds[i] : bounds[i + 1]]
            self._known[view] = known
        return self._known[view]


def file_key(path: str) -> str:
    """A file's identity in the cache: its content hash (a copy elsewhere is the same image)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def all_views(names: Iterable[str]) -> list[str]:
    unknown = sorted({name for name in names if base_view(name) not in VIEWS})
    if unknown:
        raise TrainerError(f"unknown feature views: {', '.join(unknown)}")
    return list(names)
