"""PNG figures for runs, evaluations, EDA and the model-card checks.

Conventions, so a figure can be shown to a colleague as it is: every axis is labelled, the split
is in every evaluation title, each class has one colour everywhere (CLASS_COLORS), and the
decision threshold is drawn wherever it decides something. Figures are built with matplotlib's
object API (no pyplot state, no display) and returned after saving, so tests can read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from trainer import metrics

LABELS = ("real", "ai")
CLASS_COLORS = {"real": "tab:blue", "ai": "tab:orange"}
CURVES = {  # history key -> (title, y label)
    "loss": ("loss", "binary cross-entropy"),
    "accuracy": ("accuracy", "accuracy at p = 0.5"),
    "auc": ("ROC-AUC", "ROC-AUC"),
}
SCORE_LABEL = "score (probability of ai)"
MIN_SLOTS = 3  # bar charts are at least this many bars' slots wide (or tall)


def _figure(width: float, height: float, cols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height))
    return fig, list(np.atleast_1d(fig.subplots(1, cols)))


def _legend_right(ax: Axes, **options: Any) -> None:
    """The legend right of the axes, where it cannot cover a bar, box or point (_save's
    tight_layout makes room for it)."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, **options)


def _save(fig: Figure, path: Path, legend_below: bool = False) -> Figure:
    """Lay out (leaving 0.4 in at the bottom for a figure legend) and write the PNG."""
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight() if legend_below else 0, 1, 1))
    fig.savefig(path, dpi=110)
    return fig


def curves(history: dict[str, list[float]], path: Path, best_epoch: int | None = None) -> Figure:
    """Loss, accuracy and ROC-AUC per epoch, train and val, the kept (best) epoch marked."""
    names = [m for m in CURVES if m in history or f"val_{m}" in history]
    epochs = max((len(v) for v in history.values()), default=1)
    fig, axes = _figure(4.5 * len(names), 3.5, len(names))
    for ax, name in zip(axes, names, strict=True):
        for key, style in ((name, "-o"), (f"val_{name}", "-s")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"kept: epoch {best_epoch}")
        # Half an epoch of room each side, and whole epochs only: after one epoch matplotlib
        # would zoom to 0.945-1.055 and tick fractions of an epoch.
        ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        title, ylabel = CURVES[name]
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.legend(fontsize=8)
    return _save(fig, path)


def confusion(matrix: list[list[int]], path: Path, split: str, threshold: float) -> Figure:
    """Counts and rates per true class (TNR, FPR / FNR, TPR), coloured by the rate so the
    larger class does not drown the smaller one."""
    counts = np.array(matrix, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = (("TNR", "FPR"), ("FNR", "TPR"))
    fig, (ax,) = _figure(4.2, 3.8)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        colour = "white" if rates[i, j] > 0.6 else "black"
        text = f"{int(n)}\n{names[i][j]} {100 * rates[i, j]:.1f} %"
        ax.text(j, i, text, ha="center", va="center", fontsize=11, color=colour)
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=LABELS, yticklabels=LABELS)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(f"confusion matrix ({split}, threshold {threshold:.3f})")
    return _save(fig, path)


