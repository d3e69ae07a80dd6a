"""`facescan-train train`: data in, a calibrated Keras model and an honest report out.

Steps: find and split the images, decode them once, fit with a seeded tf.data pipeline while
keeping the checkpoint of best validation ROC-AUC, then on validation fit the calibration
temperature and choose the threshold, and report val and test metrics in RUN.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from scanner.preprocess import PreprocessSpec
from trainer import data, files, metrics, plots, tfenv
from trainer.config import CheckFailed, TrainConfig, TrainerError
from trainer.evaluate import headline, image_logits, report_failures, report_text, write_report

# Fewer images of a class in any split and its metrics, temperature and threshold are noise.
MIN_PER_CLASS = 10


def versions() -> dict[str, str]:
    import keras
    import PIL
    import tensorflow as tf

    from scanner import __version__

    return {
        "facescan": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings that cannot work, all problems in one message, before any data is read."""
    from trainer.archs import ARCHS, MIN_FEATURE_MAP, feature_map_side, smallest_input

    problems = cfg.problems()
    if cfg.arch not in ARCHS:
        problems.append(f"unknown --arch {cfg.arch!r} (choose from {', '.join(ARCHS)})")
    elif feature_map_side(cfg.arch, cfg.image_size) < MIN_FEATURE_MAP:
        problems.append(
            f"--image-size {cfg.image_size} is too small for --arch {cfg.arch}: its last feature "
            f"map would be under {MIN_FEATURE_MAP} x {MIN_FEATURE_MAP} px; use at least "
            f"{smallest_input(cfg.arch)}"
        )
    try:
        cfg.spec()
    except ValueError as e:
        problems.append(str(e))
    if problems:
        raise TrainerError("; ".join(problems))


def load_data(cfg: TrainConfig) -> tuple[data.Decoded, dict[str, Any], dict]:
    """Decoded images of every split, with the record of how they were found and split."""
    root = Path(cfg.data)
    samples, record = data.find_samples(root, cfg.seed, cfg.val_fraction, cfg.test_fraction)
    manifest = data.read_manifest(root)
    kinds = cfg.exclude_kind if manifest else ()  # the recipe's default, on DATA without kinds
    if cfg.exclude_kind and not manifest:
        listed = ", ".join(cfg.exclude_kind)
        print(f"no {data.MANIFEST} in DATA: nothing to drop by kind ({listed})")
    samples, record["dropped_by_kind"] = data.exclude_kinds(samples, manifest, kinds)
    samples, record["dropped_by_source"] = data.exclude_sources(
        samples, manifest, cfg.exclude_source
    )
    samples = data.limit_per_split(samples, cfg.limit, cfg.seed)
    decoded = data.decode_all(samples, cfg.spec(), cfg.workers)
    report_failures(decoded.failed)
    record["unreadable"] = [{"path": p, "error": e} for p, e in decoded.failed]
    record["counts"] = {
        split: {
            name: sum(1 for s in decoded.samples if s.split == split and s.label == k)
            for k, name in enumerate(data.LABELS)
        }
        for split in data.SPLITS
    }
    check_counts(record["counts"], cfg)
    record["fingerprint"] = data.fingerprint(decoded)
    return decoded, record, manifest


def check_counts(counts: dict[str, dict[str, int]], cfg: TrainConfig) -> None:
    """Every split that is there needs MIN_PER_CLASS readable images of each class: fewer, and
    the validation AUC, temperature and threshold (or the test metrics) are noise."""
    short = {
        split: per_class
        for split, per_class in counts.items()
        if (split != "test" or any(per_class.values())) and min(per_class.values()) < MIN_PER_CLASS
    }
    if short:
        cause = f" (--limit {cfg.limit} images per split)" if cfg.limit else ""
        found = "; ".join(f"{split} {per_class}" for split, per_class in short.items())
        raise TrainerError(
            f"too few images to train and validate{cause}: {found}; every split needs at least "
            f"{MIN_PER_CLASS} readable images of each class"
        )


def class_weights(y: np.ndarray) -> dict[int, float] | None:
    """Balanced weights (n / (2 n_class)) when the classes differ by more than 10 %."""
    counts = np.bincount(y, minlength=2)
    if counts.min() >= 0.9 * counts.max():
        return None
    return {k: float(len(y) / (2 * counts[k])) for k in (0, 1)}


