"""Trainer metrics on known-answer cases (numpy only, no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import metrics

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_auc_known_answers() -> None:
    assert metrics.roc_auc(Y, P) == pytest.approx(0.75)
    assert metrics.roc_auc(Y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.roc_auc(Y, np.full(4, 0.5)) == pytest.approx(0.5)  # ties count half


def test_average_precision_matches_scikit_learns_definition() -> None:
    # scikit-learn's docstring example: average_precision_score -> 0.8333...
    assert metrics.average_precision(Y, P) == pytest.approx(0.8333333)


def test_tpr_at_fixed_fpr() -> None:
    y = np.array([0] * 100 + [1] * 10)
    p = np.concatenate([np.linspace(0, 0.5, 100), np.linspace(0.3, 1.0, 10)])
    # At most one real image (p=0.5) may be flagged: the ai images above 0.5 are 7 of 10.
    assert metrics.tpr_at_fpr(y, p, 0.01) == pytest.approx(0.7)


def test_confusion_and_summary() -> None:
    pred = (P >= 0.5).astype(int)
    assert metrics.confusion(Y, pred) == [[2, 0], [1, 1]]
    s = metrics.summary(Y, P, 0.5)
    assert s["confusion_matrix"] == [[2, 0], [1, 1]]
    assert (s["accuracy"], s["precision"], s["recall"]) == (0.75, 1.0, 0.5)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["roc_auc"] == pytest.approx(0.75)


def test_threshold_maximises_balanced_accuracy_ties_towards_half() -> None:
    # Balanced accuracy is 0.75 at both 0.8 (one ai caught, no real flagged) and 0.35 (both ai
    # caught, one real flagged); 0.35 is nearer 0.5, so the rule picks it.
    assert metrics.choose_threshold(Y, P) == pytest.approx(0.35)
    separable = np.array([0.2, 0.3, 0.6, 0.9])
    assert metrics.choose_threshold(Y, separable) == pytest.approx(0.6)


def test_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, 4000)
    y = (rng.random(4000) < metrics.sigmoid(logits / 2.5)).astype(int)
    assert metrics.fit_temperature(logits[:, None], y) == pytest.approx(2.5, rel=0.1)


def test_calibrated_is_the_mean_probability_over_crops() -> None:
    logits = np.array([[0.0, 100.0], [-100.0, -100.0]])
    np.testing.assert_allclose(metrics.calibrated(logits, 1.0), [0.75, 0.0], atol=1e-12)


def test_per_source_breakdown() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.9, 0.15, 0.8])
    out = metrics.by_source(y, p, 0.5, ["ffhq", "ffhq", "gan", "sd", "sd"])
    assert out["gan"] == {"n": 1, "label": "ai", "accuracy": 1.0, "mean_score": 0.9,
                          "roc_auc_vs_real": 1.0}  # fmt: skip
    assert out["sd"]["accuracy"] == 0.5
    assert out["sd"]["roc_auc_vs_real"] == pytest.approx(0.75)
    assert "roc_auc_vs_real" not in out["ffhq"]


def test_classification_report_lists_both_classes() -> None:
    text = metrics.classification_report(Y, (P >= 0.5).astype(int))
    assert "real" in text and "ai" in text and "0.7500" in text
