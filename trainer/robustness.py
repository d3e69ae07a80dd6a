"""Model-card checks: robustness to how users' files differ, shortcuts, and calibration.

Each robustness row re-saves the chosen split the way a user's file might arrive (re-encoded,
resized, another container, blurred) into a temporary folder and scans it with the real
`Scanner`, file decoding included. The shortcut check fits a logistic regression on file
properties alone (size, bytes, JPEG quality): if those predicted the label, a model could too.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from scanner.scan import Scanner
from trainer import data, metrics, plots

Transform = Callable[[Image.Image], tuple[Image.Image, str, dict[str, Any]]]


def _saved(fmt: str, **options: Any) -> Callable[[Image.Image], tuple[Image.Image, str, dict]]:
    return lambda image: (image, fmt, options)


def _resized(factor: float) -> Transform:
    def resize(image: Image.Image) -> tuple[Image.Image, str, dict[str, Any]]:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.Resampling.BICUBIC), "PNG", {}

    return resize


# name -> what happens to the decoded test image before it is saved and scanned again.
# Resized and blurred copies are saved as PNG, so only the named change reaches the model.
TRANSFORMS: dict[str, Transform] = {
    "original": _saved("ORIGINAL"),
    "jpeg_q90": _saved("JPEG", quality=90),
    "jpeg_q75": _saved("JPEG", quality=75),
    "jpeg_q50": _saved("JPEG", quality=50),
    "downscaled_0.5x": _resized(0.5),
    "upscaled_2x": _resized(2.0),
    "png": _saved("PNG"),
    "webp": _saved("WEBP", quality=80),
    "blur_r1": lambda image: (image.filter(ImageFilter.GaussianBlur(1.0)), "PNG", {}),
}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def write_variant(samples: list[data.Sample], folder: Path, transform: Transform) -> list[Path]:
    """The samples re-saved by `transform` into `folder`; returns the new paths in order."""
    from scanner.decode import load

    paths = []
    for i, sample in enumerate(samples):
        image, fmt, options = transform(load(sample.path).image)
        if fmt == "ORIGINAL":
            paths.append(Path(sample.path))
            continue
        path = folder / f"{i:05}{EXTENSIONS[fmt]}"
        image.save(path, fmt, **options)
        paths.append(path)
    return paths


def scan_scores(scanner: Scanner, paths: list[Path]) -> np.ndarray:
    by_path = {r.path: r.score for r in scanner.scan(paths)}
    return np.array([by_path[str(p)] for p in paths], np.float64)


def robustness(scanner: Scanner, samples: list[data.Sample]) -> dict[str, dict[str, float]]:
    """Metrics of every TRANSFORMS row, and how far scores moved from the original."""
    y = np.array([s.label for s in samples])
    rows: dict[str, dict[str, float]] = {}
    original: np.ndarray | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, transform in TRANSFORMS.items():
            folder = Path(tmp) / name
            folder.mkdir()
            p = scan_scores(scanner, write_variant(samples, folder, transform))
            original = p if original is None else original
            row = metrics.summary(y, p, scanner.threshold)
            rows[name] = {
                "accuracy": row["accuracy"],
                "balanced_accuracy": balanced_accuracy(y, p, scanner.threshold),
                "roc_auc": row["roc_auc"],
                "tpr_at_1pct_fpr": row["tpr_at_1pct_fpr"],
                "mean_abs_score_change": float(np.mean(np.abs(p - original))),
            }
    return rows


def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    pred = p >= threshold
    return float((pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2)


def property_shortcut(data_dir: Path, exclude: tuple[str, ...]) -> dict[str, float]:
    """ROC-AUC of a logistic regression on file properties only (width, height, log bytes,
    JPEG quality), fitted on train and scored on test. Near 0.5 means no shortcut to learn."""
    rows = [r for r in data.read_manifest(data_dir).values() if r.get("kind") not in exclude]
    if not rows:
        return {}

    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        chosen = [r for r in rows if r["split"] == split]
        x = np.array(
            [
                [
                    float(r["width"]),
                    float(r["height"]),
                    np.log(float(r["bytes"])),
                    float(r["jpeg_quality"] or 0),
                ]
                for r in chosen
            ]
        )
        return x, np.array([1 if r["label"] == "fake" else 0 for r in chosen])

    x_train, y_train = features("train")
    x_test, y_test = features("test")
    mean, std = x_train.mean(0), x_train.std(0) + 1e-9
    w = fit_logistic((x_train - mean) / std, y_train)
    scores = metrics.sigmoid(np.c_[(x_test - mean) / std, np.ones(len(x_test))] @ w)
    return {"roc_auc_test": metrics.roc_auc(y_test, scores), "features": 4}


def within_size(samples: list[data.Sample], y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC-AUC among images of one stored size, for each size holding both classes. A model
    that separates classes only by size scores about 0.5 here whatever its overall AUC."""
    sizes = [f"{w}x{h}" for w, h in (Image.open(s.path).size for s in samples)]
    out: dict[str, Any] = {}
    for size in sorted(set(sizes)):
        idx = np.array([i for i, s in enumerate(sizes) if s == size])
        if len(set(y[idx])) == 2:
            out[size] = {"n": len(idx), "roc_auc": metrics.roc_auc(y[idx], p[idx])}
        else:
            out[size] = {"n": len(idx), "only": "ai" if y[idx][0] else "real"}
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 2000, lr: float = 0.5) -> np.ndarray:
    """Plain gradient descent on the mean log loss; the last weight is the bias."""
    xb = np.c_[x, np.ones(len(x))]
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        w -= lr * xb.T @ (metrics.sigmoid(xb @ w) - y) / len(y)
    return w


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Per-bin mean score vs observed AI rate, and the expected calibration error."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            confidence, observed = float(p[members].mean()), float(y[members].mean())
            ece += members.mean() * abs(confidence - observed)
            table.append(
                {"bin": b, "n": int(members.sum()), "mean_score": confidence, "ai_rate": observed}
            )
    span = [float(p.min()), float(p.max())] if len(p) else [0.0, 0.0]
    return {"bins": table, "ece": float(ece), "n_bins": bins, "score_range": span}


