"""int8 quantisation: onnxruntime static QDQ, per-channel, calibrated on real images.

The int8 model keeps the fp32 model's facescan metadata (so it scans with no flag), gains
`facescan.precision = "int8"`, and a parity report compares both on the calibration images.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scanner.metadata import PREFIX
from scanner.preprocess import preprocess
from scanner.session import ModelSession
from trainer import data
from trainer.config import TrainerError


def calibration_images(folder: Path, limit: int) -> list[Path]:
    """Up to `limit` image files under `folder`, spread evenly over its sorted listing (what
    cannot be listed is skipped: calibration needs enough images, not every one)."""
    files, _ = data.image_files(folder)
    if not files:
        raise TrainerError(f"no calibration images under {folder}")
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def model_inputs(session: ModelSession, files: list[Path]) -> list[np.ndarray]:
    """One preprocessed (crops, ...) array per readable file, through the scanner's own path."""
    spec = session.info.preprocess
    results = data.decode_each([str(p) for p in files], spec, lambda d: preprocess(d.image, spec))
    inputs = [r for r in results if not isinstance(r, str)]  # the unreadable are skipped
    if not inputs:
        raise TrainerError("none of the calibration images could be read")
    return inputs


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over preprocessed images."""

    def __init__(self, input_name: str, inputs: list[np.ndarray]) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter({input_name: x} for x in inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(model: Path, calib: Path, out: Path, limit: int = 200) -> dict[str, float]:
    """Write the int8 model to `out` and return the parity report against `model`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = ModelSession(model, provider="cpu")
    inputs = model_inputs(fp32, calibration_images(calib, limit))
    input_name = onnx.load(str(model)).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # ONNX shape inference and folding, as onnxruntime advises (the symbolic pass needs sympy
        # and adds nothing for a fixed-size image model).
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            _Reader(input_name, inputs),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # u8 activations with s8 weights: onnxruntime's fast integer path on x86 (VNNI).
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # 7-bit weights: x86 CPUs without VNNI (AVX2 only) multiply u8 x s8 pairs with an
            # instruction that saturates; with full 8-bit weights the shipped model lost 3.6
            # points of test accuracy there (0.832 vs 0.867), with 7 bits none (0.867).
            reduce_range=True,
        )
    _copy_metadata(model, out)
    return parity(fp32, ModelSession(out, provider="cpu"), inputs)


def _copy_metadata(source: Path, target: Path) -> None:
    import onnx

    original = onnx.load(str(source))
    quantized = onnx.load(str(target))
    del quantized.metadata_props[:]
    for prop in original.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key=PREFIX + "precision", value=json.dumps("int8"))
    onnx.save(quantized, str(target))


def parity(fp32: ModelSession, int8: ModelSession, inputs: list[np.ndarray]) -> dict[str, float]:
    """How far the int8 scores are from fp32 on the same images (mean over crops per image)."""
    a = np.array([fp32.predict(x).mean() for x in inputs])
    b = np.array([int8.predict(x).mean() for x in inputs])
    threshold = fp32.info.threshold
    return {
        "images": len(inputs),
        "max_abs_diff": float(np.abs(a - b).max()),
        "mean_abs_diff": float(np.abs(a - b).mean()),
        "label_agreement": float(((a >= threshold) == (b >= threshold)).mean()),
    }
