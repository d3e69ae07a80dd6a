"""Scanning with face crops: every face found and scored on its own, the image flagged when any
face is, small faces listed but not judged, no face scored whole, `--faces off` as before, and
the per-face detail in every report, the cache and every engine."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from commands import facescan, read_report
from conftest import build_red_model, noise_image
from PIL import Image

from scanner import Scanner
from scanner.faces import box_iou, detection_side
from scanner.preprocess import FaceCropSpec, PreprocessSpec
from scanner.results import FaceResult
from scanner.testing.group_photos import group_photo

FACE_SPEC = PreprocessSpec(input_size=32, faces=FaceCropSpec(output_size=32))
# Pasted image sizes on a 1600 x 1200 canvas: the smallest face is about 100 px, 6 % of the
# photo's width, which the detector finds at its default detect size (960).
SIZES = [320, 240, 180, 140]
RED_FACES = (0, 2)  # tinted red: the red model scores them high (flagged), the others low
THRESHOLD = "0.6"


def tinted(path: Path, red: bool, out: Path) -> Path:
    """The face with its red channel lifted (or lowered): a known high (or low) score from the
    red model, whose score is the crop's mean red."""
    pixels = np.asarray(Image.open(path).convert("RGB"), np.float32)
    pixels[..., 0] = np.clip(pixels[..., 0] + 70, 0, 255) if red else pixels[..., 0] * 0.6
    Image.fromarray(pixels.astype(np.uint8)).save(out, quality=95)
    return out