def roc(y: np.ndarray, p: np.ndarray, path: Path, split: str, threshold: float) -> Figure:
    fpr, tpr, _ = metrics.roc_curve(y, p)
    fig, (ax,) = _figure(4.2, 4.2)
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc(y, p):.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    pred = p >= threshold
    point = (pred[y == 0].mean(), pred[y == 1].mean())
    ax.plot(*point, "ko", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="false positive rate (real flagged)", ylabel="true positive rate (ai caught)")
    ax.set_title(f"ROC ({split})")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def pr(y: np.ndarray, p: np.ndarray, path: Path, split: str, threshold: float) -> Figure:
    """Precision against recall, with the precision of flagging everything (the share of ai,
    where a useless model sits) as the baseline."""
    precision, recall = metrics.pr_curve(y, p)
    prevalence = float(np.mean(y == 1))
    fig, (ax,) = _figure(4.2, 4.2)
    ax.step(recall, precision, where="post", label=f"AP {metrics.average_precision(y, p):.4f}")
    ax.axhline(prevalence, color="grey", linestyle=":", label=f"chance (ai share {prevalence:.2f})")
    pred = p >= threshold
    point = (pred[y == 1].mean(), (y[pred] == 1).mean() if pred.any() else 1.0)
    ax.plot(*point, "ko", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall (ai caught)", ylabel="precision (flagged that are ai)", ylim=(0, 1.02))
    ax.set_title(f"precision-recall ({split})")
    ax.legend(loc="best", fontsize=8)  # a weak model's curve can fall into any corner
    return _save(fig, path)


def score_histogram(
    y: np.ndarray, p: np.ndarray, threshold: float, path: Path, split: str
) -> Figure:
    """The classes' bars side by side in each bin (overlaid, the front class would hide the
    other's count); the legend right of the axes, off the bars piled at 0 and 1."""
    fig, (ax,) = _figure(6.2, 3.5)
    bins = np.linspace(0, 1, 41).tolist()
    ax.hist(
        [p[y == k] for k in range(len(LABELS))], bins=bins,
        color=[CLASS_COLORS[name] for name in LABELS],
        label=[f"{name} ({int(np.sum(y == k))})" for k, name in enumerate(LABELS)],
    )  # fmt: skip
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel=SCORE_LABEL, ylabel="images", title=f"scores per class ({split})")
    _legend_right(ax)
    return _save(fig, path)


def sources(
    by_source: dict[str, dict[str, Any]],
    p: np.ndarray,
    names: Sequence[str],
    threshold: float,
    path: Path,
    split: str,
) -> Figure:
    """Per source (metrics.by_source): accuracy with its count, and the spread of scores
    against the threshold; bars coloured by the source's class."""
    order = sorted(by_source, key=lambda s: (by_source[s]["label"], s))
    colours = [CLASS_COLORS[by_source[s]["label"]] for s in order]
    fig, axes = _figure(10, 0.5 * len(order) + 1.6, 2)
    rows = np.arange(len(order))
    bars = axes[0].barh(rows, [by_source[s]["accuracy"] for s in order], color=colours)
    axes[0].bar_label(bars, [f"n={by_source[s]['n']}" for s in order], padding=3, fontsize=8)
    axes[0].set(yticks=rows, yticklabels=order, xlim=(0, 1.18), xlabel="accuracy at threshold")
    axes[0].invert_yaxis()
    axes[0].set_title(f"accuracy per source ({split})")
    scores = [p[[i for i, n in enumerate(names) if n == s]] for s in order]
    box = axes[1].boxplot(
        scores, positions=rows, orientation="horizontal", widths=0.6, patch_artist=True,
        medianprops={"color": "black"},
    )  # fmt: skip
    for patch, colour in zip(box["boxes"], colours, strict=True):
        patch.set(facecolor=colour, alpha=0.6)
    line = axes[1].axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    axes[1].set(yticks=rows, yticklabels=order, xlim=(0, 1), xlabel=SCORE_LABEL)
    axes[1].invert_yaxis()
    axes[1].set_title(f"scores per source ({split})")
    handles: list[Artist] = [Patch(color=CLASS_COLORS[c], label=f"{c} source") for c in LABELS]
    handles.append(line)
    # Below the panels: inside, it would cover a source's scores.
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    return _save(fig, path, legend_below=True)


def _class_first(categories: set[str]) -> list[str]:
    return [c for c in LABELS if c in categories] + sorted(categories - set(LABELS))


def bars(counts: dict[str, dict[str, int]], path: Path, title: str, xlabel: str) -> Figure:
    """Grouped bars counts[group][category] on a categorical axis (one slot per group, in the
    given order), each labelled with its count; a category that is a class has the class colour.
    The legend sits right of the axes, where it cannot cover a bar."""
    groups = list(counts)
    cats = _class_first({c for g in counts.values() for c in g})
    fig, (ax,) = _figure(max(4.5, 1.2 * len(groups) * max(1, len(cats)) / 2 + 3), 3.6)
    width = 0.8 / max(1, len(cats))
    for k, cat in enumerate(cats):
        xs = np.arange(len(groups)) + k * width
        drawn = ax.bar(
            xs, [counts[g].get(cat, 0) for g in groups], width, label=cat,
            color=CLASS_COLORS.get(cat),
        )  # fmt: skip
        ax.bar_label(drawn, fontsize=7)
    centres = np.arange(len(groups)) + 0.4 - width / 2
    ax.set_xticks(centres, groups)
    # At least MIN_SLOTS slots wide, so one group is a bar among empty room, not a filled axes.
    middle, span = float(np.mean(centres)) if groups else 0.0, max(len(groups), MIN_SLOTS)
    ax.set_xlim(middle - span / 2, middle + span / 2)
    ax.set(title=title, xlabel=xlabel, ylabel="images")
    ax.margins(y=0.12)  # room for the count labels
    if cats:
        _legend_right(ax)
    else:
        ax.text(0.5, 0.5, "no images", transform=ax.transAxes, ha="center", va="center")
    return _save(fig, path)


