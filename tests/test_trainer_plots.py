"""The figures a data scientist would show a colleague: read back from matplotlib's objects
(titles, labels, ticks, legends, colours), not just "the PNG exists"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install facescan[train]")

from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from trainer import audit_report, data, plots  # noqa: E402
from trainer.eda import QUALITY_EDGES, SIZE_EDGES, categories, sample_groups  # noqa: E402
from trainer.metrics import by_source  # noqa: E402
from trainer.robustness import reliability  # noqa: E402

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
    scores = plots.score_histogram(Y, P, 0.5, tmp_path / "s.png", "val")
    scatter = plots.pca_scatter(RNG.random((40, 2)), Y, np.array([0.5, 0.2]), tmp_path / "p.png")
    for fig in (balance, scores, scatter):
        legend = fig.axes[0].get_legend()
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            name = text.get_text().split()[0]
            if name in plots.CLASS_COLORS:
                face = handle.get_facecolor()  # type: ignore[union-attr]
                face = face[0] if np.ndim(face) == 2 else face
                assert to_rgba(face, 1)[:3] == colour_of(name)[:3], (fig, name)


def test_one_epoch_is_one_integer_tick(tmp_path: Path) -> None:
    history = {k: [0.5] for k in ("loss", "val_loss", "auc", "val_auc")}
    for ax in plots.curves(history, tmp_path / "curves.png", best_epoch=1).axes:
        assert visible_ticks(ax.xaxis) == [1]  # not 0.945, 0.96, ... 1.05


def bar_boxes(fig: Figure) -> list:  # type: ignore[type-arg]
    """Display boxes of every bar drawn (the figure drawn first, so the layout is final)."""
    fig.canvas.draw()
    return [p.get_window_extent() for ax in fig.axes for p in ax.patches if p.get_height() > 0]


def legend_boxes(fig: Figure) -> list:  # type: ignore[type-arg]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert legends
    return [legend.get_window_extent() for legend in legends]


def assert_no_legend_on_a_bar(fig: Figure) -> None:
    bars = bar_boxes(fig)
    assert bars
    for legend in legend_boxes(fig):
        assert not [b for b in bars if legend.overlaps(b)], legend


def test_sizes_and_qualities_are_categories_each_bar_with_its_count(tmp_path: Path) -> None:
    # Both classes at 250 px, the ai ones also at 256: two slots, not neighbours at ~252, ~254.
    sizes = categories({"real": [250] * 4, "ai": [250] * 3 + [256] * 5}, SIZE_EDGES)
    ax = plots.bars(sizes, tmp_path / "sizes.png", "sizes", "longest side (px)").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["250", "256"]
    assert [t.get_text() for t in ax.texts] == ["4", "0", "3", "5"]  # real then ai, per slot
    # Many values: ranges, in order, still one slot each.
    qualities = categories({"real": list(range(40, 101, 4)), "ai": [75]}, QUALITY_EDGES)
    ax = plots.bars(qualities, tmp_path / "q.png", "quality", "quality").axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == ["1-49", "50-59", "60-69", "70-79", "80-89", "90-94", "95-100"]
    assert sum(int(t.get_text()) for t in ax.texts) == 17  # every image counted on a bar


def test_legends_cover_no_bar(tmp_path: Path) -> None:
    # Tall bars at the right, where matplotlib's "best" legend would otherwise have to go.
    formats = {"GIF": {"real": 1, "ai": 1}, "JPEG": {"real": 90, "ai": 95}, "PNG": {"ai": 99}}
    assert_no_legend_on_a_bar(plots.bars(formats, tmp_path / "f.png", "formats", "format"))
    one = categories({"real": [75] * 30, "ai": [75] * 40}, QUALITY_EDGES)
    assert_no_legend_on_a_bar(plots.bars(one, tmp_path / "q.png", "quality", "quality"))
    confident = np.where(Y == 1, 0.99, 0.01)  # tall bars at both ends of the score axis
    fig = plots.score_histogram(Y, confident, 0.5, tmp_path / "s.png", "test")
    assert_no_legend_on_a_bar(fig)


def test_a_lone_category_is_one_bar_not_a_filled_axes(tmp_path: Path) -> None:
    one = categories({"real": [75] * 30, "ai": [75] * 40}, QUALITY_EDGES)
    ax = plots.bars(one, tmp_path / "q.png", "quality", "quality").axes[0]
    low, high = ax.get_xlim()
    assert sum(p.get_width() for p in ax.patches) / (high - low) < 0.3


def test_score_histogram_puts_the_classes_side_by_side(tmp_path: Path) -> None:
    """Both classes in one bin: two bars of their own counts, neither hiding the other."""
    y = np.array([0] * 17 + [1] * 17)
    ax = plots.score_histogram(y, np.full(34, 0.46), 0.458, tmp_path / "s.png", "test").axes[0]
    tall = [p for p in ax.patches if p.get_height() > 0]
    assert [p.get_height() for p in tall] == [17, 17]
    assert tall[0].get_x() + tall[0].get_width() <= tall[1].get_x()


def audit_table(groups: dict[str, tuple[int, int]]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        g: {"n": n, "flagged": k, "rate": k / n, "ci95": [max(0, k / n - 0.2), min(1, k / n + 0.2)]}
        for g, (n, k) in groups.items()
    }


def test_audit_panels_legend_below_and_a_lone_group_is_a_bar(tmp_path: Path) -> None:
    tables = {
        "skin tone (ITA)": audit_table({"very light": (20, 19), "light": (30, 27), "dark": (9, 9)}),
        "JPEG quality": audit_table({"q95": (59, 55)}),  # one group
    }
    path = tmp_path / "fpr.png"
    fig = audit_report.rate_panels(tables, 0.93, "all real images", "false-positive rate", path)
    assert_no_legend_on_a_bar(fig)
    lone = fig.axes[1]
    (bar,) = lone.patches
    low, high = lone.get_ylim()
    assert bar.get_height() / (high - low) < 0.3  # one slot of three, not the whole panel
    assert [t.get_text() for t in lone.get_yticklabels()] == ["q95 (n=59)"]
    assert fig.legends[0].get_texts()[0].get_text() == "all real images: 93.0 %"
    assert path.is_file()


def test_reliability_shows_how_many_images_each_bin_holds(tmp_path: Path) -> None:
    """A model without signal: every score near 0.5, so one bin holds every image."""
    y = np.array([0, 1] * 50)
    p = 0.5008 + RNG.random(100) * 1e-4
    fig = plots.reliability(reliability(y, p), tmp_path / "r.png")
    curve, counts = fig.axes
    assert "scores 0.5008 to 0.5009" in curve.get_title()
    assert [t.get_text() for t in counts.texts] == ["100"]
    assert counts.get_ylabel() == "images"


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
