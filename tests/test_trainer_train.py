"""Train, evaluate and export end to end on tiny generated images (seconds, one epoch), and once
on the shared dataset when it is there (slow)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "tensorflow", reason="the trainer needs TensorFlow: pip install facescan[train]"
)

from training_faces import face, make_faces  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from scanner.decode import load  # noqa: E402
from scanner.metadata import ModelInfo  # noqa: E402
from scanner.preprocess import PreprocessSpec  # noqa: E402
from scanner.session import ModelSession  # noqa: E402
from trainer import (
    data,  # noqa: E402
    files,  # noqa: E402
)
from trainer import export as export_module  # noqa: E402
from trainer.cli import app  # noqa: E402
from trainer.config import CheckFailed  # noqa: E402
from trainer.evaluate import keras_scorer  # noqa: E402
from trainer.metrics import roc_auc  # noqa: E402
from trainer.train import calibrate, check_calibration  # noqa: E402

# What TensorFlow, absl and CUDA write at start-up: glog-style "I0000 00:00:..." lines, absl's
# pre-initialisation banner, oneDNN notes, CUDA probing and Python absl warnings.
TF_NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|TF_ENABLE_ONEDNN_OPTS|cuInit|cuda|^WARNING:absl"
)
# The small network from scratch on whole images: the defaults are the shipped recipe (a
# pretrained EfficientNet on face crops, trainer/config.py RECIPE), too slow for a test.
SMALL = ["--arch", "lean", "--whole-image", "--set", "tta=", "--lr", "1e-3"]
TINY = [*SMALL, "--epochs", "1", "--image-size", "32", "--batch-size", "8"]
FACESCAN = [sys.executable, "-c", "from scanner.cli import main; main()"]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_faces(tmp_path_factory.mktemp("faces"), per_class=15, manifest=True)


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    code, output = cli(
        "train", data_dir, "--out", out, *TINY, "--epochs", "3", "--exclude-kind", "manipulated"
    )
    assert code == 0, output
    assert "GFLOP/image" in output and "test: n=25" in output
    return out


@pytest.fixture(scope="module")
def onnx_model(run: Path) -> Path:
    out = run.parent / "model.onnx"
    code, output = cli("export", run, "--out", out)
    assert code == 0, output
    assert "parity: max |ONNX - Keras|" in output
    return out


def keras_scores(run: Path, paths: list[Path]) -> np.ndarray:
    """What the Keras model says, calibrated, on files decoded by the scanner's decoder."""
    pixels = [np.asarray(load(p).image) for p in paths]
    return keras_scorer(run).score(data.Decoded([], pixels, [], [], []))


def test_run_folder_holds_model_config_metrics_and_plots(run: Path) -> None:
    for name in ["model.keras", "config.json", "history.csv", "metrics.json", "splits.csv"] + [
        "classification_report.txt", "curves.png", "confusion_test.png", "roc_val.png",
        "pr_test.png", "scores_val.png", "scores_test.png", "sources_val.png", "sources_test.png",
    ]:  # fmt: skip
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["epochs"] == 3 and config["settings"]["image_size"] == 32
    assert config["data"]["dropped_by_kind"] == {"manipulated": 15}
    assert len(config["data"]["fingerprint"]) == 64
    assert config["model"]["macs_per_image"] > 0 and "tensorflow" in config["versions"]
    assert "balanced accuracy" in config["calibration"]["threshold_rule"]
    result = json.loads((run / "metrics.json").read_text())
    for split in ("val", "test"):
        for key in ["loss", "accuracy", "precision", "recall", "f1", "roc_auc"] + [
            "average_precision", "tpr_at_1pct_fpr", "confusion_matrix",
        ]:  # fmt: skip
            assert key in result[split], (split, key)
        assert set(result[split]["by_source"]) == {"ffhq", "stylegan"}
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "loss", "accuracy", "auc", "val_loss", "val_auc"} <= set(header)


