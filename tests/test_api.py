"""The Python API: Scanner.scan and Scanner.score, parallel and batched paths agree."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import build_red_model, noise_image
from images import bad_files, write_all
from PIL import Image

from scanner import Scanner, ScanResult
from scanner.preprocess import PreprocessSpec


def make_photos(folder: Path, count: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i:03}.png"
        noise_image(20 + i, seed=i).save(path)
        paths.append(path)
    return paths


def test_scan_yields_one_result_per_file_with_known_scores(tmp_path: Path) -> None:
    Image.new("RGB", (30, 30), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (30, 30), (0, 0, 255)).save(tmp_path / "blue.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    scanner = Scanner(build_red_model(tmp_path / "m.onnx"), provider="cpu", workers=1)
    results = {Path(r.path).name: r for r in scanner.scan([tmp_path])}
    assert set(results) == {"red.png", "blue.png", "broken.png"}
    assert (results["red.png"].label, results["red.png"].score) == ("ai", 1.0)
    assert (results["blue.png"].label, results["blue.png"].score) == ("real", 0.0)
    assert results["broken.png"].status == "error" and results["broken.png"].error
    assert isinstance(results["red.png"], ScanResult)
    assert (results["red.png"].width, results["red.png"].format) == (30, "PNG")


def test_score_of_an_image_equals_its_scan(tmp_path: Path) -> None:
    spec = PreprocessSpec(input_size=16, geometry="crop", crop_grid=2)
    scanner = Scanner(build_red_model(tmp_path / "m.onnx", spec), provider="cpu", workers=1)
    image = noise_image(40, seed=3)
    image.save(tmp_path / "x.png")
    (result,) = scanner.scan([tmp_path / "x.png"])
    assert result.score == pytest.approx(scanner.score(image), abs=1e-9)
    red = np.asarray(image, np.float64)[..., 0] / 255.0
    corners = [red[y : y + 16, x : x + 16].mean() for y in (0, 24) for x in (0, 24)]
    assert result.score == pytest.approx(np.mean(corners), abs=1e-6)  # mean over the 2x2 grid


@pytest.mark.parametrize(("workers", "batch_size"), [(1, 1), (2, 5), (2, 64)])
def test_parallel_and_batched_results_equal_one_at_a_time(
    tmp_path: Path, workers: int, batch_size: int
) -> None:
    make_photos(tmp_path / "photos", 13)
    (tmp_path / "photos" / "bad.jpg").write_text("nope")
    model = build_red_model(tmp_path / "m.onnx")
    reference = list(Scanner(model, provider="cpu", workers=1, batch_size=1).scan([tmp_path]))
    other = list(
        Scanner(model, provider="cpu", workers=workers, batch_size=batch_size).scan([tmp_path])
    )
    assert [r.path for r in other] == [r.path for r in reference]
    for a, b in zip(other, reference, strict=True):
        assert a.status == b.status and a.error == b.error
        assert a.score == pytest.approx(b.score, abs=1e-6) if b.score is not None else True


def test_a_threaded_scan_leaves_process_wide_settings_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decode threads once swapped Pillow's pixel limit and the warnings filters around each
    # file; with two threads one restore undid the other, and a filter outlived the scan.
    photos = tmp_path / "photos"
    make_photos(photos, 40)
    # Corrupt and truncated files among them; not the bomb, whose rare header read lifts
    # Pillow's limit on purpose (under a lock; tests/test_decode.py).
    bad = {name: data for name, data in bad_files().items() if name != "bomb.png"}
    write_all(photos, bad)
    filters, limit = warnings.filters, Image.MAX_IMAGE_PIXELS
    pillow_open = Image.open
    seen = []

    def watched_open(*args: Any, **kwargs: Any) -> Any:
        seen.append(warnings.filters is filters and limit == Image.MAX_IMAGE_PIXELS)
        return pillow_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", watched_open)
    scanner = Scanner(build_red_model(tmp_path / "m.onnx"), provider="cpu", workers=4)
    results = list(scanner.scan([photos]))
    assert len(results) == 40 + len(bad)
    assert seen and all(seen)
    assert warnings.filters is filters and limit == Image.MAX_IMAGE_PIXELS


def test_threshold_override_changes_labels_not_scores(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), (100, 0, 0)).save(tmp_path / "dim.png")  # red mean 100/255
    model = build_red_model(tmp_path / "m.onnx")
    low = next(Scanner(model, provider="cpu", workers=1, threshold=0.3).scan([tmp_path]))
    high = next(Scanner(model, provider="cpu", workers=1).scan([tmp_path]))
    assert (low.label, high.label) == ("ai", "real")
    assert low.score == high.score


def test_scanning_never_imports_tensorflow(tmp_path: Path) -> None:
    make_photos(tmp_path / "p", 3)
    model = build_red_model(tmp_path / "m.onnx")
    code = (
        "import sys; from scanner import Scanner; "
        f"list(Scanner({str(model)!r}, provider='cpu', workers=2).scan([{str(tmp_path)!r}])); "
        "import scanner.cli, scanner.reports; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unreadable_file_is_an_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import scanner.decode

    make_photos(tmp_path / "p", 2)
    locked = tmp_path / "p" / "img000.png"
    if os.geteuid() == 0:  # root reads anything: refuse the way a mode-000 file would
        real_open = open

        def guarded_open(path, *args, **kwargs):
            if str(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(scanner.decode, "open", guarded_open, raising=False)
    else:
        locked.chmod(0)
    scanner_ = Scanner(build_red_model(tmp_path / "m.onnx"), provider="cpu", workers=1)
    results = {Path(r.path).name: r for r in scanner_.scan([tmp_path / "p"])}
    assert results["img000.png"].error == "permission denied"
    assert results["img001.png"].status == "ok"
