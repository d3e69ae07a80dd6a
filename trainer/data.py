"""From a folder of faces to labelled, split, decoded images (and tf.data pipelines over them).

Two layouts: DATA/{train,val,test}/{real,fake} or a flat DATA/{real,fake} that is split here,
stratified and seeded. Every image is decoded once with the scanner's decoder and kept in memory
as uint8 pixels; augmentation and geometry run per epoch on the fly.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from scanner.decode import DecodedImage, ImageError, load
from scanner.preprocess import PreprocessSpec, fit_geometry
from scanner.threads import available_cores
from scanner.walk import WalkError, walk
from trainer.config import TrainerError

SPLITS = ("train", "val", "test")
# Folder name -> label (1 = the positive class "ai").
ALIASES = {"fake": 1, "ai": 1, "generated": 1, "real": 0, "human": 0}
LABELS = ("real", "ai")
MANIFEST = "MANIFEST.csv"
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    path: str  # absolute
    rel: str  # relative to DATA, with forward slashes (the MANIFEST.csv key)
    label: int  # 0 real, 1 ai
    split: str


@dataclass
class Decoded:
    """The images of some samples, decoded; the ones that failed are listed, never dropped
    silently."""

    samples: list[Sample]
    pixels: list[np.ndarray]  # uint8 HWC, upright RGB: the image, or its training face crop
    sha256: list[str]
    formats: list[str]
    failed: list[tuple[str, str]]  # (relative path, reason)
    # Face crops (the spec asks for them): each image's units as the scanner cuts them, uint8
    # (units, N, N, 3): every face of --min-face or more, or the whole image when none is. The
    # scanner scores an image by its highest unit, and so does evaluation; `pixels` holds the
    # largest face's crop, the one the model trains on.
    units: list[np.ndarray] | None = None

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], np.int64)

    def subset(self, split: str) -> Decoded:
        keep = [i for i, s in enumerate(self.samples) if s.split == split]
        return Decoded(
            [self.samples[i] for i in keep],
            [self.pixels[i] for i in keep],
            [self.sha256[i] for i in keep],
            [self.formats[i] for i in keep],
            [f for f in self.failed if f[0].startswith(split + "/")],
            None if self.units is None else [self.units[i] for i in keep],
        )

    def unit_starts(self) -> np.ndarray:
        """Where each image's units start in the flat list of every unit."""
        assert self.units is not None
        return np.cumsum([0] + [len(u) for u in self.units[:-1]])


def find_samples(
    data: Path, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> tuple[list[Sample], dict[str, Any]]:
    """Every image under DATA with its label and split, and a record of how the split was made."""
    if not data.is_dir():
        raise TrainerError(f"DATA folder not found: {data}")
    present = [s for s in SPLITS if (data / s).is_dir()]
    if present:
        missing = [s for s in ("train", "val") if s not in present]
        if missing:
            raise TrainerError(
                f"{data} has split folders {', '.join(present)} but no {', '.join(missing)}/"
            )
        samples = [s for split in present for s in _class_samples(data, data / split, split)]
        return samples, {"layout": "splits", "splits": present}
    samples = _class_samples(data, data, "all")
    record = {"layout": "flat", "seed": seed, "val_fraction": val_fraction}
    record["test_fraction"] = test_fraction
    return stratified_split(samples, seed, val_fraction, test_fraction), record


def _class_samples(data: Path, folder: Path, split: str) -> list[Sample]:
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in subdirs if p.name.lower() not in ALIASES]
    found = ", ".join(p.name + "/" for p in subdirs) or "no folders"
    if unknown:
        raise TrainerError(
            f"{folder}: unexpected folder(s) {', '.join(unknown)} (found {found}); class "
            "folders must be named real/human and fake/ai/generated"
        )
    samples: list[Sample] = []
    counts: Counter[int] = Counter()
    for sub in subdirs:
        label = ALIASES[sub.name.lower()]
        files, errors = image_files(sub)
        if errors:
            shown = "; ".join(f"{e.path}: {e.message}" for e in errors[:3])
            raise TrainerError(f"{len(errors)} path(s) under {sub} cannot be read ({shown})")
        counts[label] += len(files)
        samples += [Sample(str(p), p.relative_to(data).as_posix(), label, split) for p in files]
    folders = Counter(ALIASES[p.name.lower()] for p in subdirs)
    for label, name in enumerate(LABELS):
        if not counts[label]:
            have = "an empty folder" if folders[label] else "no folder"
            raise TrainerError(
                f"{folder}: class '{name}' has {have} (found {found}); training needs images of "
                "both classes: real/ (or human/) and fake/ (or ai/, generated/)"
            )
    return samples


