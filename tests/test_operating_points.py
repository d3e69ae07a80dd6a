"""--threshold takes a number or the name of one of the model's operating points (measured on its
validation reals and stored in its metadata); a scan records which it used."""

from __future__ import annotations

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
