"""int8 quantisation and the model-card checks, on tiny generated models and images."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import build_conv_model, noise_image

from scanner.session import ModelSession

pytest.importorskip("onnxruntime.quantization")


def noise_folder(folder: Path, count: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        noise_image(24, seed=seed + i).save(folder / f"n{i:03}.png")
    return folder


def test_quantize_writes_an_int8_model_with_the_same_metadata(tmp_path: Path) -> None:
    from trainer.quantize import quantize

    fp32 = build_conv_model(tmp_path / "m.onnx")
    calib = noise_folder(tmp_path / "calib", 20)
    report = quantize(fp32, calib, tmp_path / "m-int8.onnx")
    int8 = onnx.load(str(tmp_path / "m-int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in int8.graph.node)
    props = {p.key: p.value for p in int8.metadata_props}
    assert json.loads(props["facescan.precision"]) == "int8"
    a, b = ModelSession(fp32, provider="cpu").info, ModelSession(tmp_path / "m-int8.onnx").info
    assert (a.preprocess, a.labels, a.threshold) == (b.preprocess, b.labels, b.threshold)
    assert report["images"] == 20 and report["max_abs_diff"] < 0.05
    assert report["label_agreement"] >= 0.9


def test_quantize_command_reports_bad_input(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "trainer",
        "quantize",
        str(tmp_path / "nope.onnx"),
        "--calib",
        str(tmp_path),
        "--out",
        str(tmp_path / "o.onnx"),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "model not found" in done.stderr  # cannot run


def make_dataset(root: Path) -> Path:
    """DATA/{train,val,test}/{real,fake} with a MANIFEST.csv whose sizes give the label away."""
    rows = []
    for split in ("train", "val", "test"):
        for label, size in (("real", 20), ("fake", 28)):
            for i in range(6):
                path = root / split / label / f"{label}{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                noise_image(size, seed=i + size).save(path)
                rows.append(
                    {
                        "split": split,
                        "label": label,
                        "path": f"{split}/{label}/{path.name}",
                        "width": size,
                        "height": size,
                        "bytes": path.stat().st_size,
                        "jpeg_quality": "",
                        "kind": "real" if label == "real" else "ai",
                    }
                )
    with open(root / "MANIFEST.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_card_checks_rows_shortcut_and_calibration(tmp_path: Path) -> None:
    pytest.importorskip(
        "matplotlib", reason="the card checks draw plots: pip install facescan[train]"
    )
    from trainer.robustness import TRANSFORMS, model_card_checks

    data = make_dataset(tmp_path / "data")
    model = build_conv_model(tmp_path / "m.onnx")
    result = model_card_checks(model, data, "test", tmp_path / "out", ())
    assert set(result["robustness"]) == set(TRANSFORMS)
    png = result["robustness"]["png"]
    assert png["mean_abs_score_change"] < 1e-6  # same pixels in another container
    assert result["robustness"]["jpeg_q50"]["mean_abs_score_change"] > 0
    # Image size alone separates this toy data perfectly: the check must say so.
    assert result["property_shortcut"]["roc_auc_test"] == pytest.approx(1.0)
    assert sum(b["n"] for b in result["calibration"]["bins"]) == 12  # the test split
    # One size per class in the toy data: no size holds both classes.
    assert result["within_size"] == {
        "20x20": {"n": 6, "only": "real"},
        "28x28": {"n": 6, "only": "ai"},
    }
    assert (tmp_path / "out" / "reliability.png").stat().st_size > 0


def test_reliability_of_a_calibrated_score_is_near_zero_error() -> None:
    pytest.importorskip(
        "matplotlib", reason="trainer.robustness draws plots: pip install facescan[train]"
    )
    from trainer.robustness import reliability

    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert reliability(y, p)["ece"] < 0.02
    assert reliability(y, np.clip(p + 0.3, 0, 1))["ece"] > 0.15