def image_files(folder: Path) -> tuple[list[Path], list[WalkError]]:
    """Image files under `folder` as the scanner finds them (its walker: its image extensions,
    hidden files included, symbolic links followed with each real folder entered once), sorted
    by path; and what could not be listed or followed."""
    found: list[Path] = []
    errors: list[WalkError] = []
    for item in walk([str(folder)], follow_symlinks=True):
        if isinstance(item, WalkError):
            errors.append(item)
        else:
            found.append(Path(item.path))
    return sorted(found), errors


def stratified_split(
    samples: list[Sample], seed: int, val_fraction: float, test_fraction: float
) -> list[Sample]:
    """Assign train/val/test per class, the same way for the same seed and files."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for label in (0, 1):
        group = [s for s in samples if s.label == label]
        order = rng.permutation(len(group))
        n_val, n_test = round(val_fraction * len(group)), round(test_fraction * len(group))
        for rank, i in enumerate(order):
            split = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
            out.append(replace(group[i], split=split))
    return sorted(out, key=lambda s: s.rel)


def limit_per_split(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """At most `limit` samples per split, class proportions kept (quick runs and tests)."""
    if limit <= 0:
        return samples
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for split in SPLITS:
        group = [s for s in samples if s.split == split]
        for label in (0, 1):
            members = [s for s in group if s.label == label]
            share = max(1, round(limit * len(members) / max(1, len(group))))
            picks = rng.permutation(len(members))[:share]
            out += [members[i] for i in sorted(picks)]
    return out


def read_manifest(data: Path) -> dict[str, dict[str, str]]:
    """MANIFEST.csv rows keyed by `path` (relative to DATA), or {} when there is none."""
    path = data / MANIFEST
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and "path" not in rows[0]:
        raise TrainerError(f"{path} has no 'path' column")
    return {row["path"]: row for row in rows}


def exclude_kinds(
    samples: list[Sample], manifest: dict[str, dict[str, str]], kinds: tuple[str, ...]
) -> tuple[list[Sample], dict[str, int]]:
    """Drop samples whose manifest `kind` is in `kinds`; count what was dropped per kind."""
    if not kinds:
        return samples, {}
    if not manifest:
        raise TrainerError(f"--exclude-kind needs a {MANIFEST} with path and kind columns")
    return _drop(samples, lambda s: manifest.get(s.rel, {}).get("kind", ""), kinds)


def exclude_sources(
    samples: list[Sample], manifest: dict[str, dict[str, str]], sources: tuple[str, ...]
) -> tuple[list[Sample], dict[str, int]]:
    """Drop samples whose source (`source_of`: the generator, or where a real photo came from)
    is in `sources`: a leave-one-generator-out run trains without one generator and is then
    scored on it. Counts what was dropped per source."""
    if not sources:
        return samples, {}
    if not manifest:
        raise TrainerError(f"--exclude-source needs a {MANIFEST} with a generator column")
    kept, dropped = _drop(samples, lambda s: source_of(s, manifest), sources)
    unknown = sorted(set(sources) - set(dropped))
    if unknown:
        found = sorted({source_of(s, manifest) for s in samples})
        raise TrainerError(f"--exclude-source {', '.join(unknown)}: no such source (found {found})")
    return kept, dropped


def _drop(
    samples: list[Sample], key: Callable[[Sample], str], values: tuple[str, ...]
) -> tuple[list[Sample], dict[str, int]]:
    """The samples whose `key` is not in `values`, and how many were dropped per value."""
    dropped: Counter[str] = Counter()
    kept = []
    for s in samples:
        value = key(s)
        if value in values:
            dropped[value] += 1
        else:
            kept.append(s)
    return kept, dict(dropped)


def source_of(sample: Sample, manifest: dict[str, dict[str, str]]) -> str:
    """The per-source key of the metrics breakdown, always a short readable name: the manifest's
    generator (`stylegan`, `ffhq`, `lfw`), or, when it is unknown (real photos often have none),
    where the file came from: a `source` column, else the first word of `origin_dataset`
    ("CIPLAB Real and Fake ..." -> `ciplab`), else the repository name of `source_repo`."""
    row = manifest.get(sample.rel, {})
    known = {k: v.strip() for k, v in row.items() if v and v.strip().lower() != "unknown"}
    if "generator" in known:
        return known["generator"].lower()
    if "source" in known:
        return known["source"].lower()
    if "origin_dataset" in known:
        return _short_name(known["origin_dataset"].split()[0])
    if "source_repo" in known:
        return _short_name(known["source_repo"].rstrip("/").split("/")[-1])
    return "unknown"


def _short_name(text: str) -> str:
    return re.sub(r"[^a-z0-9.+-]+", "-", text.lower()).strip("-") or "unknown"


def decode_each(
    paths: Sequence[str],
    spec: PreprocessSpec,
    convert: Callable[[DecodedImage], T],
    workers: int = 0,
) -> list[T | str]:
    """`convert` of each file decoded by the scanner's `load` (with the spec's JPEG draft size),
    in order, or the reason it could not be read. Threads, as the scanner (Pillow releases the
    GIL); `convert` runs in them too, so only its result is kept. workers 0: one per core."""

    def one(path: str) -> T | str:
        try:
            return convert(load(path, draft_size=spec.draft_size))
        except ImageError as e:
            return str(e)

    with ThreadPoolExecutor(workers or available_cores()) as pool:
        return list(pool.map(one, paths))


def decode_all(samples: list[Sample], spec: PreprocessSpec, workers: int = 0) -> Decoded:
    """Decode every sample once; the unreadable ones are listed in `failed`."""
    if spec.faces is not None:
        return _face_units(samples, spec, workers)

    def keep(d: DecodedImage) -> tuple[np.ndarray, str, str]:
        return np.asarray(d.image, dtype=np.uint8), d.sha256, d.format

    results = decode_each([s.path for s in samples], spec, keep, workers)
    out = Decoded([], [], [], [], [])
    for s, r in zip(samples, results, strict=True):
        if isinstance(r, str):
            out.failed.append((s.rel, r))
            continue
        out.samples.append(s)
        out.pixels.append(r[0])
        out.sha256.append(r[1])
        out.formats.append(r[2])
    return out


def _face_units(samples: list[Sample], spec: PreprocessSpec, workers: int) -> Decoded:
    """Every sample through the scanner's own `Prepare` (detection, face crops, whole image when
    no face is large enough), so training and scanning cut the same crops."""
    from scanner.walk import WalkFile
    from scanner.work import Prepare

    prepare = Prepare(spec)
    with ThreadPoolExecutor(workers or available_cores()) as pool:
        prepared = list(pool.map(lambda s: prepare(WalkFile(s.path)), samples))
    out = Decoded([], [], [], [], [], [])
    for sample, d in zip(samples, prepared, strict=True):
        if d.crops is None:
            out.failed.append((sample.rel, d.error or "not decoded"))
            continue
        out.samples.append(sample)
        out.units.append(d.crops)  # type: ignore[union-attr]
        out.pixels.append(d.crops[_largest_unit(d)])
        out.sha256.append(d.sha256 or "")
        out.formats.append(d.format or "")
    return out


def _largest_unit(d: Any) -> int:
    """The unit of the largest scored face (0: the whole image when no face is scored)."""
    if not d.scored_faces:
        return 0
    sizes = [d.faces[i].size for i in d.scored_faces]
    return int(np.argmax(sizes))


def fingerprint(decoded: Decoded) -> str:
    """sha256 over (split, label, content hash) of every image used: same data, same print."""
    lines = sorted(
        f"{s.split}\t{s.label}\t{h}" for s, h in zip(decoded.samples, decoded.sha256, strict=True)
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def eval_batches(pixels: list[np.ndarray], spec: PreprocessSpec, batch: int):
    """Every crop of every image, `batch` images at a time, in order: (uint8 crops, n_images),
    with the scanner's own geometry; normalise before feeding a model."""
    from PIL import Image

    for start in range(0, len(pixels), batch):
        chunk = pixels[start : start + batch]
        yield np.concatenate([fit_geometry(Image.fromarray(p), spec) for p in chunk]), len(chunk)


