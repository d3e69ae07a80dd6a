"""Scores and reports: a Keras run or an ONNX file scored on a folder, metrics and plots written.

Both model kinds score an image the way the scanner does: every crop of the scanner's geometry,
probability of ai per crop, mean over the crops.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scanner.preprocess import PreprocessSpec, normalize
from scanner.work import score_crops
from trainer import data, files, metrics, plots, tfenv
from trainer.config import TrainConfig, TrainerError

EVAL_BATCH = 32


def keras_logits(model: Any, pixels: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Per-crop logits (n_images, crops) of a Keras model."""
    out = [
        np.asarray(model(normalize(x, spec), training=False), np.float64).reshape(
            n, spec.crops_per_image
        )
        for x, n in data.eval_batches(pixels, spec, EVAL_BATCH)
    ]
    return np.concatenate(out) if out else np.zeros((0, spec.crops_per_image))


def image_logits(model: Any, decoded: data.Decoded, spec: PreprocessSpec) -> np.ndarray:
    """Per-image logits (n_images, crops), as the scanner judges an image: with face crops,
    its highest unit (sigmoid is monotonic, so the highest logit gives the highest score)."""
    if decoded.units is None:
        return keras_logits(model, decoded.pixels, spec)
    per_unit = keras_logits(model, [u for units in decoded.units for u in units], spec)
    return np.maximum.reduceat(per_unit, decoded.unit_starts(), axis=0)


def onnx_scores(session: Any, pixels: list[np.ndarray]) -> np.ndarray:
    """Per-image scores of a scanner ModelSession, by the scanner's own scoring function."""
    spec = session.info.preprocess
    out = [score_crops(session, spec, x) for x, _ in data.eval_batches(pixels, spec, EVAL_BATCH)]
    return np.concatenate(out) if out else np.zeros(0)


def onnx_image_scores(session: Any, decoded: data.Decoded) -> np.ndarray:
    """Per-image scores of an ONNX model: with face crops, each image's highest unit's."""
    if decoded.units is None:
        return onnx_scores(session, decoded.pixels)
    per_unit = onnx_scores(session, [u for units in decoded.units for u in units])
    return np.maximum.reduceat(per_unit, decoded.unit_starts())


