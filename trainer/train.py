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
import time
from pathlib import Path
from typing import Any

import numpy as np

from trainer import data, metrics, plots
from trainer.config import AUGMENTATIONS, TrainConfig, TrainerError
from trainer.evaluate import headline, keras_logits, report_failures, report_text, write_report


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


def check_run_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise TrainerError(f"RUN {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TrainerError(f"RUN folder {out} exists and is not empty (pass --force to reuse it)")


def check_config(cfg: TrainConfig) -> None:
    from trainer.archs import ARCHS

    problems = []
    if cfg.arch not in ARCHS:
        problems.append(f"unknown --arch {cfg.arch!r} (choose from {', '.join(ARCHS)})")
    unknown = [a for a in cfg.augment.enabled if a not in AUGMENTATIONS]
    if unknown:
        problems.append(
            f"unknown augmentation(s) {', '.join(unknown)} ({', '.join(AUGMENTATIONS)})"
        )
    if cfg.epochs < 1 or cfg.batch_size < 1:
        problems.append("--epochs and --batch-size must be at least 1")
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
    samples, record["dropped_by_kind"] = data.exclude_kinds(samples, manifest, cfg.exclude_kind)
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
    for split in ("train", "val"):
        if min(record["counts"][split].values()) == 0:
            raise TrainerError(
                f"the {split} split needs readable images of both classes, has "
                f"{record['counts'][split]}"
            )
    record["fingerprint"] = data.fingerprint(decoded)
    return decoded, record, manifest


def class_weights(y: np.ndarray) -> dict[int, float] | None:
    """Balanced weights (n / (2 n_class)) when the classes differ by more than 10 %."""
    counts = np.bincount(y, minlength=2)
    if counts.min() >= 0.9 * counts.max():
        return None
    return {k: float(len(y) / (2 * counts[k])) for k in (0, 1)}


def make_callback(val: data.Decoded, spec: Any, checkpoint: Path):
    """Each epoch: val loss/accuracy/ROC-AUC on whole images (the scanner's crops, averaged),
    added to the logs so early stopping, the history and the progress line see them; the model
    is saved whenever val ROC-AUC improves."""
    import keras

    y = val.labels()

    class ValidationAUC(keras.callbacks.Callback):
        best = -1.0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            p = metrics.calibrated(keras_logits(self.model, val.pixels, spec), 1.0)
            auc = metrics.roc_auc(y, p)
            if logs is not None:
                logs.update(
                    val_loss=metrics.log_loss(y, p),
                    val_accuracy=float(np.mean((p >= 0.5) == y)),
                    val_auc=auc,
                )
            if auc > self.best:
                self.best = auc
                self.model.save(checkpoint)

    return ValidationAUC()


def fit(cfg: TrainConfig, decoded: data.Decoded, out: Path) -> tuple[Any, dict[str, list]]:
    import keras
    import tensorflow as tf

    from trainer.archs import build

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
    callbacks = [
        make_callback(decoded.subset("val"), spec, out / "model.keras"),
        keras.callbacks.EarlyStopping("val_auc", patience=cfg.patience, mode="max"),
    ]
    print(f"class weights: {weights or 'none (balanced enough)'}")
    history = model.fit(
        data.train_dataset(train, spec, cfg, weights),
        epochs=cfg.epochs,
        callbacks=callbacks,
        verbose=2,
        shuffle=False,  # the dataset shuffles itself, seeded per epoch
    )
    best = keras.models.load_model(out / "model.keras", compile=False)
    return best, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def describe_model(cfg: TrainConfig) -> dict[str, Any]:
    from trainer.archs import build, count_macs

    model = build(cfg.arch, cfg.image_size)
    macs = count_macs(model)
    info = {"arch": cfg.arch, "parameters": int(model.count_params()), "macs_per_image": macs}
    info["gflops_per_image"] = round(2 * macs / 1e9, 4)
    return info


def write_history(history: dict[str, list], path: Path) -> None:
    keys = list(history)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", *keys])
        for i in range(len(history[keys[0]]) if keys else 0):
            w.writerow([i + 1, *(history[k][i] for k in keys)])


def train(cfg: TrainConfig, out: Path, force: bool = False) -> dict[str, Any]:
    check_config(cfg)
    check_run_dir(out, force)
    started = time.time()
    decoded, record, manifest = load_data(cfg)
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad DATA leaves no empty RUN behind
    with open(out / "splits.csv", "w", newline="") as f:  # the exact split, for reproduction
        csv.writer(f).writerows(
            [("split", "label", "path")]
            + [(s.split, data.LABELS[s.label], s.rel) for s in decoded.samples]
        )
    model_info = describe_model(cfg)
    print(
        f"data: {record['counts']} (fingerprint {record['fingerprint'][:12]}); model {cfg.arch}: "
        f"{model_info['parameters']:,} parameters, {model_info['gflops_per_image']} GFLOP/image"
    )
    config = {
        "settings": cfg.to_dict(),
        "preprocess": cfg.spec().to_dict(),
        "data": record,
        "model": model_info,
        "versions": versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    model, history = fit(cfg, decoded, out)
    write_history(history, out / "history.csv")
    plots.curves(history, out / "curves.png")

    spec = cfg.spec()
    val = decoded.subset("val")
    val_logits = keras_logits(model, val.pixels, spec)
    temperature = metrics.fit_temperature(val_logits, val.labels())
    threshold = metrics.choose_threshold(val.labels(), metrics.calibrated(val_logits, temperature))
    config["calibration"] = {
        "temperature": temperature,
        "threshold": threshold,
        "threshold_rule": metrics.THRESHOLD_RULE,
    }
    results: dict[str, Any] = {"threshold": threshold, "threshold_rule": metrics.THRESHOLD_RULE}
    results["temperature"] = temperature
    texts = []
    for split in ("val", "test"):
        part = decoded.subset(split)
        if not part.samples:
            continue
        y = part.labels()
        logits = val_logits if split == "val" else keras_logits(model, part.pixels, spec)
        p = metrics.calibrated(logits, temperature)
        sources = [data.source_of(s, manifest) for s in part.samples]
        results[split] = write_report(out, split, y, p, threshold, sources)
        texts.append(report_text(split, y, p, threshold))
        print(headline(split, results[split]))
    config["training_seconds"] = round(time.time() - started, 1)
    config["epochs_run"] = len(history.get("loss", []))
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    (out / "classification_report.txt").write_text("\n".join(texts))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"run written to {out} (temperature {temperature:.3f}, threshold {threshold:.4f})")
    return results