@pytest.fixture(scope="module")
def group(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """A 1600 x 1200 photo of four test faces, real and AI, two of them tinted red."""
    tmp = tmp_path_factory.mktemp("group")
    real = sorted((shared_data / "test" / "real").glob("*.jpg"))
    fake = sorted(
        p for p in (shared_data / "test" / "fake").glob("*.jpg") if "ciplab" not in p.name
    )
    sources = [real[0], fake[0], real[1], fake[1]]
    faces = [tinted(s, i in RED_FACES, tmp / f"face{i}.jpg") for i, s in enumerate(sources)]
    photo, pasted = group_photo(faces, SIZES, seed=3)
    path = tmp / "photos" / "group.jpg"
    path.parent.mkdir()
    photo.save(path, quality=92)
    return path, pasted


@pytest.fixture(scope="module")
def face_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_red_model(tmp_path_factory.mktemp("m") / "faces.onnx", FACE_SPEC)


def test_every_face_is_found_and_scored_and_any_flagged_face_flags_the_image(
    group: tuple[Path, list], face_model: Path
) -> None:
    path, pasted = group
    (result,) = Scanner(face_model, provider="cpu", threshold=float(THRESHOLD)).scan([path])
    assert result.faces is not None and len(result.faces) == len(SIZES)
    squares = np.array([p.square for p in pasted], np.float64)
    owners = [int(np.argmax(box_iou(face.box, squares))) for face in result.faces]
    assert sorted(owners) == [0, 1, 2, 3]  # one face in each pasted square
    for face, owner in zip(result.faces, owners, strict=True):
        assert face.label == ("ai" if owner in RED_FACES else "real"), (owner, face)
        assert 0 < face.detection <= 1
    assert result.label == "ai" and result.score == max(f.score or 0 for f in result.faces)


def test_reports_carry_the_faces(
    tmp_path: Path, group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    for ext in ("json", "jsonl", "csv"):
        options = ("--threshold", THRESHOLD, "--out", tmp_path / f"r.{ext}")
        done = facescan(path, "--model", face_model, *options)
        assert done.returncode == 1, done.stderr
    (row,) = json.loads((tmp_path / "r.json").read_text())["results"]
    (line,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert row["faces"] == line["faces"] and len(row["faces"]) == 4
    for face in row["faces"]:
        assert set(face) == {"box", "detection", "score", "label"} and len(face["box"]) == 4
        x0, y0, x1, y1 = face["box"]
        assert 0 <= x0 < x1 <= 1600 and 0 <= y0 < y1 <= 1200
    assert read_report(tmp_path / "r.csv")[0]["faces"] == "4"


def side(face: FaceResult) -> float:
    x0, y0, x1, y1 = face.box
    return max(x1 - x0, y1 - y0)


def test_faces_under_min_face_are_listed_not_scored(
    group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    (every,) = Scanner(face_model, provider="cpu", min_face=40).scan([path])
    assert every.faces is not None and len(every.faces) == 4
    seen = {"judged": 0, "listed only": 0}
    for min_face in (64, 120, 180, 230):  # faces of about 125 and 225 px
        # Detection runs at the resolution that suits faces of min_face: smaller ones may go
        # unseen; those it does see are listed without a score or label.
        (result,) = Scanner(face_model, provider="cpu", min_face=min_face).scan([path])
        assert result.faces is not None
        for face in result.faces:
            judged = face.score is not None
            assert judged == (side(face) >= min_face) and judged == (face.label is not None)
            seen["judged" if judged else "listed only"] += 1
        scores = [f.score for f in result.faces if f.score is not None]
        if scores:
            assert result.score == max(scores)
    assert seen["judged"] and seen["listed only"]
    (nothing_judged,) = Scanner(face_model, provider="cpu", min_face=5000).scan([path])
    assert nothing_judged.faces is not None
    assert all(f.score is None for f in nothing_judged.faces)
    assert nothing_judged.score is not None  # scored whole instead


def test_detection_runs_where_the_smallest_face_worth_scoring_is_reliably_seen() -> None:
    # 256-px portraits with the default min_face: half the pixels a side, a quarter the cost.
    assert detection_side(256, 960, 64) == 128
    assert detection_side(4000, 960, 64) == 960  # capped: camera photos cost what they did
    assert detection_side(256, 960, 20) == 256  # never above the photo itself
    assert detection_side(100, 960, 5000) == 32  # the network's smallest input


def test_an_image_without_a_face_is_scored_whole_and_says_so(
    tmp_path: Path, face_model: Path
) -> None:
    noise_image(200, seed=1).save(tmp_path / "noise.png")
    (result,) = Scanner(face_model, provider="cpu").scan([tmp_path / "noise.png"])
    assert result.status == "ok" and result.faces == ()
    whole = Scanner(face_model, provider="cpu", faces="off").score(noise_image(200, seed=1))
    assert result.score == pytest.approx(whole, abs=1e-6)


def test_faces_off_is_the_whole_image_scan_bit_for_bit(
    tmp_path: Path, group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    noise_image(64, seed=2).save(path.parent / "noise.png")
    whole_model = build_red_model(
        tmp_path / "whole.onnx", dataclasses.replace(FACE_SPEC, faces=None)
    )
    off = tmp_path / "off.csv"
    facescan(path.parent, "--model", face_model, "--faces", "off", "--out", off)
    facescan(path.parent, "--model", whole_model, "--out", tmp_path / "w.csv")
    assert len(read_report(off)) == 2 and read_report(off) == read_report(tmp_path / "w.csv")
    assert all(row["faces"] == "" for row in read_report(off))  # no detection ran


def test_the_cache_keeps_faces_and_is_keyed_by_the_face_settings(
    tmp_path: Path, group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    cache = tmp_path / "c.db"
    with Scanner(face_model, provider="cpu", cache=cache) as first:
        (fresh,) = first.scan([path])
    with Scanner(face_model, provider="cpu", cache=cache) as second:
        (again,) = second.scan([path])
    with Scanner(face_model, provider="cpu", cache=cache, min_face=200) as other:
        (other_settings,) = other.scan([path])
    assert again.cached and dataclasses.replace(again, cached=False) == fresh
    assert not other_settings.cached  # other face settings: another key


def test_the_ray_engine_reports_the_same_faces(
    ray_cluster: str, group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    (local,) = Scanner(face_model, provider="cpu").scan([path])
    (ray,) = Scanner(face_model, provider="cpu", engine="ray").scan([path])
    assert ray.faces is not None and local.faces is not None
    assert [f.box for f in ray.faces] == [f.box for f in local.faces]
    assert ray.score == pytest.approx(local.score, abs=1e-5)


def test_score_of_an_image_in_memory_takes_its_faces(
    group: tuple[Path, list], face_model: Path
) -> None:
    path, _ = group
    scanner = Scanner(face_model, provider="cpu")
    (result,) = scanner.scan([path])
    # In memory the detector sees the full decode, not a draft: the same faces, nearly the
    # same crops.
    assert scanner.score(Image.open(path)) == pytest.approx(result.score, abs=0.01)


def test_a_detector_that_cannot_load_is_a_clear_error(tmp_path: Path, face_model: Path) -> None:
    noise_image(32).save(tmp_path / "a.png")
    code = (
        "import sys, pathlib, scanner.faces as f\n"
        "f.default_detector_path = lambda: pathlib.Path('/nonexistent/centerface.onnx')\n"
        "from scanner.cli import main\nsys.argv = ['facescan', *sys.argv[1:]]\nmain()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.png"), "--model", str(face_model)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "face detector model not found: /nonexistent/centerface.onnx" in done.stderr
    assert "Traceback" not in done.stderr


def test_face_options_are_checked(tmp_path: Path, face_model: Path) -> None:
    noise_image(32).save(tmp_path / "a.png")
    bad = facescan(tmp_path / "a.png", "--model", face_model, "--faces", "maybe")
    assert bad.returncode == 2 and "--faces 'maybe': choose from auto, off" in bad.stderr
    small = facescan(tmp_path / "a.png", "--model", face_model, "--min-face", "-1")
    assert small.returncode == 2 and "--min-face must be 0 or more" in small.stderr