def load_run(run: Path) -> tuple[Any, dict[str, Any]]:
    """The best Keras model of a run and its config.json, or a clear TrainerError."""
    config_path, model_path = run / "config.json", run / "model.keras"
    if not config_path.is_file() or not model_path.is_file():
        raise TrainerError(f"{run} is not a training run (needs config.json and model.keras)")
    try:
        record = json.loads(config_path.read_text())
        record["calibration"]["temperature"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TrainerError(
            f"{config_path} is incomplete or corrupt (did training finish?)"
        ) from None
    tfenv.load()
    import keras

    import trainer.archs  # noqa: F401 (registers the layers a run may hold: HorizontalFlip)

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as e:  # zip, h5 and deserialisation errors all mean the same to the user
        raise TrainerError(f"cannot load checkpoint {model_path} (corrupt?): {e}") from None
    return model, record


def write_report(
    out: Path, split: str, y: np.ndarray, p: np.ndarray, threshold: float, sources: list[str]
) -> dict[str, Any]:
    """Metrics of one split plus its confusion/ROC/PR/score-histogram (and per-source) PNGs."""
    result = metrics.summary(y, p, threshold)
    plots.confusion(result["confusion_matrix"], out / f"confusion_{split}.png", split, threshold)
    if len(np.unique(y)) == 2:
        plots.roc(y, p, out / f"roc_{split}.png", split, threshold)
        plots.pr(y, p, out / f"pr_{split}.png", split, threshold)
    plots.score_histogram(y, p, threshold, out / f"scores_{split}.png", split)
    if any(s != "unknown" for s in sources):
        result["by_source"] = metrics.by_source(y, p, threshold, sources)
        plots.sources(
            result["by_source"], p, sources, threshold, out / f"sources_{split}.png", split
        )
    return result


def source_table(by_source: dict[str, dict[str, Any]]) -> str:
    """metrics.by_source as a Markdown table (what the model card's per-source rows quote)."""
    lines = [
        "| source | label | n | correct | mean score | ROC-AUC against the real photos |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in by_source.items():
        auc = row.get("roc_auc_vs_real")
        lines.append(
            f"| {name} | {row['label']} | {row['n']} | {row['accuracy']:.3f} | "
            f"{row['mean_score']:.3f} | {'' if auc is None else f'{auc:.4f}'} |"
        )
    return "\n".join(lines) if by_source else "no per-source breakdown (DATA has no MANIFEST.csv)"


def report_text(name: str, y: np.ndarray, p: np.ndarray, threshold: float) -> str:
    pred = (p >= threshold).astype(np.int64)
    return f"== {name} (threshold {threshold:.4f}) ==\n" + metrics.classification_report(y, pred)


@dataclass
class Scorer:
    """A model ready to score decoded images: the Keras run (calibrated) or an ONNX file."""

    score: Callable[[data.Decoded], np.ndarray]  # per-image probability of ai
    spec: PreprocessSpec
    threshold: float
    config: TrainConfig  # the training settings (seed and fractions redo a flat split)


def onnx_scorer(path: Path) -> Scorer:
    from scanner.metadata import InvalidModelError
    from scanner.session import ModelSession

    try:
        session = ModelSession(path, provider="cpu")
    except InvalidModelError as e:
        raise TrainerError(str(e)) from None
    settings = session.info.extra.get("training", {}).get("settings")
    return Scorer(
        lambda decoded: onnx_image_scores(session, decoded),
        session.info.preprocess,
        session.info.threshold,
        TrainConfig.from_dict(settings) if settings else TrainConfig(),
    )


def keras_scorer(run: Path) -> Scorer:
    model, record = load_run(run)
    spec = PreprocessSpec.from_dict(record["preprocess"])
    temperature = record["calibration"]["temperature"]
    return Scorer(
        lambda decoded: metrics.calibrated(image_logits(model, decoded, spec), temperature),
        spec,
        record["calibration"]["threshold"],
        TrainConfig.from_dict(record["settings"]),
    )


def is_onnx(model_path: Path) -> bool:
    return model_path.suffix.lower() == ".onnx"


def scorer_for(model_path: Path) -> Scorer:
    """An exported .onnx file or a RUN folder, told apart by the suffix."""
    return onnx_scorer(model_path) if is_onnx(model_path) else keras_scorer(model_path)


@dataclass
class Split:
    """The decoded images of one split (or several, comma-separated) of DATA."""

    decoded: data.Decoded
    manifest: dict[str, dict[str, str]]
    dropped: dict[str, int]  # kind -> images left out


def load_split(
    data_dir: Path, split: str, scorer: Scorer, exclude_kind: tuple[str, ...] | None
) -> Split:
    """DATA's `split` ("all", a name, or a comma list) split the way the model's training split
    it, minus excluded kinds, decoded for `scorer`; unreadable images are named and skipped.
    `exclude_kind` None means: what the model was trained without, where DATA has a manifest."""
    cfg = scorer.config
    samples, _ = data.find_samples(data_dir, cfg.seed, cfg.val_fraction, cfg.test_fraction)
    if split != "all":
        samples = [s for s in samples if s.split in split.split(",")]
        if not samples:
            raise TrainerError(f"{data_dir} has no '{split}' split (try --split all)")
    manifest = data.read_manifest(data_dir)
    if exclude_kind is None:
        exclude_kind = cfg.exclude_kind if manifest else ()
    samples, dropped = data.exclude_kinds(samples, manifest, exclude_kind)
    if dropped:
        print(f"left out by kind (as in training; --exclude-kind to change): {dropped}")
    decoded = data.decode_all(samples, scorer.spec)
    report_failures(decoded.failed)
    if not decoded.samples:
        raise TrainerError(f"no readable images in {data_dir} ({split})")
    return Split(decoded, manifest, dropped)


def evaluate(
    model_path: Path,
    data_dir: Path,
    split: str,
    out: Path | None,
    exclude_kind: tuple[str, ...] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Score DATA's `split` (or "all") with a run folder or an .onnx file; write the report to
    `out` (report_dir). `exclude_kind` None means: what the model was trained without, where
    DATA has a manifest."""
    out = report_dir(model_path, "eval", split, out, force)
    scorer = scorer_for(model_path)
    loaded = load_split(data_dir, split, scorer, exclude_kind)
    decoded, manifest = loaded.decoded, loaded.manifest
    out.mkdir(parents=True, exist_ok=True)
    y, p = decoded.labels(), scorer.score(decoded)
    sources = [data.source_of(s, manifest) for s in decoded.samples]
    report = write_report(out, split, y, p, scorer.threshold, sources)
    result: dict[str, Any] = {
        "model": str(model_path),
        "data": str(data_dir),
        "split": split,
        "unreadable": len(decoded.failed),
        "dropped_by_kind": loaded.dropped,
        split: report,
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    (out / "classification_report.txt").write_text(report_text(split, y, p, scorer.threshold))
    print(headline(split, report))
    print(f"report written to {out}")
    return result


# Where reports on an .onnx file go unless --out says otherwise, under the working folder: not
# beside the file, since the shipped models sit in the installed package.
REPORTS = Path("runs")


def report_dir(
    model_path: Path, kind: str, split: str, out: Path | None, force: bool = False
) -> Path:
    """The folder of a `kind` report (eval, audit) on `split`: `out`, else RUN/KIND-SPLIT inside
    a RUN folder, or runs/KIND-STEM-SPLIT for an .onnx file (two models' reports on the same
    data get two folders). An existing, non-empty one is refused unless `force`."""
    if out is None:
        name = f"{kind}-{model_path.stem}-{split}" if is_onnx(model_path) else f"{kind}-{split}"
        out = REPORTS / name if is_onnx(model_path) else model_path / name
    files.check_out_dir(out, force, "report folder", "--out")
    return out


def report_failures(failed: list[tuple[str, str]]) -> None:
    """Unreadable images are skipped, and always said so."""
    if failed:
        shown = "; ".join(f"{path}: {why}" for path, why in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        print(f"skipped {len(failed)} unreadable image(s): {shown}{more}")


def headline(split: str, m: dict[str, Any]) -> str:
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
    tpr = "n/a" if m["tpr_at_1pct_fpr"] is None else f"{m['tpr_at_1pct_fpr']:.4f}"
    return (
        f"{split}: n={m['n']} loss={m['loss']:.4f} accuracy={m['accuracy']:.4f} "
        f"f1={m['f1']:.4f} roc_auc={auc} tpr@1%fpr={tpr}"
    )