def best_epoch_callback(val: data.Decoded, spec: Any) -> Any:
    """Each epoch: val loss/accuracy/ROC-AUC on whole images (the scanner's crops, averaged),
    added to the logs so early stopping, the history and the progress line see them. The weights
    of the best val ROC-AUC are kept in memory with that AUC and its epoch (1-based, as in
    history.csv); the checkpoint is written once, from them, after training."""
    import keras

    y = val.labels()

    class BestValidationAUC(keras.callbacks.Callback):
        best_auc = -1.0
        best_epoch = 0
        best_weights: list[np.ndarray] = []

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            p = metrics.calibrated(image_logits(self.model, val, spec), 1.0)
            auc = metrics.roc_auc(y, p)
            if logs is not None:
                logs.update(
                    val_loss=metrics.log_loss(y, p),
                    val_accuracy=float(np.mean((p >= 0.5) == y)),
                    val_auc=auc,
                )
            if auc > self.best_auc:
                self.best_auc, self.best_epoch = auc, epoch + 1
                self.best_weights = self.model.get_weights()

    return BestValidationAUC()


def fit(cfg: TrainConfig, decoded: data.Decoded) -> tuple[Any, dict[str, list], dict[str, Any]]:
    """The model of the best validation epoch (uncompiled: weights and architecture only), the
    history, and {"best_val_auc", "best_epoch"}."""
    import keras
    import tensorflow as tf

    from trainer.archs import build, with_tta

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    spec = cfg.spec()
    train = decoded.subset("train")
    weights = class_weights(train.labels())
    steps = math.ceil(len(train.samples) / cfg.batch_size)
    model = build(cfg.arch, cfg.image_size, cfg.pretrained)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=cfg.epochs * steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),  # logit 0 = p 0.5
            keras.metrics.AUC(name="auc", from_logits=True),
        ],
    )
    tracker = best_epoch_callback(decoded.subset("val"), spec)
    stop = keras.callbacks.EarlyStopping("val_auc", patience=cfg.patience, mode="max")
    print(f"class weights: {weights or 'none (balanced enough)'}")
    history = model.fit(
        data.train_dataset(train, spec, cfg, weights),
        epochs=cfg.epochs,
        callbacks=[tracker, stop],
        verbose=2,
        shuffle=False,  # the dataset shuffles itself, seeded per epoch
    )
    best = build(cfg.arch, cfg.image_size)  # no optimizer state: it belongs to the last epoch
    best.set_weights(tracker.best_weights)
    record = {"best_val_auc": tracker.best_auc, "best_epoch": tracker.best_epoch}
    history_values = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return with_tta(best, cfg.tta), history_values, record


def describe_model(cfg: TrainConfig) -> dict[str, Any]:
    from trainer.archs import build, count_macs

    model = build(cfg.arch, cfg.image_size)
    macs = count_macs(model) * (2 if cfg.tta == "flip" else 1)  # the mirror is scored too
    info = {"arch": cfg.arch, "parameters": int(model.count_params()), "macs_per_image": macs}
    info["tta"] = cfg.tta
    info["gflops_per_image"] = round(2 * macs / 1e9, 4)
    return info


def write_history(history: dict[str, list], path: Path) -> None:
    keys = list(history)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", *keys])
        for i in range(len(history[keys[0]]) if keys else 0):
            w.writerow([i + 1, *(history[k][i] for k in keys)])