def model_card_checks(
    model: Path, data_dir: Path, split: str, out: Path, exclude: tuple[str, ...]
) -> dict[str, Any]:
    """Everything the model card reports beyond `evaluate`, written to out/card-checks.json."""
    samples, _ = data.find_samples(data_dir)
    samples = data.exclude_kinds(samples, data.read_manifest(data_dir), exclude)[0]
    samples = [s for s in samples if s.split == split]
    scanner = Scanner(model, provider="cpu")
    rows = robustness(scanner, samples)
    y = np.array([s.label for s in samples])
    p = scan_scores(scanner, [Path(s.path) for s in samples])
    calibration = reliability(y, p)
    out.mkdir(parents=True, exist_ok=True)
    plots.reliability(calibration, out / "reliability.png")
    result = {
        "model": str(model),
        "split": split,
        "excluded_kinds": list(exclude),
        "robustness": rows,
        "calibration": calibration,
        "property_shortcut": property_shortcut(data_dir, exclude),
        "within_size": within_size(samples, y, p),
    }
    (out / "card-checks.json").write_text(json.dumps(result, indent=2))
    print(markdown_table(rows))
    print("within-size ROC-AUC:", json.dumps(result["within_size"]))
    return result


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    head = "| variant | accuracy | balanced acc. | ROC-AUC | TPR@1%FPR | mean abs score change |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | "
            f"{r['roc_auc']:.4f} | {r['tpr_at_1pct_fpr']:.3f} | {r['mean_abs_score_change']:.4f} |"
        )
    return "\n".join(lines)
