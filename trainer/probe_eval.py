"""The model card's numbers for a probe run, all from cached features (no image is encoded twice):
test metrics on each dataset, the size rows (every test image brought to 128 and 96 px), leave
one generator out, and scores against image size.

A scan scores exactly these features (the export's parity check ties the ONNX file to the head),
so the figures are those of `facescan --model` on the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer import data, files, metrics, plots, probe
from trainer.annotated_groups import annotated_groups, is_annotated
from trainer.features import FeatureCache

SIZE_VIEWS = {"px96": "96 px", "px128": "128 px", "native": "as stored"}
SIZE_LIMIT = 0.03  # the target: size rows within 3 points of native
SIZE_EVERY = 2  # the size rows use every second test image (each view costs a pass of the encoder)


def scores(cache: FeatureCache, samples: list[data.Sample], view: str, run: dict) -> np.ndarray:
    split = probe.Split(np.zeros(0), [], cache.features(samples, view, log=False), [view])
    return metrics.calibrated(split.logits(run["head"])[:, None], run["temperature"])


def rates(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | int]:
    flagged = p >= threshold
    row: dict[str, float | int] = {"n": int(len(y))}
    if np.any(y == 0):
        row["false_positive_rate"] = float(flagged[y == 0].mean())
    if np.any(y == 1):
        row["recall"] = float(flagged[y == 1].mean())
    return row


def test_metrics(cache: FeatureCache, data_dir: Path, run: dict) -> dict[str, Any]:
    """Metrics of DATA's test split (photoshop edits left out: not AI generation), and the
    false-positive rate or recall per source."""
    samples, _ = data.find_samples(data_dir)
    manifest = data.read_manifest(data_dir)
    test = [s for s in probe.select(samples, manifest, ()) if s.split == "test"]
    p = scores(cache, test, "native", run)
    y = np.array([s.label for s in test])
    sources = [data.source_of(s, manifest) for s in test]
    t = run["threshold"]
    result = metrics.summary(y, p, t)
    result["by_source"] = {
        source: rates(y[idx], p[idx], t)
        for source in sorted(set(sources))
        for idx in [np.array([i for i, s in enumerate(sources) if s == source])]
    }
    return result


def size_rows(cache: FeatureCache, test: list[data.Sample], run: dict) -> dict[str, Any]:
    y = np.array([s.label for s in test])
    rows = {}
    for view in SIZE_VIEWS:
        p = scores(cache, test, view, run)
        row = metrics.summary(y, p, run["threshold"])
        rows[view] = {k: row[k] for k in ("balanced_accuracy", "roc_auc", "recall")}
        rows[view]["false_positive_rate"] = float(np.mean(p[y == 0] >= run["threshold"]))
        rows[view]["scores"] = p
    return rows


def logo(
    cache: FeatureCache,
    samples: list[data.Sample],
    manifest: dict[str, dict[str, str]],
    train_limit: int | None = None,
    jitter_grid: tuple[float, ...] = probe.JITTER_GRID,
    size_steady: float = probe.SIZE_STEADY,
) -> dict[str, Any]:
    """Per AI generator: the probe refitted (and its threshold chosen) without it, then its test
    faces against every test real: ROC-AUC and the recall at that threshold."""
    kept = probe.select(samples, manifest, ())
    ai = sorted({data.source_of(s, manifest) for s in kept if s.label == 1})
    test = [s for s in kept if s.split == "test"]
    source = [data.source_of(s, manifest) for s in test]
    rows: dict[str, Any] = {}
    for held in ai if len(ai) > 1 else []:  # one generator: nothing would be left to learn
        fitted = probe.fit(cache, samples, manifest, (held,), train_limit, jitter_grid, size_steady)
        run = {"head": fitted["head"], "temperature": fitted["calibration"]["temperature"]}
        pick = [s for s, g in zip(test, source, strict=True) if s.label == 0 or g == held]
        y = np.array([s.label for s in pick])
        p = scores(cache, pick, "native", run)
        threshold = fitted["calibration"]["threshold"]
        rows[held] = {
            "roc_auc": metrics.roc_auc(y, p),
            "recall_at_threshold": float(np.mean(p[y == 1] >= threshold)),
            "false_positive_rate": float(np.mean(p[y == 0] >= threshold)),
            "n_ai": int(y.sum()),
            "n_real": int(len(y) - y.sum()),
        }
    return rows


def fairness(
    cache: FeatureCache, samples: list[data.Sample], manifest: dict[str, dict[str, str]], run: dict
) -> dict[str, Any]:
    """False-positive rate per annotated age group, gender and race (faces3's UTKFace columns)
    on the validation and test reals that carry them, with 95 % Wilson intervals, and the
    largest gap by the issue's rule (over 1.5x the best group's, intervals apart)."""
    from trainer.fairness_stats import largest_gap, rates_by_group

    reals = [
        s
        for s in probe.select(samples, manifest, ())
        if s.split in ("val", "test") and s.label == 0 and is_annotated(manifest.get(s.rel, {}))
    ]
    flagged = scores(cache, reals, "native", run) >= run["threshold"]
    result: dict[str, Any] = {"n": len(reals)}
    for column, groups in annotated_groups(reals, manifest).items():
        rates = rates_by_group(flagged, groups)
        result[column] = {
            "false_positive_rate": {g: r.to_dict() for g, r in rates.items()},
            "largest_gap": largest_gap(rates),
        }
    return result


def size_plot(rows: dict[str, Any], y: np.ndarray, threshold: float, path: Path) -> Any:
    """Mean score and its 10-90 % band per class at each test size: a size-proof model draws
    flat lines."""
    fig, (ax,) = plots._figure(6, 4)
    x = np.arange(len(SIZE_VIEWS))
    for label, name in enumerate(plots.LABELS):
        per_view = [rows[v]["scores"][y == label] for v in SIZE_VIEWS]
        mean = [float(np.mean(s)) for s in per_view]
        lo, hi = ([float(np.quantile(s, q)) for s in per_view] for q in (0.1, 0.9))
        color = plots.CLASS_COLORS[name]
        ax.plot(x, mean, "-o", color=color, label=f"{name} (n={len(per_view[0])}): mean")
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, label=f"{name}: 10-90 %")
    ax.axhline(threshold, color="grey", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xticks(x, list(SIZE_VIEWS.values()))
    ax.set(xlabel="test image brought to", ylabel=plots.SCORE_LABEL, ylim=(0, 1))
    ax.set_title("score against image size, faces3 test")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return plots._save(fig, path)


def evaluate(run_dir: Path, data_dir: Path, also: list[Path]) -> dict[str, Any]:
    """Write metrics.json and sizes.png into the run; return the metrics."""
    head, record = probe.load_head(run_dir)
    calibration = record["calibration"]
    run = {"head": head, "temperature": calibration["temperature"]}
    run["threshold"] = calibration["threshold"]
    cache = probe.open_cache(probe.spec_of(record), probe.blocks_of(record))
    samples, _ = data.find_samples(data_dir)
    manifest = data.read_manifest(data_dir)
    test = [s for s in probe.select(samples, manifest, ()) if s.split == "test"]
    sized = test[::SIZE_EVERY]
    sizes = size_rows(cache, sized, run)
    y = np.array([s.label for s in sized])
    size_plot(sizes, y, run["threshold"], run_dir / "sizes.png")
    result = {
        "threshold": run["threshold"],
        "operating_points": calibration["operating_points"],
        "test": {d.name: test_metrics(cache, d, run) for d in [data_dir, *also]},
        "sizes": {v: {k: x for k, x in r.items() if k != "scores"} for v, r in sizes.items()},
        "fairness_annotated": fairness(cache, samples, manifest, run),
        "leave_one_generator_out": logo(
            cache,
            samples,
            manifest,
            record["settings"].get("train_limit"),
            tuple(record["settings"].get("jitter_grid", [0.0])),  # runs before jitter: none
            record["settings"].get("size_steady", 0.0),  # runs before it: none
        ),
    }
    files.write_text(run_dir / "metrics.json", json.dumps(result, indent=2))
    return result