def train_dataset(decoded: Decoded, spec: PreprocessSpec, cfg: Any, class_weight: dict | None):
    """tf.data over the training images: shuffled per epoch, augmented per sample with a seed
    derived from (run seed, epoch, index), so a run is reproducible pixel for pixel."""
    import tensorflow as tf

    from trainer.augment import training_input

    labels = decoded.labels().astype(np.float32)
    weights = np.ones_like(labels)
    if class_weight:
        weights = np.array([class_weight[int(y)] for y in labels], np.float32)
    epoch = [-1]

    def order():
        epoch[0] += 1  # Keras opens a new iterator, so calls this again, every epoch
        rng = np.random.default_rng([cfg.seed, epoch[0]])
        for i in rng.permutation(len(labels)):
            yield np.int64(i), np.int64(epoch[0])

    def make(i: np.int64, e: np.int64) -> np.ndarray:
        rng = np.random.default_rng([cfg.seed, int(e), int(i)])
        return training_input(decoded.pixels[int(i)], spec, cfg.augment, rng)

    def load_one(i, e):
        x = tf.numpy_function(make, [i, e], tf.float32)
        x.set_shape((spec.input_size, spec.input_size, 3))
        return x, tf.gather(labels, i)[None], tf.gather(weights, i)

    sig = (tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
    ds = tf.data.Dataset.from_generator(order, output_signature=sig)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(labels)))  # lets Keras count steps
    ds = ds.map(load_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)
