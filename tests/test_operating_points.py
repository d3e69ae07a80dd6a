"""--threshold takes a number or the name of one of the model's operating points (measured on its
validation reals and stored in its metadata); a scan records which it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.metadata import InvalidThresholdError, ModelInfo
from scanner.preprocess import PreprocessSpec

POINTS = {"balanced": 0.42, "fpr1": 0.9, "fpr5": 0.7}


def info(**extra: object) -> ModelInfo:
    return ModelInfo(preprocess=PreprocessSpec(input_size=16), threshold=0.42, extra=extra)


def test_the_model_threshold_is_named_after_the_point_it_equals() -> None:
    assert info(operating_points=POINTS).threshold_for(None) == (0.42, "balanced")
    assert info().threshold_for(None) == (0.42, None)


@pytest.mark.parametrize("wanted", ["fpr1", "fpr5", "balanced"])
def test_a_name_picks_its_point(wanted: str) -> None:
    assert info(operating_points=POINTS).threshold_for(wanted) == (POINTS[wanted], wanted)


@pytest.mark.parametrize("wanted", [0.3, "0.3"])
def test_a_number_is_taken_as_it_is(wanted: float | str) -> None:
    assert info(operating_points=POINTS).threshold_for(wanted) == (0.3, None)


def test_an_unknown_name_lists_the_model_s_points() -> None:
    with pytest.raises(InvalidThresholdError, match="it has: balanced, fpr1, fpr5"):
        info(operating_points=POINTS).threshold_for("fpr2")
    with pytest.raises(InvalidThresholdError, match="none: give a number"):
        info().threshold_for("fpr1")
    with pytest.raises(InvalidThresholdError, match="not in 0..1"):
        info().threshold_for("1.5")


def points_model(tmp_path: Path) -> Path:
    from conftest import build_red_model

    return build_red_model(
        tmp_path / "points.onnx", threshold=0.42, extra={"operating_points": POINTS}
    )


@pytest.mark.parametrize(
    ("given", "threshold", "name"),
    [(None, 0.42, "balanced"), ("fpr1", 0.9, "fpr1"), ("0.3", 0.3, None)],
)
def test_a_scan_flags_at_the_named_point_and_its_report_says_which(
    tmp_path: Path, given: str | None, threshold: float, name: str | None
) -> None:
    from commands import facescan
    from conftest import save_image

    save_image(tmp_path / "in" / "red.png", (204, 0, 0))  # scores 0.8
    args = ["--threshold", given] if given else []
    out = tmp_path / "r.json"
    done = facescan(tmp_path / "in", "--model", points_model(tmp_path), "--out", out, *args)
    doc = json.loads(out.read_text())
    assert doc["model"]["threshold"] == threshold
    assert doc["model"].get("threshold_name") == name
    assert doc["results"][0]["label"] == ("ai" if threshold <= 0.8 else "real")
    assert done.returncode == (1 if threshold <= 0.8 else 0)


def test_an_unknown_point_stops_the_scan_naming_the_model_s_points(tmp_path: Path) -> None:
    from commands import facescan
    from conftest import save_image

    save_image(tmp_path / "in" / "red.png", (200, 0, 0))
    done = facescan(tmp_path / "in", "--model", points_model(tmp_path), "--threshold", "fpr2")
    assert done.returncode == 2
    assert "it has: balanced, fpr1, fpr5" in done.stderr
