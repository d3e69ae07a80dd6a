"""PNG figures for runs, evaluations and EDA (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from trainer import metrics  # noqa: E402

LABELS = ("real", "ai")
CURVE_LABELS = {
    "loss": "binary cross-entropy",
    "accuracy": "accuracy at p = 0.5",
    "auc": "ROC-AUC",
}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(history: dict[str, list[float]], path: Path, best_epoch: int | None = None) -> Path:
    """Loss, accuracy and ROC-AUC per epoch, train and val, with the epoch whose weights were
    kept marked."""
    names = [m for m in ("loss", "accuracy", "auc") if m in history or f"val_{m}" in history]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for key, style in ((name, "-o"), (f"val_{name}", "-s")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=CURVE_LABELS[name], title=name)
        ax.legend(fontsize=8)
    return _save(fig, path)


def confusion(matrix: list[list[int]], path: Path, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(np.array(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(np.array(matrix)):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=12)
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=LABELS, yticklabels=LABELS)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    return _save(fig, path)


def roc(y: np.ndarray, p: np.ndarray, path: Path, title: str = "") -> Path:
    fpr, tpr, _ = metrics.roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc(y, p):.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate (real flagged)", ylabel="true positive rate (ai caught)")
    ax.set_title(title or "ROC")
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr(y: np.ndarray, p: np.ndarray, path: Path, title: str = "") -> Path:
    precision, recall = metrics.pr_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.step(recall, precision, where="post", label=f"AP {metrics.average_precision(y, p):.4f}")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02), title=title or "precision-recall")
    ax.legend(loc="lower left")
    return _save(fig, path)


def score_histogram(y: np.ndarray, p: np.ndarray, threshold: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(0, 1, 41).tolist()
    for k, name in enumerate(LABELS):
        ax.hist(p[y == k], bins=bins, alpha=0.6, label=f"{name} ({int(np.sum(y == k))})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="score (probability of ai)", ylabel="images", title="scores per class")
    ax.legend()
    return _save(fig, path)


def bars(counts: dict[str, dict[str, int]], path: Path, title: str) -> Path:
    """Grouped bars: counts[group][category]."""
    groups = list(counts)
    cats = sorted({c for g in counts.values() for c in g})
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(groups) * max(1, len(cats)) / 2), 3.5))
    width = 0.8 / max(1, len(cats))
    for k, cat in enumerate(cats):
        xs = np.arange(len(groups)) + k * width
        ax.bar(xs, [counts[g].get(cat, 0) for g in groups], width, label=cat)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set(title=title, ylabel="images")
    ax.legend(fontsize=8)
    return _save(fig, path)


def histograms(values: Mapping[str, Sequence[float]], path: Path, title: str, xlabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, v in values.items():
        ax.hist(v, bins=30, alpha=0.6, label=f"{name} ({len(v)})")
    ax.set(title=title, xlabel=xlabel, ylabel="images")
    ax.legend()
    return _save(fig, path)


def grid(images: list[np.ndarray], path: Path, title: str, cols: int = 6) -> Path:
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images, strict=False):
        ax.imshow(image)
    fig.suptitle(title)
    return _save(fig, path)


def pca_scatter(points: np.ndarray, y: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for k, name in enumerate(LABELS):
        ax.scatter(points[y == k, 0], points[y == k, 1], s=6, alpha=0.5, label=name)
    ax.set(xlabel="PC1", ylabel="PC2", title="PCA of 32x32 grey thumbnails")
    ax.legend()
    return _save(fig, path)


def pca_boxplot(points: np.ndarray, y: np.ndarray, path: Path) -> Path:
    k = points.shape[1]
    fig, ax = plt.subplots(figsize=(1.4 * k + 2, 3.8))
    data, positions = [], []
    for c in range(k):
        for label in (0, 1):
            data.append(points[y == label, c])
            positions.append(3 * c + label)
    ax.boxplot(data, positions=positions, widths=0.8)
    ax.set_xticks([3 * c + 0.5 for c in range(k)], [f"PC{c + 1}" for c in range(k)])
    ax.set(title="first principal components, real (left) vs ai (right)")
    return _save(fig, path)
