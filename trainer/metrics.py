"""Detection metrics in plain numpy (no scikit-learn): ROC, AUC, average precision, TPR at a
fixed FPR, the confusion matrix, the decision threshold and the calibration temperature.

`y` is 0/1 (1 = ai), `p` the probability of ai. Scores tied at a threshold count as positive
(the scanner flags `score >= threshold`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

THRESHOLD_RULE = (
    "threshold maximising balanced accuracy (mean of TPR and TNR) on the validation split's "
    "calibrated probabilities; ties go to the threshold closest to 0.5"
)
EPS = 1e-7
# The calibration temperature is searched in [1/100, 100]. At the top the scores are squashed to
# 0.5: the validation logits carry no usable signal. At the bottom they are pushed to 0 and 1:
# validation is separated perfectly, so log loss rewards unbounded confidence.
TEMPERATURE_RANGE = (0.01, 100.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))  # no overflow at large |x|


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Per-image probability from per-crop logits (n, crops): the mean over crops of
    sigmoid(logit / T), which is what the scanner computes with the exported model."""
    return sigmoid(np.asarray(logits, np.float64) / temperature).mean(axis=1)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FPR, TPR at each distinct score used as threshold (descending), starting at (0, 0)."""
    thresholds = np.unique(p)[::-1]
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    tpr = np.concatenate([[0.0], tp / max(1, len(pos))])
    fpr = np.concatenate([[0.0], fp / max(1, len(neg))])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Probability that a random ai image outscores a random real one (ties count half)."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def pr_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct threshold (descending scores)."""
    fpr, tpr, _ = roc_curve(y, p)
    n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
    tp, fp = tpr[1:] * n_pos, fpr[1:] * n_neg
    return tp / np.maximum(tp + fp, 1), tpr[1:]


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Sum over thresholds of precision times the step in recall (scikit-learn's definition)."""
    precision, recall = pr_curve(y, p)
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def tpr_at_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float = 0.01) -> float:
    """The highest share of ai images caught while flagging at most `max_fpr` of real ones."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def confusion(y: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    """[[TN, FP], [FN, TP]]: rows are the true class (real, ai), columns the predicted one."""
    return [
        [int(np.sum((y == 0) & (pred == 0))), int(np.sum((y == 0) & (pred == 1)))],
        [int(np.sum((y == 1) & (pred == 0))), int(np.sum((y == 1) & (pred == 1)))],
    ]


def choose_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """See THRESHOLD_RULE. Candidates are the observed scores (a threshold between two of them
    classifies exactly like the upper one)."""
    fpr, tpr, thresholds = roc_curve(y, p)
    balanced = (tpr[1:] + 1 - fpr[1:]) / 2
    candidates = thresholds[1:]
    best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0, atol=1e-12))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T minimising the log loss of calibrated(logits, T): a log-spaced grid, then a finer one
    around its best point (the loss is smooth and one-dimensional)."""
    low, high = TEMPERATURE_RANGE
    grid = np.logspace(np.log10(low), np.log10(high), 81)
    for _ in range(3):
        losses = [log_loss(y, calibrated(logits, t)) for t in grid]
        best = int(np.argmin(losses))
        lo, hi = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
        grid = np.linspace(lo, hi, 41)
    return float(grid[np.argmin([log_loss(y, calibrated(logits, t)) for t in grid])])


def temperature_edge(temperature: float) -> str | None:
    """ "upper" or "lower" when a fitted temperature sits on an edge of TEMPERATURE_RANGE."""
    low, high = TEMPERATURE_RANGE
    if temperature >= high * (1 - 1e-6):
        return "upper"
    if temperature <= low * (1 + 1e-6):
        return "lower"
    return None


def summary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Every headline number for one split at the given threshold."""
    pred = (p >= threshold).astype(np.int64)
    (tn, fp), (fn, tp) = confusion(y, pred)
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "n_ai": int(np.sum(y == 1)),
        "n_real": int(np.sum(y == 0)),
        "threshold": float(threshold),
        "loss": log_loss(y, p),
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "balanced_accuracy": (recall + tn / max(1, tn + fp)) / 2,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(EPS, precision + recall),
        "roc_auc": roc_auc(y, p) if both else None,
        "average_precision": average_precision(y, p) if both else None,
        "tpr_at_1pct_fpr": tpr_at_fpr(y, p) if both else None,
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "confusion_matrix_layout": "rows true [real, ai], columns predicted [real, ai]",
    }


def by_source(y: np.ndarray, p: np.ndarray, threshold: float, sources: list[str]) -> dict:
    """Per source (the manifest's generator): count, accuracy, mean score, and for ai sources
    the ROC-AUC against all real images of the split (how separable that generator is)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, source in enumerate(sources):
        groups[source].append(i)
    real = np.flatnonzero(y == 0)
    out = {}
    for source, members in sorted(groups.items()):
        idx = np.array(members)
        entry: dict[str, Any] = {
            "n": len(idx),
            "label": "ai" if y[idx].mean() >= 0.5 else "real",
            "accuracy": float(np.mean((p[idx] >= threshold) == (y[idx] == 1))),
            "mean_score": float(np.mean(p[idx])),
        }
        if np.all(y[idx] == 1) and len(real):
            both = np.concatenate([real, idx])
            entry["roc_auc_vs_real"] = roc_auc(y[both], p[both])
        out[source] = entry
    return out


def classification_report(y: np.ndarray, pred: np.ndarray, labels=("real", "ai")) -> str:
    """A text table like scikit-learn's: precision, recall, F1 and support per class."""
    lines = [f"{'':>14}{'precision':>11}{'recall':>9}{'f1-score':>10}{'support':>9}", ""]
    f1s, supports = [], []
    for k, name in enumerate(labels):
        tp = np.sum((pred == k) & (y == k))
        precision = tp / max(1, np.sum(pred == k))
        recall = tp / max(1, np.sum(y == k))
        f1 = 2 * precision * recall / max(EPS, precision + recall)
        f1s.append(f1)
        supports.append(int(np.sum(y == k)))
        lines.append(f"{name:>14}{precision:>11.4f}{recall:>9.4f}{f1:>10.4f}{supports[-1]:>9}")
    lines.append("")
    lines.append(f"{'accuracy':>14}{'':>11}{'':>9}{np.mean(pred == y):>10.4f}{len(y):>9}")
    lines.append(f"{'macro avg f1':>14}{'':>11}{'':>9}{np.mean(f1s):>10.4f}{len(y):>9}")
    return "\n".join(lines) + "\n"