def calibrate(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Temperature (min val log loss) and threshold (THRESHOLD_RULE) on validation logits; an
    edge of the temperature range is recorded (train() reports it)."""
    temperature = metrics.fit_temperature(logits, y)
    threshold = metrics.choose_threshold(y, metrics.calibrated(logits, temperature))
    calibration: dict[str, Any] = {
        "temperature": temperature,
        "threshold": threshold,
        "threshold_rule": metrics.THRESHOLD_RULE,
    }
    edge = metrics.temperature_edge(temperature)
    if edge:
        calibration["temperature_at_edge"] = edge
    return calibration


def train(cfg: TrainConfig, out: Path, force: bool = False) -> dict[str, Any]:
    """Fit on cfg.data and write the run to `out`; the val/test metrics. TrainerError when it
    cannot run, CheckFailed (after writing the run) when calibration found no signal."""
    files.check_out_dir(out, force, "RUN folder")  # before the seconds TensorFlow takes to import
    tfenv.load()
    check_config(cfg)
    started = datetime.datetime.now(datetime.timezone.utc)
    decoded, record, manifest = load_data(cfg)
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad DATA leaves no empty RUN behind
    write_splits(decoded, out / "splits.csv")
    model_info = describe_model(cfg)
    print(
        f"data: {record['counts']} (fingerprint {record['fingerprint'][:12]}); model {cfg.arch}: "
        f"{model_info['parameters']:,} parameters, {model_info['gflops_per_image']} GFLOP/image"
    )
    model, history, best = fit(cfg, decoded)
    files.atomic_write(out / "model.keras", lambda temp: model.save(temp))
    write_history(history, out / "history.csv")
    plots.curves(history, out / "curves.png", best["best_epoch"])

    calibration, results = calibrate_and_report(model, decoded, cfg.spec(), manifest, out)
    config: dict[str, Any] = {
        "settings": cfg.to_dict(),
        "preprocess": cfg.spec().to_dict(),
        "data": record,
        "model": model_info,
        "versions": versions(),
        "created": started.isoformat(timespec="seconds"),
        "calibration": calibration,
        **best,
        "epochs_run": len(history.get("loss", [])),
        "training_seconds": round(
            (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1
        ),
    }
    files.write_text(out / "config.json", json.dumps(config, indent=2))
    print(
        f"run written to {out} (best val ROC-AUC {best['best_val_auc']:.4f} at epoch "
        f"{best['best_epoch']}, temperature {calibration['temperature']:.3f}, threshold "
        f"{calibration['threshold']:.4f})"
    )
    check_calibration(calibration, results["val"])
    return results


def write_splits(decoded: data.Decoded, path: Path) -> None:
    """The exact split, for reproduction."""
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(
            [("split", "label", "path")]
            + [(s.split, data.LABELS[s.label], s.rel) for s in decoded.samples]
        )


def report(
    model: Any,
    decoded: data.Decoded,
    spec: PreprocessSpec,
    calibration: dict[str, Any],
    manifest: dict[str, dict[str, str]],
    out: Path,
) -> dict[str, Any]:
    """Val and test metrics, plots, metrics.json and classification_report.txt in `out`."""
    temperature, threshold = calibration["temperature"], calibration["threshold"]
    results: dict[str, Any] = {"threshold": threshold, "threshold_rule": metrics.THRESHOLD_RULE}
    results["temperature"] = temperature
    texts = []
    for split in ("val", "test"):
        part = decoded.subset(split)
        if not part.samples:
            continue
        y = part.labels()
        p = metrics.calibrated(image_logits(model, part, spec), temperature)
        sources = [data.source_of(s, manifest) for s in part.samples]
        results[split] = write_report(out, split, y, p, threshold, sources)
        texts.append(report_text(split, y, p, threshold))
        print(headline(split, results[split]))
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    (out / "classification_report.txt").write_text("\n".join(texts))
    return results


def calibrate_and_report(
    model: Any,
    decoded: data.Decoded,
    spec: PreprocessSpec,
    manifest: dict[str, dict[str, str]],
    out: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Temperature and threshold fitted on the validation split, then `report` with them: the
    calibration and the val/test metrics."""
    val = decoded.subset("val")
    calibration = calibrate(image_logits(model, val, spec), val.labels())
    return calibration, report(model, decoded, spec, calibration, manifest, out)


def check_calibration(calibration: dict[str, Any], val: dict[str, Any]) -> None:
    """A temperature on the top edge means the model found no signal: the run is written (to
    look at) but fails, so a pipeline does not export it. The bottom edge is a warning."""
    edge = calibration.get("temperature_at_edge")
    t, auc = calibration["temperature"], val["roc_auc"]
    if edge == "upper":
        raise CheckFailed(
            f"calibration found no signal: the temperature fit hit the top of its range (T {t:g},"
            f" val ROC-AUC {auc:.3f}); scores would all be near 0.5. `export` refuses this run"
        )
    if edge == "lower":
        print(
            f"warning: the temperature fit hit the bottom of its range (T {t:g}): validation is "
            "separated perfectly, so its scores are as confident as they can be; more "
            "validation images would calibrate them",
            file=sys.stderr,
        )
