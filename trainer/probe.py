"""`facescan-train probe`: the `clip` model family, a linear probe on frozen CLIP features.

The story, top to bottom (UnivFD's recipe, with size-proof training added):
1. every image's face crop goes through the CLIP ViT-B/16 image tower (features.py, cached);
2. a logistic regression on the CLS token, fitted on the train split, each image seen twice: the
   file itself and a copy shrunk to 96-192 px and re-saved as JPEG, so both classes show every
   size and "small means real" is no shortcut; and the head pays for how far shrinking moves an
   image's logit (size steadiness: a score should not sink as the photo shrinks);
3. box jitter: half the train images (those train_view draws as stored) are seen once more
   with the face box moved a few pixels, and the head pays for how far that moves its logit
   (a score should not hang on where the detector put the box);
4. the jitter weight, the L2 strength, the temperature and the threshold are chosen on a
   validation *mix*: each validation image native and shrunk;
5. named operating points (`balanced`, `fpr1`, `fpr5`) are measured on the validation reals;
6. the run folder holds the head (head.json) and the record export needs (config.json).

Why linear: with 2,500 AI faces from four generators a larger head learns the generators; a
linear probe on a foundation model's features is what transferred to unseen generators in the
issue's leave-one-generator-out measurement (AUC 0.89-0.94 against 0.32-0.47 fine-tuned).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scanner.preprocess import FaceCropSpec, PreprocessSpec
from trainer import data, encoder, files, metrics
from trainer.config import CheckFailed, TrainerError
from trainer.features import JITTER, JITTER_SCALE, JITTER_SHIFT, FeatureCache, Features

# Plain settings (nanoGPT style); each is recorded in the run's config.json.
SEED = 0
EXCLUDE_KINDS = ("manipulated",)  # photoshop edits are not AI generation
SHRUNK_SHARE = 0.5  # share of train images drawn shrunk: seen only so without size steadiness
# Size steadiness: every train image is seen as stored and shrunk, and the head pays this weight
# times the mean squared logit change between the two. Without it, shrinking an AI face moved
# its validation logit by -1.2 on average (a real one by -0.2): the 96-px row lost 4.6 points.
# 0.03 brought that to 2.6 at the same test accuracy; heavier weights cost test and
# leave-one-generator-out AUC (models/README.md, "Size steadiness"). 0: the recipe before it,
# each image seen once in its drawn view.
SIZE_STEADY = 0.03
VAL_VIEWS = ("native", "small")
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # per-sample L2 strength on standardised features
# The transformer blocks (0-11) whose CLS tokens the head reads, side by side. At 160 px every
# block runs anyway, so reading more costs nothing; of the sets tried with this recipe, 8-11
# tied the best validation-mix ROC-AUC and ranked held-out generators' validation faces best
# (models/README.md, "Blocks 8-11"); `--blocks` picks others.
BLOCKS = (8, 9, 10, 11)
# Box jitter (features.JITTER): the train images seen as stored are trained on once more with
# the face box moved, and the head pays for the mean squared logit change that makes, at one of
# these weights: the strongest whose validation-mix ROC-AUC ties the best (L2_TIE) wins, as for
# L2. (0,): no box jitter at all (the recipe before it).
JITTER_GRID = (0.0, 0.1, 0.3, 1.0, 3.0)
FPR_POINTS = {"fpr1": 0.01, "fpr5": 0.05}  # operating points: at most this share of reals flagged


def clip_spec(min_face: int = FaceCropSpec.min_face, side: int = encoder.SIZE) -> PreprocessSpec:
    """The scanner's preprocessing for the encoder: a `side`-px face crop (CLIP's own 224 by
    default; encoder.at_size runs it at another), CLIP's mean and std."""
    return PreprocessSpec(
        input_size=side,
        resize_filter="bicubic",
        mean=encoder.CLIP_MEAN,
        std=encoder.CLIP_STD,
        layout="NCHW",
        faces=FaceCropSpec(min_face=min_face, output_size=side),
    )