def grid(
    images: Sequence[np.ndarray], captions: Sequence[str], path: Path, title: str, cols: int = 6
) -> Figure:
    rows = max(1, -(-len(images) // cols))
    fig = Figure(figsize=(1.8 * cols, 2.0 * rows + 0.5))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, caption in zip(axes, images, captions, strict=False):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def _pc_label(c: int, explained: np.ndarray) -> str:
    return f"PC{c + 1} ({100 * explained[c]:.1f} % of variance)"


def pca_scatter(points: np.ndarray, y: np.ndarray, explained: np.ndarray, path: Path) -> Figure:
    fig, (ax,) = _figure(5.2, 4.6)
    for k, name in enumerate(LABELS):
        ax.scatter(
            points[y == k, 0], points[y == k, 1], s=6, alpha=0.5, label=name,
            color=CLASS_COLORS[name],
        )  # fmt: skip
    ax.set(xlabel=_pc_label(0, explained), ylabel=_pc_label(1, explained))
    ax.set_title("PCA of 32x32 grey thumbnails")
    ax.legend(fontsize=8)
    return _save(fig, path)


def pca_boxplot(points: np.ndarray, y: np.ndarray, explained: np.ndarray, path: Path) -> Figure:
    k = points.shape[1]
    fig, (ax,) = _figure(1.5 * k + 2.5, 4.0)
    for label, name in enumerate(LABELS):
        box = ax.boxplot(
            [points[y == label, c] for c in range(k)],
            positions=[3 * c + label for c in range(k)],
            widths=0.8,
            patch_artist=True,
            medianprops={"color": "black"},
        )
        for patch in box["boxes"]:
            patch.set(facecolor=CLASS_COLORS[name], alpha=0.6)
    ticks = [f"PC{c + 1}\n{100 * explained[c]:.1f} %" for c in range(k)]
    ax.set_xticks([3 * c + 0.5 for c in range(k)], ticks)
    ax.set(ylabel="component score", xlabel="component (share of variance)")
    ax.set_title("first principal components per class (circles: outliers)")
    _legend_right(ax, handles=[Patch(color=CLASS_COLORS[n], alpha=0.6, label=n) for n in LABELS])
    return _save(fig, path)


def reliability(result: dict[str, Any], path: Path) -> Figure:
    """Mean score per bin against the observed share of ai (robustness.reliability), and below
    it how many images each bin holds: a model whose scores all sit near 0.5 fills one bin, and
    its one or two points on the diagonal must not pass for a calibrated model."""
    fig = Figure(figsize=(4.8, 6.2))
    ax, counts = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    table = result["bins"]
    xs = [b["mean_score"] for b in table]
    ax.plot(xs, [b["ai_rate"] for b in table], "o-", label="model")
    ax.set(ylabel="fraction AI-generated", xlim=(0, 1), ylim=(-0.02, 1.02))
    low, high = result["score_range"]
    ax.set_title(f"Reliability (ECE {result['ece']:.3f}; scores {low:.4f} to {high:.4f})")
    ax.legend(loc="upper left", fontsize=8)
    width = 1 / result["n_bins"]
    drawn = counts.bar(
        [(b["bin"] + 0.5) * width for b in table], [b["n"] for b in table], width * 0.9,
        color="tab:gray",
    )  # fmt: skip
    counts.bar_label(drawn, fontsize=7)
    counts.margins(y=0.25)  # room for the count labels
    counts.set(xlabel="score (mean in bin above; bin below)", ylabel="images")
    return _save(fig, path)
