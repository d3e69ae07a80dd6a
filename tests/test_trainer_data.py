"""Finding, labelling, splitting, filtering and decoding training data (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_faces import make_faces

from scanner.preprocess import PreprocessSpec
from trainer import data
from trainer.config import TrainConfig, TrainerError, parse_settings


def test_split_layout_labels_and_splits(tmp_path: Path) -> None:
    root = make_faces(tmp_path, per_class=3)
    samples, record = data.find_samples(root)
    assert record["layout"] == "splits"
    assert len(samples) == 18
    s = next(s for s in samples if s.rel == "val/fake/fake_1.jpg")
    assert (s.split, s.label) == ("val", 1)
    assert {(x.split, x.label) for x in samples} == {(a, b) for a in data.SPLITS for b in (0, 1)}


def test_flat_layout_is_split_stratified_and_reproducibly(tmp_path: Path) -> None:
    root = make_faces(tmp_path, per_class=20, splits=(), names=("human", "ai"))
    first, record = data.find_samples(root, seed=3, val_fraction=0.2, test_fraction=0.1)
    again, _ = data.find_samples(root, seed=3, val_fraction=0.2, test_fraction=0.1)
    other, _ = data.find_samples(root, seed=4, val_fraction=0.2, test_fraction=0.1)
    assert record == {"layout": "flat", "seed": 3, "val_fraction": 0.2, "test_fraction": 0.1}
    assert first == again and first != other
    for label in (0, 1):
        counts = {sp: sum(s.split == sp and s.label == label for s in first) for sp in data.SPLITS}
        assert counts == {"train": 14, "val": 4, "test": 2}


@pytest.mark.parametrize("alias", ["generated", "AI"])
def test_class_folder_aliases(tmp_path: Path, alias: str) -> None:
    make_faces(tmp_path, per_class=2, splits=(), names=("real", alias))
    samples, _ = data.find_samples(tmp_path)
    assert sorted(s.label for s in samples) == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("real", "cats"), "unexpected folder(s) cats (found cats/, real/)"),
        (("real",), "class 'ai' has no folder (found real/)"),
    ],
)
def test_bad_class_folders_are_named(tmp_path: Path, names: tuple[str, ...], message: str) -> None:
    make_faces(tmp_path, per_class=2, splits=(), names=names)  # type: ignore[arg-type]
    with pytest.raises(TrainerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.find_samples(tmp_path)


def test_empty_class_and_missing_data(tmp_path: Path) -> None:
    make_faces(tmp_path, per_class=2, splits=(), names=("real",))
    (tmp_path / "fake").mkdir()
    with pytest.raises(TrainerError, match="class 'ai' has an empty folder"):
        data.find_samples(tmp_path)
    with pytest.raises(TrainerError, match="DATA folder not found"):
        data.find_samples(tmp_path / "nowhere")


def test_split_layout_needs_train_and_val(tmp_path: Path) -> None:
    make_faces(tmp_path, per_class=2, splits=("train", "test"))
    with pytest.raises(TrainerError, match="no val/"):
        data.find_samples(tmp_path)


def test_manifest_exclude_kind_and_sources(tmp_path: Path) -> None:
    root = make_faces(tmp_path, per_class=6, manifest=True)
    samples, _ = data.find_samples(root)
    manifest = data.read_manifest(root)
    kept, dropped = data.exclude_kinds(samples, manifest, ("manipulated",))
    assert dropped == {"manipulated": 6} and len(kept) == len(samples) - 6
    assert {data.source_of(s, manifest) for s in kept} == {"ffhq", "stylegan"}
    with pytest.raises(TrainerError, match="needs a MANIFEST.csv"):
        data.exclude_kinds(samples, {}, ("manipulated",))


def test_limit_keeps_both_classes_per_split(tmp_path: Path) -> None:
    samples, _ = data.find_samples(make_faces(tmp_path, per_class=6))
    small = data.limit_per_split(samples, 4, seed=0)
    for split in data.SPLITS:
        assert sorted(s.label for s in small if s.split == split) == [0, 0, 1, 1]


def test_unreadable_images_are_skipped_and_counted(tmp_path: Path) -> None:
    root = make_faces(tmp_path, per_class=2)
    (root / "train" / "real" / "broken.jpg").write_bytes(b"<html>not an image</html>")
    samples, _ = data.find_samples(root)
    decoded = data.decode_all(samples, PreprocessSpec(input_size=32))
    assert len(decoded.samples) == len(samples) - 1
    assert decoded.failed == [("train/real/broken.jpg", "not a supported image: content is HTML")]
    assert decoded.pixels[0].dtype == np.uint8 and decoded.pixels[0].ndim == 3
    again = data.decode_all(samples, PreprocessSpec(input_size=32))
    assert data.fingerprint(decoded) == data.fingerprint(again)


def test_config_overrides_and_round_trip() -> None:
    cfg = TrainConfig().override(
        {"epochs": "3", "p_jpeg": "0.25", "enabled": "flip,jpeg", "exclude_kind": ("x",)}
    )
    assert (cfg.epochs, cfg.augment.p_jpeg, cfg.augment.enabled) == (3, 0.25, ("flip", "jpeg"))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert parse_settings(["lr=0.01"]) == {"lr": "0.01"}
    with pytest.raises(TrainerError, match="unknown setting"):
        TrainConfig().override({"nonsense": 1})
    with pytest.raises(TrainerError, match="is not a int"):
        TrainConfig().override({"epochs": "many"})


def test_eda_reports_balance_and_cross_split_leakage(tmp_path: Path) -> None:
    pytest.importorskip(
        "matplotlib", reason="eda plots need matplotlib: pip install facescan[train]"
    )
    from trainer.eda import eda

    root = make_faces(tmp_path / "data", per_class=6)
    leaked = root / "test" / "fake" / "copy_of_train.jpg"
    leaked.write_bytes((root / "train" / "fake" / "fake_0.jpg").read_bytes())
    summary = eda(root, tmp_path / "eda")
    assert summary["balance"]["test"] == {"ai": 7, "real": 6}
    assert summary["duplicates"]["exact_cross_split_groups"] == 1
    assert summary["duplicates"]["near_cross_split_pairs"] >= 1
    assert summary["formats"] == {"real": {"JPEG": 18}, "ai": {"JPEG": 19}}
    assert summary["jpeg_quality"]["real"] == {90: 18}
    for name in ["eda.md", "eda.json", "balance.png", "sizes.png", "jpeg_quality.png"] + [
        "samples_real.png", "samples_ai.png", "pca.png", "pca_boxplot.png",
    ]:  # fmt: skip
        assert (tmp_path / "eda" / name).is_file(), name


def test_train_help_loads_no_tensorflow() -> None:
    """`train --help` imports no TensorFlow, what made help slow (its speed is not measured)."""
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from trainer.cli import app; "
        "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0, r.output; "
        "assert '--exclude-kind' in r.output; assert 'tensorflow' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_boolean_settings_parse_from_text() -> None:
    from trainer.config import TrainConfig, TrainerError

    assert TrainConfig().override({"jpeg_draft": "true"}).spec().jpeg_draft is True
    assert TrainConfig().override({"jpeg_draft": "false"}).jpeg_draft is False
    with pytest.raises(TrainerError, match="not true or false"):
        TrainConfig().override({"jpeg_draft": "maybe"})


def test_reducing_gap_reaches_the_spec_the_model_is_exported_with() -> None:
    from trainer.config import TrainConfig

    assert TrainConfig().spec().reducing_gap == 0.0
    assert TrainConfig().override({"reducing_gap": "1.0"}).spec().reducing_gap == 1.0


def test_images_are_found_by_the_scanners_walker(tmp_path: Path) -> None:
    root = make_faces(tmp_path / "data", per_class=2, splits=(), names=("real", "fake"))
    (root / "real" / "notes.txt").write_text("not an image")  # not an image extension
    (root / "real" / "deep" / ".hidden").mkdir(parents=True)
    (root / "real" / "real_0.jpg").rename(root / "real" / "deep" / ".hidden" / "UPPER.JPG")
    elsewhere = make_faces(tmp_path / "elsewhere", per_class=1, splits=(), names=("fake",))
    (root / "fake" / "linked").symlink_to(elsewhere / "fake")  # followed, entered once
    (root / "fake" / "linked" / "loop").symlink_to(root / "fake")
    samples, _ = data.find_samples(root)
    assert [(s.rel, s.label) for s in samples] == [
        ("fake/fake_0.jpg", 1),
        ("fake/fake_1.jpg", 1),
        ("fake/linked/fake_0.jpg", 1),
        ("real/deep/.hidden/UPPER.JPG", 0),
        ("real/real_1.jpg", 0),
    ]
    (root / "real" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(TrainerError, match=r"1 path\(s\) under .*real cannot be read .*gone.jpg"):
        data.find_samples(root)


def test_decode_pool_is_sized_by_the_scanners_core_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []

    class Pool(data.ThreadPoolExecutor):
        def __init__(self, workers: int) -> None:
            sizes.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(data, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(data, "available_cores", lambda: 3)
    samples, _ = data.find_samples(make_faces(tmp_path, per_class=1))
    data.decode_all(samples, PreprocessSpec())
    data.decode_all(samples, PreprocessSpec(), workers=2)
    assert sizes == [3, 2]


def test_settings_that_cannot_work_are_named() -> None:
    assert TrainConfig().problems() == []
    bad = TrainConfig().override(
        {"epochs": 0, "batch_size": 1, "lr": 5, "val_fraction": 0.6, "test_fraction": 0.5}
        | {"p_flip": 2, "rescale": "0.5", "jpeg_quality": "90,50", "enabled": "flip,warp"}
    )
    assert bad.problems() == [
        "--epochs 0: must be 1 to 1000",
        "--batch-size 1: must be 2 to 1024",
        "--lr 5: must be above 0 and at most 1",
        "val_fraction + test_fraction must leave images to train on (< 1)",
        "unknown augmentation(s) warp (flip, brightness, contrast, rescale, jpeg, blur)",
        "p_flip 2.0: a probability, 0 to 1",
        "rescale=0.5: needs low,high with 0 < low <= high",
        "jpeg_quality=90,50: needs 1 <= low <= high <= 100",
    ]