def test_config_holds_the_best_epoch_and_the_checkpoint_is_that_epoch(run: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    with open(run / "history.csv", newline="") as f:
        val_auc = [float(row["val_auc"]) for row in csv.DictReader(f)]
    assert config["epochs_run"] == len(val_auc) == 3
    assert config["best_val_auc"] == max(val_auc)
    assert config["best_epoch"] == 1 + val_auc.index(max(val_auc))
    # The saved model is the best epoch's: it ranks val exactly as that epoch did.
    with open(run / "splits.csv", newline="") as f:
        samples = [s for s in csv.DictReader(f) if s["split"] == "val"]
    data_dir = Path(config["settings"]["data"])
    y = np.array([s["label"] == "ai" for s in samples])
    p = keras_scores(run, [data_dir / s["path"] for s in samples])
    assert roc_auc(y, p) == pytest.approx(config["best_val_auc"], abs=1e-9)
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_export_writes_the_model_info_and_passes_parity(run: Path, onnx_model: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    info = ModelSession(onnx_model, provider="cpu").info
    expected = ModelInfo(
        preprocess=PreprocessSpec(input_size=32),
        labels=("real", "ai"),
        threshold=config["calibration"]["threshold"],
        output="probability",
        extra=info.extra,
    )
    assert info == expected
    assert info.extra["calibration"] == config["calibration"]
    assert info.extra["training"]["data_fingerprint"] == config["data"]["fingerprint"]
    assert set(info.extra["metrics"]) == {"val", "test"}
    assert info.extra["training"]["settings"]["arch"] == "lean"
    for key in ("best_val_auc", "best_epoch", "epochs_run"):
        assert info.extra["training"][key] == config[key], key
    assert "tensorflow" in info.extra["versions"]


def test_facescan_scores_exactly_as_keras(run: Path, onnx_model: Path, data_dir: Path) -> None:
    report = run.parent / "scan.csv"
    done = subprocess.run(
        [*FACESCAN, str(data_dir / "test"), "--model", str(onnx_model), "--out", str(report)]
        + ["--provider", "cpu", "--exit-zero", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with open(report, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["path"])
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)
    expected = keras_scores(run, [Path(r["path"]) for r in rows])
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=0, atol=1e-4)


def test_evaluate_gives_the_same_metrics_from_keras_and_onnx(
    run: Path, onnx_model: Path, data_dir: Path, tmp_path: Path
) -> None:
    code, output = cli("evaluate", run, data_dir, "--split", "test", "--out", tmp_path / "k")
    assert code == 0, output
    code, output = cli("evaluate", onnx_model, data_dir, "--out", tmp_path / "o")
    assert code == 0, output
    k_all = json.loads((tmp_path / "k" / "metrics.json").read_text())
    assert k_all["dropped_by_kind"] == {"manipulated": 5}  # as in training, by default
    k = k_all["test"]
    o = json.loads((tmp_path / "o" / "metrics.json").read_text())["test"]
    assert k["confusion_matrix"] == o["confusion_matrix"]
    assert k["roc_auc"] == pytest.approx(o["roc_auc"], abs=1e-6)
    assert (tmp_path / "o" / "roc_test.png").is_file()


def test_flat_layout_with_crops_trains_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    atomic_write = files.atomic_write

    def spy(target: Path, write: object) -> None:
        written.append(target.name)
        atomic_write(target, write)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "atomic_write", spy)
    # 34 per class split 40/30/30: 10 of each class in val and test, the least train accepts.
    data_dir = make_faces(tmp_path / "flat", per_class=34, splits=(), names=("human", "ai"))
    run = tmp_path / "run"
    code, output = cli(
        "train", data_dir, "--out", run, *TINY, "--preprocess", "crop", "--crop-grid", "2",
        "--seed", "5", "--augment", "flip,jpeg", "--set", "p_jpeg=0.9",
        "--set", "val_fraction=0.3", "--set", "test_fraction=0.3",
    )  # fmt: skip
    assert code == 0, output
    assert "no MANIFEST.csv in DATA: nothing to drop by kind (manipulated)" in output
    assert sorted(written) == ["config.json", "model.keras"]  # each once, whole
    config = json.loads((run / "config.json").read_text())
    assert (config["data"]["layout"], config["data"]["seed"]) == ("flat", 5)
    assert config["settings"]["augment"]["p_jpeg"] == 0.9
    with open(run / "splits.csv", newline="") as f:
        splits = list(csv.DictReader(f))
    assert {r["split"] for r in splits} == {"train", "val", "test"}
    code, output = cli("export", run, "--out", tmp_path / "m.onnx")
    assert code == 0, output
    info = ModelSession(tmp_path / "m.onnx", provider="cpu").info
    assert info.preprocess.geometry == "crop" and info.preprocess.crops_per_image == 4
    # The parity check refuses a model that disagrees with Keras (forced here by a negative
    # limit), and leaves the file already there untouched.
    before = (tmp_path / "m.onnx").read_bytes()
    monkeypatch.setattr(export_module, "PARITY_LIMIT", -1.0)
    code, output = cli("export", run, "--out", tmp_path / "m.onnx")
    assert code == 1 and "export refused" in output  # a check failed
    assert (tmp_path / "m.onnx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat", "m.onnx", "run"]


def test_a_command_that_cannot_run_is_one_clear_line_and_exit_2(
    run: Path, data_dir: Path, tmp_path: Path
) -> None:
    one_class = make_faces(tmp_path / "one", per_class=2, splits=(), names=("real",))
    broken = tmp_path / "broken_run"
    shutil.copytree(run, broken)
    (broken / "model.keras").write_bytes(b"not a zip")
    train = ["train", data_dir, "--out", tmp_path / "new"]
    cases = {
        "exists and is not empty (pass --force": ["train", data_dir, "--out", run, *TINY],
        "DATA folder not found": ["train", tmp_path / "nope", "--out", tmp_path / "new"],
        "class 'ai' has no folder": ["train", one_class, "--out", tmp_path / "new"],
        "unknown --arch 'vgg'": [*train, "--arch", "vgg"],
        "cannot load checkpoint": ["export", broken, "--out", tmp_path / "m.onnx"],
        "is not a training run": ["export", tmp_path, "--out", tmp_path / "m.onnx"],
        "No such option: --bogus": [*train, "--bogus"],
        # Settings that cannot work (the issue's `--image-size 8 --limit 50` "succeeded").
        "--image-size 8 is too small for --arch lean-wide": [
            *train, "--arch", "lean-wide", "--image-size", "8",
        ],
        "use at least 32": [*train, "--arch", "seed-cnn", "--image-size", "24"],
        "too few images to train and validate (--limit 8 images per split)": [
            *train, *TINY, "--limit", "8",
        ],
        "--epochs 0: must be 1 to 1000": [*train, "--epochs", "0"],
        "--batch-size 1: must be 2 to 1024": [*train, "--batch-size", "1"],
        "--lr 5: must be above 0 and at most 1": [*train, "--lr", "5"],
        "p_jpeg 1.5: a probability, 0 to 1": [*train, "--set", "p_jpeg=1.5"],
    }  # fmt: skip
    for message, args in cases.items():
        code, output = cli(*args)
        assert code == 2, (message, output)
        assert message in output and "Traceback" not in output, output
    assert not (tmp_path / "new").exists() and not (tmp_path / "m.onnx").exists()


def test_a_run_whose_calibration_found_no_signal_fails_its_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    y = np.array([0, 1] * 20)
    backwards = np.where(y == 1, -3.0, 3.0)[:, None]  # scores ai lower: no T can help
    calibration = calibrate(backwards, y)
    assert calibration["temperature_at_edge"] == "upper"
    with pytest.raises(CheckFailed, match="calibration found no signal"):
        check_calibration(calibration, {"roc_auc": 0.0})
    separated = calibrate(-backwards, y)  # perfect: log loss wants T -> 0
    assert separated["temperature_at_edge"] == "lower"
    check_calibration(separated, {"roc_auc": 1.0})  # a warning, not a failure
    assert "temperature fit hit the bottom of its range" in capsys.readouterr().err
    assert "temperature_at_edge" not in calibrate(
        backwards * -1 + np.random.default_rng(0).normal(0, 4, (40, 1)), y
    )


def test_export_refuses_a_run_whose_calibration_found_no_signal(tmp_path: Path) -> None:
    """One image copied into every class: the model gives every image the same logit, so the
    temperature fit runs to the top of its range. `train` writes the run and exits 1; `export`
    refuses it (exit 1, no file) unless told --force-no-signal."""
    one = face("real", 0)
    for split in ("train", "val"):
        for label in ("real", "fake"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(10):
                one.save(tmp_path / "data" / split / label / f"{i}.jpg", quality=90)
    run, model = tmp_path / "run", tmp_path / "model.onnx"
    code, output = cli("train", tmp_path / "data", "--out", run, *TINY)
    assert code == 1 and "calibration found no signal" in output, output
    code, output = cli("export", run, "--out", model)
    assert code == 1, output
    assert "export refused" in output and "--force-no-signal exports it anyway" in output
    assert not model.exists()
    code, output = cli("export", run, "--out", model, "--force-no-signal")
    assert code == 0 and "exported because of --force-no-signal" in output, output
    assert ModelSession(model, provider="cpu").info.extra["calibration"]["temperature_at_edge"] == (
        "upper"
    )


def test_no_tensorflow_start_up_noise_on_stderr(run: Path, data_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "evaluate", str(run), str(data_dir)]
        + ["--out", str(tmp_path / "eval")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines() if TF_NOISE.search(line)]
    assert noise == [], done.stderr


@pytest.mark.slow
def test_shared_dataset_train_export_scan(shared_data: Path, tmp_path: Path) -> None:
    run, model = tmp_path / "run", tmp_path / "model.onnx"
    code, output = cli(
        "train", shared_data, "--out", run, *SMALL, "--epochs", "1", "--image-size", "64",
        "--limit", "120", "--exclude-kind", "manipulated",
    )  # fmt: skip
    assert code == 0, output
    code, output = cli("export", run, "--out", model)
    assert code == 0, output
    report = tmp_path / "scan.csv"
    done = subprocess.run(
        [*FACESCAN, str(shared_data / "test"), "--model", str(model), "--out", str(report)]
        + ["--provider", "cpu", "--exit-zero", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 488 and all(r["status"] == "ok" for r in rows)


@pytest.mark.slow
def test_a_face_crop_model_trains_on_the_scanners_crops_and_scans_every_face(
    shared_data: Path, tmp_path: Path
) -> None:
    run, model = tmp_path / "run", tmp_path / "model.onnx"
    code, output = cli(
        "train", shared_data, "--out", run, "--epochs", "1", "--image-size", "48", "--faces",
        "--limit", "80", "--exclude-kind", "manipulated", "--arch", "lean", "--set", "tta=",
        "--lr", "1e-3",
    )  # fmt: skip
    assert code == 0, output
    assert cli("export", run, "--out", model)[0] == 0
    info = ModelSession(model, provider="cpu").info
    assert info.preprocess.faces is not None and info.preprocess.faces.output_size == 48
    # The trainer scores an image as the scanner does, by its highest face: same numbers.
    code, output = cli("evaluate", model, shared_data, "--split", "val", "--out", tmp_path / "e")
    assert code == 0, output
    from scanner import Scanner

    val = sorted((shared_data / "val").glob("*/z140k_*.jpg"))[:20]
    scanned = {r.path: r for r in Scanner(model, provider="cpu").scan(val)}
    assert all(r.faces is not None and len(r.faces) >= 1 for r in scanned.values())
    from trainer.evaluate import onnx_scorer

    samples = [data.Sample(str(p), p.name, 0, "val") for p in val]
    decoded = data.decode_all(samples, info.preprocess)
    ours = onnx_scorer(model).score(decoded)
    assert ours == pytest.approx([scanned[str(p)].score for p in val], abs=1e-6)


@pytest.mark.parametrize("name", ["lean", "seed-cnn"])
def test_every_arch_outputs_one_logit_per_image(name: str) -> None:
    from trainer.archs import ARCHS

    model = ARCHS[name](32)
    assert tuple(model(np.zeros((2, 32, 32, 3), np.float32)).shape) == (2, 1)
    assert model.layers[-1].get_config()["activation"] == "linear"


def test_mac_count_known_answer() -> None:
    import keras

    from trainer.archs import count_macs

    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(x)  # 8*8 outputs * 4 filters * 3*3*3
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))  # 256 inputs * 2
    assert count_macs(model) == 8 * 8 * 4 * 27 + 256 * 2


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror() -> None:
    from trainer.archs import build, with_tta

    model = build("lean", 32)
    wrapped = with_tta(model, "flip")
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    plain = np.asarray(model(x, training=False))
    mirrored = np.asarray(model(x[:, :, ::-1], training=False))
    assert np.asarray(wrapped(x, training=False)) == pytest.approx((plain + mirrored) / 2, abs=1e-5)
    assert with_tta(model, "") is model
    with pytest.raises(ValueError, match="tta 'rotate'"):
        with_tta(model, "rotate")
