"""`facescan-train export`: a run's best Keras model to a self-describing ONNX file.

The ONNX graph is sigmoid(logit / T), so its output is the calibrated probability of ai; the
preprocessing, labels, threshold and the run's record go into `metadata_props`, so
`facescan --model model.onnx` needs no other flag. A parity check against Keras on real (or
generated) images refuses the file when they disagree by more than PARITY_LIMIT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from scanner.metadata import ModelInfo
from scanner.preprocess import PreprocessSpec
from trainer import data, files, metrics
from trainer.config import CheckFailed, TrainConfig, TrainerError
from trainer.evaluate import keras_logits, load_run, onnx_scores
from trainer.run_metadata import exported_info

PARITY_LIMIT = 1e-4
HEADLINE = (
    *("n", "loss", "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision"),
    *("tpr_at_1pct_fpr", "confusion_matrix", "by_source"),
)


def model_info(record: dict[str, Any], run: Path) -> ModelInfo:
    """What the ONNX file says about itself: ModelInfo plus the run's record in `extra`."""
    import onnx
    import tf2onnx

    results = (
        json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    )
    calibration = record["calibration"]
    extra = {
        "metrics": {
            split: {k: results[split].get(k) for k in HEADLINE}
            for split in ("val", "test")
            if split in results
        },
        "calibration": calibration,  # temperature, threshold and the rule that chose it
        "training": {
            "data_fingerprint": record["data"]["fingerprint"],
            "settings": record["settings"],
            "model": record["model"],
            "counts": record["data"]["counts"],
            "dropped_by_kind": record["data"].get("dropped_by_kind", {}),
            "epochs_run": record.get("epochs_run"),
            "best_val_auc": record.get("best_val_auc"),
            "best_epoch": record.get("best_epoch"),
            "created": record["created"],
        },
        "versions": {
            **record["versions"],
            "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__,
        },
    }
    return exported_info(record, extra)


def to_onnx(model: Any, size: int, temperature: float, opset: int) -> Any:
    """tf2onnx from a tf.function with an explicit signature (dynamic batch axis)."""
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec([None, size, size, 3], tf.float32, name="images")]

    @tf.function(input_signature=signature)
    def probability(images):
        return tf.sigmoid(model(images, training=False) / temperature)

    proto, _ = tf2onnx.convert.from_function(probability, input_signature=signature, opset=opset)
    return proto


def parity_images(record: dict[str, Any], spec: PreprocessSpec, count: int = 16) -> list:
    """Real images from the run's DATA (its test split), else seeded noise images."""
    cfg = TrainConfig.from_dict(record["settings"])
    try:
        samples, _ = data.find_samples(
            Path(cfg.data), cfg.seed, cfg.val_fraction, cfg.test_fraction
        )
    except TrainerError:
        samples = []
    picked = [s for s in samples if s.split == "test"] or samples
    rng = np.random.default_rng(0)
    picked = [picked[i] for i in sorted(rng.permutation(len(picked))[:count])]
    pixels = data.decode_all(picked, spec).pixels if picked else []
    if pixels:
        return pixels
    side = spec.input_size + spec.input_size // 2  # not the input size: exercises resize/crop
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(count)]


def check_signal(record: dict[str, Any], run: Path, force: bool) -> None:
    """Refuse a run whose calibration found no signal (train.check_calibration failed it): its
    model scores every image near 0.5, on whichever side of the threshold. `force` exports it
    with a warning."""
    calibration = record["calibration"]
    if calibration.get("temperature_at_edge") != "upper":
        return
    auc = record.get("best_val_auc")
    why = (
        f"{run}'s calibration found no signal (temperature {calibration['temperature']:g} at the "
        f"top of its range, val ROC-AUC {'n/a' if auc is None else f'{auc:.3f}'}): its model "
        "scores every image near 0.5"
    )
    if not force:
        raise CheckFailed(f"export refused: {why}; --force-no-signal exports it anyway")
    print(f"warning: {why}; exported because of --force-no-signal", file=sys.stderr)


def export(run: Path, out: Path, opset: int = 17, force_no_signal: bool = False) -> float:
    """Write the ONNX file; return the parity error. TrainerError when it cannot run,
    CheckFailed (and `out` untouched) when ONNX and Keras disagree or, unless
    `force_no_signal`, when the run's calibration found no signal."""
    if not 13 <= opset <= 18:
        raise TrainerError(f"--opset {opset}: tf2onnx 1.17 supports opsets 13 to 18")
    model, record = load_run(run)
    check_signal(record, run, force_no_signal)
    info = model_info(record, run)
    spec, temperature = info.preprocess, info.extra["calibration"]["temperature"]
    import onnx

    proto = to_onnx(model, spec.input_size, temperature, opset)
    for key, value in info.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    out.parent.mkdir(parents=True, exist_ok=True)
    pixels = parity_images(record, spec)
    keras_p = metrics.calibrated(keras_logits(model, pixels, spec), temperature)
    measured: list[float] = []  # the parity error, once written

    def write_if_faithful(candidate: Path) -> None:
        """Save, score with the scanner's session, and refuse (leaving `out` untouched)."""
        from scanner.session import ModelSession

        onnx.save(proto, str(candidate))
        onnx_p = onnx_scores(ModelSession(candidate, provider="cpu"), pixels)
        measured.append(float(np.max(np.abs(onnx_p - keras_p))))
        print(f"parity: max |ONNX - Keras| = {measured[0]:.2e} over {len(pixels)} images", end="")
        print(f" (limit {PARITY_LIMIT:g})")
        if not measured[0] <= PARITY_LIMIT:
            raise CheckFailed(f"export refused: ONNX and Keras disagree by {measured[0]:.2e}")

    files.atomic_write(out, write_if_faithful)
    print(f"wrote {out} (opset {opset}, threshold {info.threshold:.4f}, T {temperature:.3f})")
    return measured[0]