@dataclass
class LinearHead:
    """logit = ((x - mean) / scale) . weights + bias, on one CLS token x."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def folded(self) -> tuple[np.ndarray, float]:
        """The same map as one weight vector and bias (what the ONNX graph holds)."""
        w = self.weights / self.scale
        return w, float(self.bias - self.mean @ w)

    def to_dict(self) -> dict[str, Any]:
        return {k: np.asarray(v).tolist() for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearHead:
        mean, scale, weights = (np.asarray(d[k], np.float64) for k in ("mean", "scale", "weights"))
        return cls(mean, scale, weights, float(d["bias"]))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    steps: int = 30,
    steady: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method, classes weighted equally
    (the real class is ~1.9x the AI class in faces3). Exact and deterministic: no learning rate.
    `steady`, a (d, d) matrix S, adds w.S.w / 2 to the loss (the box-jitter penalty). `start`:
    weights and bias to begin from (a neighbouring fit's: fewer steps to the same optimum)."""
    n, d = x.shape
    w_class = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1) if start is None else start.copy()
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = metrics.sigmoid(xb @ beta)
        grad = xb.T @ (w_class * (p - y)) + penalty * beta
        hess = (xb * (w_class * p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        if steady is not None:
            grad[:-1] += steady @ beta[:-1]
            hess[:-1, :-1] += steady
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


@dataclass
class Steadiness:
    """Rows of how images' features move under a change the score should ignore (a moved face
    box, a shrunk copy), and the weight the head pays per unit of mean squared logit change."""

    change: np.ndarray
    weight: float

    def matrix(self, scale: np.ndarray) -> np.ndarray:
        """S with w.S.w = weight * mean((change . w)^2), on standardised features."""
        moved = self.change / scale
        return self.weight * moved.T @ moved / len(moved)


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    steadiness: tuple[Steadiness, ...] = (),
    start: LinearHead | None = None,
) -> LinearHead:
    """The head on standardised features; each `steadiness` term makes the head lean on what its
    change leaves alone. `start`: a head on the same x."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    terms = [t.matrix(scale) for t in steadiness if t.weight > 0]
    steady = sum(terms[1:], terms[0]) if terms else None
    begin = None if start is None else np.append(start.weights, start.bias)
    w, b = fit_logistic((x - mean) / scale, y, l2, steady=steady, start=begin)
    return LinearHead(mean, scale, w, b)


def train_view(sample: data.Sample) -> str:
    """The view a train image is seen in without size steadiness (with it: the half that gets
    box-jitter copies): drawn once per file, the same in every run."""
    draw = random.Random(f"view:{sample.rel}").random()
    return "native" if draw < 1 - SHRUNK_SHARE else "small"


@dataclass
class Split:
    """One split's images in one or more views: image-level labels, sources and features."""

    y: np.ndarray
    sources: list[str]
    features: Features
    views: list[str]

    def logits(self, head: LinearHead) -> np.ndarray:
        """Per image: the highest unit's logit, as a scan scores an image by its top face."""
        return self.features.per_image_max(head.logits(self.features.rows))


def load_split(
    cache: FeatureCache,
    samples: list[data.Sample],
    manifest: dict[str, dict[str, str]],
    views: tuple[str, ...],
) -> Split:
    """`samples` in each of `views`, one after another (a view is a copy of every image)."""
    parts = [cache.features(samples, view) for view in views]
    rows = np.concatenate([p.rows for p in parts])
    offsets = np.cumsum([0] + [len(p.rows) for p in parts])
    starts = np.concatenate([p.starts[:-1] + o for p, o in zip(parts, offsets, strict=False)])
    y = np.array([s.label for s in samples] * len(views))
    sources = [data.source_of(s, manifest) for s in samples] * len(views)
    return Split(y, sources, Features(rows, np.append(starts, len(rows))), list(views))


def train_split(
    cache: FeatureCache, samples: list[data.Sample], paired: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The train images' first-unit features and labels: each in its drawn view, or (`paired`)
    each as stored and shrunk, with how shrinking moved it (stored minus shrunk)."""
    y = np.array([s.label for s in samples])
    if paired:
        native, small = (cache.features(samples, v).first_units() for v in ("native", "small"))
        change = (native - small).astype(np.float64)
        return np.vstack([native, small]), np.append(y, y), change
    views = [train_view(s) for s in samples]
    parts = {
        view: cache.features([s for s, v in zip(samples, views, strict=True) if v == view], view)
        for view in ("native", "small")
    }
    taken = {view: iter(part.first_units()) for view, part in parts.items()}
    x = np.array([next(taken[view]) for view in views], np.float32)
    return x.reshape(len(samples), -1), y, None


@dataclass
class BoxJitter:
    """The train images seen as stored, once more with the face box jittered (features.JITTER):
    extra training rows, and how far each moved from the image's own row."""

    rows: np.ndarray
    y: np.ndarray
    change: np.ndarray

    @classmethod
    def of(cls, cache: FeatureCache, samples: list[data.Sample]) -> BoxJitter:
        native = [s for s in samples if train_view(s) == "native"]
        moved = cache.features(native, "native" + JITTER).first_units()
        change = cache.features(native, "native").first_units() - moved
        return cls(moved, np.array([s.label for s in native]), change.astype(np.float64))


@dataclass
class Fitted:
    head: LinearHead
    l2: float
    jitter: float
    val_auc: dict[str, float]  # by grid_key(jitter, l2)


def grid_key(jitter: float, l2: float) -> str:
    """How a (box-jitter weight, L2) pair of the grid is named in `val_auc` and config.json."""
    return f"{jitter:g}/{l2:g}"


def choose_head(
    x: np.ndarray,
    y: np.ndarray,
    change: np.ndarray | None,
    val: Split,
    jitter_grid: tuple,
    fixed: tuple[Steadiness, ...] = (),
) -> Fitted:
    """For each box-jitter weight (on `change`) the L2 pick_l2 takes, then the strongest weight
    whose validation ROC-AUC is within L2_TIE of the best (pick_l2's rule again); the `fixed`
    steadiness terms apply to every fit. Each fit starts from the one before it (L2 from strong
    to weak): the same optima, in fewer Newton steps."""
    by_jitter: dict[float, tuple[LinearHead, float, float]] = {}
    aucs: dict[str, float] = {}
    for jitter in jitter_grid:
        heads: dict[float, LinearHead] = {}
        scores: dict[float, float] = {}
        start = None
        box = () if change is None else (Steadiness(change, jitter),)
        for l2 in sorted(L2_GRID, reverse=True):
            heads[l2] = start = fit_head(x, y, l2, (*box, *fixed), start)
            scores[l2] = aucs[grid_key(jitter, l2)] = metrics.roc_auc(val.y, val.logits(start))
        l2 = pick_l2(scores)
        by_jitter[jitter] = heads[l2], l2, scores[l2]
    jitter = pick_l2({j: auc for j, (_, _, auc) in by_jitter.items()})
    head, l2, _ = by_jitter[jitter]
    return Fitted(head, l2, jitter, aucs)


L2_TIE = 0.001  # validation ROC-AUCs this close are a tie: the stronger L2 wins


def pick_l2(auc_by_l2: dict[float, float]) -> float:
    """The strongest L2 whose validation ROC-AUC is within L2_TIE of the best: a weaker one
    that wins by less than that is noise, and it extrapolated worse off the faces it was
    fitted on (a black square: 0.67 against a threshold of 0.38 at L2 0.001)."""
    top = max(auc_by_l2.values())
    return max(l2 for l2, auc in auc_by_l2.items() if auc >= top - L2_TIE)


def operating_points(val: Split, p: np.ndarray, balanced: float) -> dict[str, float]:
    """Thresholds by name: `balanced` (THRESHOLD_RULE), and `fprN`, the lowest threshold that
    flags at most N % of the validation reals (native and shrunk)."""
    reals = np.sort(p[val.y == 0])
    points = {"balanced": balanced}
    for name, rate in FPR_POINTS.items():
        allowed = int(np.floor(rate * len(reals)))  # reals at or above the threshold
        points[name] = float(np.nextafter(reals[len(reals) - allowed - 1], 1.0))
    return points


def select(
    samples: list[data.Sample], manifest: dict[str, dict[str, str]], drop_sources: tuple[str, ...]
) -> list[data.Sample]:
    kept, _ = data.exclude_kinds(samples, manifest, EXCLUDE_KINDS)
    return [s for s in kept if data.source_of(s, manifest) not in drop_sources]


def train_images(kept: list[data.Sample], limit: int | None) -> list[data.Sample]:
    """The train split in a seeded random order, the first `limit` of it (None: all): a
    smaller run is a random subset, and every larger one holds it."""
    train = [s for s in kept if s.split == "train"]
    random.Random(SEED).shuffle(train)
    return train[:limit]


def fit(
    cache: FeatureCache,
    samples: list[data.Sample],
    manifest: dict[str, dict[str, str]],
    drop_sources: tuple[str, ...] = (),
    train_limit: int | None = None,
    jitter_grid: tuple[float, ...] = JITTER_GRID,
    size_steady: float = SIZE_STEADY,
) -> dict[str, Any]:
    """Head, calibration and operating points from the train and val splits (without
    `drop_sources`: a leave-one-generator-out fit). `train_limit` is taken before the drop, so
    a leave-one-out fit sees the same images less the held-out generator's."""
    train = train_images(select(samples, manifest, ()), train_limit)
    train = [s for s in train if data.source_of(s, manifest) not in drop_sources]
    kept = select(samples, manifest, drop_sources)
    val_samples = [s for s in kept if s.split == "val"]
    val = load_split(cache, val_samples, manifest, VAL_VIEWS)
    x, y, shrunk = train_split(cache, train, paired=size_steady > 0)
    fixed = () if shrunk is None else (Steadiness(shrunk, size_steady),)
    change = None
    if any(jitter_grid):  # box jitter: the moved copies are trained on, and their change costs
        moved = BoxJitter.of(cache, train)
        x, y, change = np.vstack([x, moved.rows]), np.append(y, moved.y), moved.change
    chosen = choose_head(x, y, change, val, jitter_grid, fixed)
    head = chosen.head
    logits = val.logits(head)
    temperature = metrics.fit_temperature(logits[:, None], val.y)
    p = metrics.calibrated(logits[:, None], temperature)
    threshold = metrics.choose_threshold(val.y, p)
    used = sorted(f"{s.split}\t{s.label}\t{s.rel}" for s in [*train, *val_samples])
    return {
        "head": head,
        "l2": chosen.l2,
        "jitter": chosen.jitter,
        "data_fingerprint": hashlib.sha256("\n".join(used).encode()).hexdigest(),
        "val_auc": chosen.val_auc,
        "calibration": {
            "temperature": temperature,
            "threshold": threshold,
            "threshold_rule": metrics.THRESHOLD_RULE + ", on validation images native and shrunk",
            "operating_points": operating_points(val, p, threshold),
        },
        "counts": {
            "train": len(train),
            "train_ai": sum(s.label for s in train),
            "train_rows": int(len(y)),  # with the shrunk and jittered copies
            "val_images": len(val.y),
        },
    }


def open_cache(spec: PreprocessSpec, blocks: tuple[int, ...] = BLOCKS) -> FeatureCache:
    """The feature cache, reading the CLS tokens of `blocks` (computing no later block) of the
    encoder run at the spec's input size."""
    side = spec.input_size
    tower = encoder.Encoder(encoder.require_encoder(), depth=max(blocks) + 1, side=side)
    return FeatureCache(spec, tower, encoder.identity(side), encoder.columns(blocks))


def train(
    data_dir: Path,
    out: Path,
    force: bool = False,
    train_limit: int | None = None,
    blocks: tuple[int, ...] = BLOCKS,
    jitter_grid: tuple[float, ...] = JITTER_GRID,
    side: int = encoder.SIZE,
    size_steady: float = SIZE_STEADY,
) -> dict[str, Any]:
    """Fit the probe on DATA, write the run to `out`; the record. CheckFailed when the
    validation mix shows no signal (the run is written, to look at). `side`: the encoder's
    input size (its face crop). `size_steady`: the weight on shrinking's logit change (0: each
    train image seen once, as drawn)."""
    if out.exists() and any(out.iterdir()) and not force:
        raise TrainerError(f"{out} exists and is not empty; pass --force to replace its files")
    started = datetime.datetime.now(datetime.timezone.utc)
    samples, layout = data.find_samples(data_dir, SEED)
    manifest = data.read_manifest(data_dir)
    spec = clip_spec(side=side)
    cache = open_cache(spec, blocks)
    fitted = fit(cache, samples, manifest, (), train_limit, jitter_grid, size_steady)
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(out / "head.json", json.dumps(fitted["head"].to_dict()))
    record = {
        "family": "clip",
        "encoder": encoder.provenance(),
        "settings": {
            "data": str(data_dir),
            "seed": SEED,
            "exclude_kinds": list(EXCLUDE_KINDS),
            "shrunk_share": SHRUNK_SHARE,  # with size steadiness: who gets box-jitter copies
            "train_views": "native and small" if size_steady > 0 else "one, drawn",
            "size_steady": size_steady,
            "val_views": list(VAL_VIEWS),
            "l2_grid": list(L2_GRID),
            "l2": fitted["l2"],
            "jitter_grid": list(jitter_grid),
            "jitter": fitted["jitter"],
            "box_jitter": {"shift": JITTER_SHIFT, "scale": JITTER_SCALE},
            "blocks": list(blocks),
            "head": f"logistic regression on the CLS tokens of blocks {list(blocks)}",
            "train_limit": train_limit,
        },  # fmt: skip
        "preprocess": spec.to_dict(),
        "calibration": fitted["calibration"],
        "val_auc": fitted["val_auc"],  # by "jitter weight/L2"
        "data": {
            "layout": layout,
            "counts": fitted["counts"],
            "fingerprint": fitted["data_fingerprint"],  # over (split, label, path) of each image
        },
        "versions": versions(),
        "created": started.isoformat(timespec="seconds"),
    }
    files.write_text(out / "config.json", json.dumps(record, indent=2))
    best_auc = max(fitted["val_auc"].values())
    chosen_auc = fitted["val_auc"][grid_key(fitted["jitter"], fitted["l2"])]
    print(
        f"probe written to {out}: L2 {fitted['l2']:g}, jitter weight {fitted['jitter']:g}, "
        f"val-mix ROC-AUC {chosen_auc:.4f} (the grid's best {best_auc:.4f}), "
        f"T {fitted['calibration']['temperature']:.3f}, "
        f"threshold {fitted['calibration']['threshold']:.4f}"
    )
    if best_auc < 0.6:
        raise CheckFailed(f"the probe found no signal (val-mix ROC-AUC {best_auc:.3f})")
    return record


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
    }


def load_head(run: Path) -> tuple[LinearHead, dict[str, Any]]:
    head_file, config = run / "head.json", run / "config.json"
    if not head_file.is_file() or not config.is_file():
        raise TrainerError(f"{run} is not a probe run (needs head.json and config.json)")
    record = json.loads(config.read_text())
    return LinearHead.from_dict(json.loads(head_file.read_text())), record


def spec_of(record: dict[str, Any]) -> PreprocessSpec:
    """The preprocessing a run was trained with (its crop size is the encoder's input size)."""
    return PreprocessSpec.from_dict(record["preprocess"])


def blocks_of(record: dict[str, Any]) -> tuple[int, ...]:
    """The blocks a run's head reads (runs before blocks were recorded read the last one)."""
    return tuple(record["settings"].get("blocks", [11]))
