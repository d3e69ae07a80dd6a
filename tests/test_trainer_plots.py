"""The figures a data scientist would show a colleague: read back from matplotlib's objects
(titles, labels, ticks, legends, colours), not just "the PNG exists"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install facescan[train]")

from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from trainer import data, plots  # noqa: E402
from trainer.eda import sample_groups  # noqa: E402
from trainer.metrics import by_source  # noqa: E402

RNG = np.random.default_rng(0)
Y = np.array([0] * 30 + [1] * 10)
P = np.clip(Y * 0.4 + RNG.random(40) * 0.6, 0, 1)


def colour_of(name: str) -> tuple[float, ...]:
    return to_rgba(plots.CLASS_COLORS[name])


def visible_ticks(axis) -> list[float]:  # type: ignore[no-untyped-def]
    low, high = sorted(axis.get_view_interval())
    return [t for t in axis.get_majorticklocs() if low <= t <= high]


def test_every_evaluation_title_names_its_split(tmp_path: Path) -> None:
    for split in ("val", "test"):
        figures = [
            plots.score_histogram(Y, P, 0.5, tmp_path / "s.png", split),
            plots.roc(Y, P, tmp_path / "r.png", split, 0.5),
            plots.pr(Y, P, tmp_path / "p.png", split, 0.5),
            plots.confusion([[25, 5], [2, 8]], tmp_path / "c.png", split, 0.5),
        ]
        for fig in figures:
            ax = fig.axes[0]
            assert f"({split}" in ax.get_title(), ax.get_title()
            assert ax.get_xlabel() and ax.get_ylabel()


def test_pr_has_the_prevalence_baseline(tmp_path: Path) -> None:
    ax = plots.pr(Y, P, tmp_path / "p.png", "test", 0.5).axes[0]
    (baseline,) = [line for line in ax.get_lines() if "chance" in line.get_label()]
    assert list(baseline.get_ydata()) == [0.25, 0.25]  # 10 ai of 40, across the whole plot
    assert list(baseline.get_xdata()) == [0, 1]


def test_confusion_shows_counts_rates_and_threshold(tmp_path: Path) -> None:
    ax = plots.confusion([[25, 5], [2, 8]], tmp_path / "c.png", "val", 0.42).axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["2\nFNR 20.0 %", "25\nTNR 83.3 %", "5\nFPR 16.7 %", "8\nTPR 80.0 %"]
    assert "threshold 0.420" in ax.get_title()


def test_curves_have_integer_epochs_y_labels_and_the_kept_epoch(tmp_path: Path) -> None:
    history = {k: [0.5, 0.6, 0.7] for k in ("loss", "val_loss", "auc", "val_auc")}
    fig = plots.curves(history, tmp_path / "curves.png", best_epoch=2)
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_xlabel() == "epoch"
        assert visible_ticks(ax.xaxis) == [1, 2, 3]
        marks = [line for line in ax.get_lines() if list(line.get_xdata()) == [2, 2]]
        assert len(marks) == 1 and "epoch 2" in marks[0].get_label()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "ROC-AUC"]


def test_one_colour_per_class_in_every_figure(tmp_path: Path) -> None:
    # Categories sorted by name would put "ai" first and give it the first colour.
    balance = plots.bars({"train": {"ai": 3, "real": 5}}, tmp_path / "b.png", "t", "split")
    by_label = {c.get_label(): c.patches[0].get_facecolor() for c in balance.axes[0].containers}
    assert by_label == {"real": colour_of("real"), "ai": colour_of("ai")}
    hist = plots.histograms({"real": [1.0, 2.0], "ai": [2.0]}, tmp_path / "h.png", "t", "x")
    scores = plots.score_histogram(Y, P, 0.5, tmp_path / "s.png", "val")
    scatter = plots.pca_scatter(RNG.random((40, 2)), Y, np.array([0.5, 0.2]), tmp_path / "p.png")
    for fig in (hist, scores, scatter):
        legend = fig.axes[0].get_legend()
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            name = text.get_text().split()[0]
            if name in plots.CLASS_COLORS:
                face = handle.get_facecolor()  # type: ignore[union-attr]
                face = face[0] if np.ndim(face) == 2 else face
                assert to_rgba(face, 1)[:3] == colour_of(name)[:3], (fig, name)


def test_a_single_jpeg_quality_is_one_labelled_tick(tmp_path: Path) -> None:
    fig = plots.histograms(
        {"real": [75] * 3, "ai": [75] * 4}, tmp_path / "q.png", "quality", "q", discrete=True
    )
    assert visible_ticks(fig.axes[0].xaxis) == [75]


def test_pca_figures_give_explained_variance_legend_and_labels(tmp_path: Path) -> None:
    points, explained = RNG.random((40, 3)), np.array([0.3, 0.2, 0.1])
    scatter = plots.pca_scatter(points, Y, explained, tmp_path / "s.png").axes[0]
    assert scatter.get_xlabel() == "PC1 (30.0 % of variance)"
    assert scatter.get_ylabel() == "PC2 (20.0 % of variance)"
    box = plots.pca_boxplot(points, Y, explained, tmp_path / "b.png").axes[0]
    assert box.get_ylabel() and box.get_xlabel()
    assert [t.get_text() for t in box.get_legend().get_texts()] == ["real", "ai"]
    assert [t.get_text() for t in box.get_xticklabels()][0] == "PC1\n30.0 %"


def test_sample_grids_have_captions(tmp_path: Path) -> None:
    images = [np.zeros((8, 8, 3), np.uint8)] * 3
    fig = plots.grid(images, ["ffhq\n8x8", "lfw\n8x8", "x\n8x8"], tmp_path / "g.png", "real")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["ffhq\n8x8", "lfw\n8x8", "x\n8x8"]


def test_the_ai_grid_leaves_photoshopped_fakes_to_their_own() -> None:
    samples = [
        data.Sample(f"/{i}", f"{i}.jpg", label, "train") for i, label in enumerate([0, 1, 1])
    ]
    manifest = {"1.jpg": {"kind": "ai-generated"}, "2.jpg": {"kind": "manipulated"}}
    assert sample_groups(samples, manifest) == {"real": [0], "ai": [1], "manipulated": [2]}
    assert sample_groups(samples, {}) == {"real": [0], "ai": [1, 2]}


def test_per_source_figure(tmp_path: Path) -> None:
    names = ["ffhq"] * 30 + ["stylegan"] * 10
    result = by_source(Y, P, 0.5, names)
    fig = plots.sources(result, P, names, 0.5, tmp_path / "src.png", "test")
    accuracy, scores = fig.axes
    assert accuracy.get_title() == "accuracy per source (test)"
    assert [t.get_text() for t in accuracy.get_yticklabels()] == ["stylegan", "ffhq"]  # ai first
    assert [t.get_text() for t in accuracy.texts] == ["n=10", "n=30"]
    assert scores.get_xlabel() == plots.SCORE_LABEL
    assert any(isinstance(h, Line2D) for h in fig.legends[0].legend_handles)  # the threshold


def test_source_keys_are_short_readable_names() -> None:
    sample = data.Sample("/x", "x.jpg", 0, "test")
    ciplab = {"generator": "unknown", "source_repo": "darkhorrow/real-fake-faces-classification"}
    ciplab["origin_dataset"] = "CIPLAB Real and Fake Face Detection (real, downscaled 160px)"
    cases = [
        ({"generator": "StyleGAN"}, "stylegan"),
        (ciplab, "ciplab"),
        ({"generator": "", "source_repo": "someone/LFW-faces"}, "lfw-faces"),
        ({}, "unknown"),
    ]
    for row, key in cases:
        assert data.source_of(sample, {"x.jpg": row}) == key
