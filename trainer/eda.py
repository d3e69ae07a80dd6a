"""`facescan-train eda`: look at the data before trusting a model trained on it.

Class balance per split, image sizes, formats and JPEG qualities per class (a class that differs
in any of them lets a model cheat), sample grids, PCA of grey thumbnails with outliers named,
and duplicates: the same bytes, or near-identical thumbnails, in two splits is leakage.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer import data, plots
from trainer.evaluate import report_failures

THUMB = 32
NEAR_DUPLICATE = 0.95  # Pearson correlation of 32x32 grey thumbnails
COMPONENTS = 5
AI_KIND = "ai-generated"  # the MANIFEST.csv kind of the fakes a detector is meant to find
GRID_SIZE = 18
# Sizes and JPEG qualities are drawn as categories (bars side by side per value: 250 and 256 px
# are two slots, not neighbours on a numeric axis); past this many values, as ranges.
MAX_CATEGORIES = 12
SIZE_EDGES = (0, 64, 128, 256, 512, 1024, 2048, 4096)  # longest side (px), ranges [a, b)
QUALITY_EDGES = (1, 50, 60, 70, 80, 90, 95)  # the last range ends at 100


def jpeg_quality(path: str) -> int | None:
    """Estimated IJG quality from the luminance quantisation table (header only, no pixels)."""
    standard = np.array(
        [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57]
        + [69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55]
        + [64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100]
        + [103, 99],
        np.float64,
    )
    try:
        with Image.open(path) as image:
            table = getattr(image, "quantization", None) or {}
    except Exception:
        return None
    if 0 not in table:
        return None
    # IJG tables are the standard one scaled monotonically, so sorting both pairs the entries
    # up whatever order (zigzag or natural) Pillow returns them in.
    scale = float(np.mean(np.sort(np.array(table[0], np.float64)) * 100 / np.sort(standard)))
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(round(min(100, max(1, quality))))


def categories(values: dict[str, list[int]], edges: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """counts[category][class] of integer values: one category per value when there are at most
    MAX_CATEGORIES of them, else one per range [edges[i], edges[i + 1]) that holds any (the
    last open-ended), labelled "a-b" with b inclusive."""
    distinct = sorted({v for vs in values.values() for v in vs})
    if len(distinct) <= MAX_CATEGORIES:
        key = {v: str(v) for v in distinct}
    else:
        bounds = [*edges[1:], max(distinct[-1], edges[-1]) + 1]
        labels = [
            f"{low}-{high - 1}" if low < high - 1 else str(low)
            for low, high in zip(edges, bounds, strict=True)
        ]
        key = {v: labels[int(np.searchsorted(edges, v, side="right")) - 1] for v in distinct}
    counts: dict[str, dict[str, int]] = {k: dict.fromkeys(values, 0) for k in key.values()}
    for name, vs in values.items():
        for v in vs:
            counts[key[v]][name] += 1
    return counts


def thumbnails(pixels: list[np.ndarray]) -> np.ndarray:
    """(n, 1024) grey 32x32 thumbnails, each standardised (mean 0, std 1)."""
    rows = [
        np.asarray(Image.fromarray(p).convert("L").resize((THUMB, THUMB), Image.Resampling.BOX))
        for p in pixels
    ]
    t = np.array(rows, np.float64).reshape(len(rows), -1)
    t -= t.mean(axis=1, keepdims=True)
    return t / np.maximum(t.std(axis=1, keepdims=True), 1e-6)


def pca(t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k principal component scores, and the share of variance each explains."""
    centred = t - t.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return centred @ vt[:k].T, variance[:k] / max(float(variance.sum()), 1e-12)


def sample_groups(
    samples: list[data.Sample], manifest: dict[str, dict[str, str]]
) -> dict[str, list[int]]:
    """Indices per sample grid: "real", "ai" and, where the manifest's `kind` says a fake is not
    AI-generated (photoshopped: "manipulated"), one grid per such kind, so the ai grid shows
    only what the detector is meant to find."""
    groups: dict[str, list[int]] = {name: [] for name in data.LABELS}
    for i, s in enumerate(samples):
        kind = manifest.get(s.rel, {}).get("kind", "")
        name = kind if s.label == 1 and kind not in ("", AI_KIND) else data.LABELS[s.label]
        groups.setdefault(name, []).append(i)
    return {name: members for name, members in groups.items() if members}


def outliers(points: np.ndarray, y: np.ndarray) -> dict[int, list[str]]:
    """Image index -> the components on which it lies beyond its class's Tukey fences
    (1.5 IQR outside the quartiles): exactly the circles of the boxplot."""
    found: dict[int, list[str]] = defaultdict(list)
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        for c in range(points.shape[1]):
            q1, q3 = np.percentile(points[members, c], [25, 75])
            low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
            for i in members[(points[members, c] < low) | (points[members, c] > high)]:
                found[int(i)].append(f"PC{c + 1}")
    return dict(sorted(found.items()))


def near_duplicates(t: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose thumbnails correlate above `threshold`, in row blocks (memory)."""
    pairs = []
    for start in range(0, len(t), 512):
        corr = t[start : start + 512] @ t.T / t.shape[1]
        for a, b in zip(*np.nonzero(corr > threshold), strict=True):
            i = start + int(a)
            if i < int(b):
                pairs.append((i, int(b), float(corr[a, b])))
    return pairs


def eda(data_dir: Path, out: Path, seed: int = 1337) -> dict[str, Any]:
    samples, record = data.find_samples(data_dir, seed)
    manifest = data.read_manifest(data_dir)
    from scanner.preprocess import PreprocessSpec

    decoded = data.decode_all(samples, PreprocessSpec())
    report_failures(decoded.failed)
    out.mkdir(parents=True, exist_ok=True)
    s, y = decoded.samples, decoded.labels()
    names = [data.LABELS[k] for k in y]
    summary: dict[str, Any] = {"data": str(data_dir), "layout": record, "images": len(s)}
    summary["unreadable"] = [{"path": p, "error": e} for p, e in decoded.failed]

    balance: dict[str, dict[str, int]] = defaultdict(dict)
    tally = Counter((x.split, c) for x, c in zip(s, names, strict=True))
    order = {name: i for i, name in enumerate((*data.SPLITS, "all"))}
    for (split, name), n in sorted(tally.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        balance[split][name] = n
    summary["balance"] = dict(balance)
    plots.bars(dict(balance), out / "balance.png", "images per split and class", "split")

    sizes = {
        c: [max(p.shape[:2]) for p, n in zip(decoded.pixels, names, strict=True) if n == c]
        for c in data.LABELS
    }
    size_counts = categories(sizes, SIZE_EDGES)
    plots.bars(size_counts, out / "sizes.png", "image size per class", "longest side (px)")
    formats = {
        c: dict(Counter(f for f, n in zip(decoded.formats, names, strict=True) if n == c))
        for c in data.LABELS
    }
    per_format = {f: {c: formats[c].get(f, 0) for c in data.LABELS} for f in sorted(
        {f for counts in formats.values() for f in counts}
    )}  # fmt: skip
    plots.bars(per_format, out / "formats.png", "formats per class", "format")
    qualities = [jpeg_quality(x.path) for x in s]
    qual = {
        c: [q for q, n in zip(qualities, names, strict=True) if n == c and q] for c in data.LABELS
    }
    plots.bars(
        categories(qual, QUALITY_EDGES), out / "jpeg_quality.png",
        "estimated JPEG quality per class", "quality",
    )  # fmt: skip
    summary["sizes"] = {
        c: dict(
            Counter(
                f"{p.shape[1]}x{p.shape[0]}"
                for p, n in zip(decoded.pixels, names, strict=True)
                if n == c
            ).most_common(10)
        )
        for c in data.LABELS
    }
    summary["formats"] = formats
    summary["jpeg_quality"] = {c: dict(Counter(v).most_common(10)) for c, v in qual.items()}
    summary["sample_grids"] = sample_grids(decoded, manifest, out, seed)

    t = thumbnails(decoded.pixels)
    points, explained = pca(t, min(COMPONENTS, len(t) - 1, t.shape[1]))
    summary["pca_explained_variance"] = [round(float(v), 4) for v in explained]
    plots.pca_scatter(points, y, explained, out / "pca.png")
    plots.pca_boxplot(points, y, explained, out / "pca_boxplot.png")
    summary["pca_outliers"] = [
        {"path": s[i].rel, "components": comps} for i, comps in outliers(points, y).items()
    ]

    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(decoded.sha256):
        by_hash[h].append(i)
    exact = [[s[i].rel for i in g] for g in by_hash.values() if len(g) > 1]
    cross = [g for g in by_hash.values() if len({s[i].split for i in g}) > 1]
    near = near_duplicates(t, NEAR_DUPLICATE)
    near_cross = [(i, j, c) for i, j, c in near if s[i].split != s[j].split]
    summary["duplicates"] = {
        "exact_groups": len(exact),
        "exact_cross_split_groups": len(cross),
        "exact_examples": exact[:20],
        "near_threshold": NEAR_DUPLICATE,
        "near_pairs": len(near),
        "near_cross_split_pairs": len(near_cross),
        "near_cross_split_examples": [
            {"a": s[i].rel, "b": s[j].rel, "correlation": round(c, 4)}
            for i, j, c in near_cross[:50]
        ],
    }
    (out / "eda.json").write_text(json.dumps(summary, indent=2))
    (out / "eda.md").write_text(markdown(summary))
    print(markdown(summary))
    return summary


def sample_grids(
    decoded: data.Decoded, manifest: dict[str, dict[str, str]], out: Path, seed: int
) -> list[str]:
    """samples_<group>.png for each sample_groups group, captioned with source and size;
    returns the file names."""
    rng = np.random.default_rng(seed)
    written = []
    for name, members in sample_groups(decoded.samples, manifest).items():
        picks = sorted(rng.permutation(members)[:GRID_SIZE])
        captions = [
            f"{data.source_of(decoded.samples[i], manifest)}\n"
            f"{decoded.pixels[i].shape[1]}x{decoded.pixels[i].shape[0]}"
            for i in picks
        ]
        title = f"{name} samples: {len(picks)} of {len(members)} (source, size)"
        path = out / f"samples_{name}.png"
        plots.grid([decoded.pixels[i] for i in picks], captions, path, title)
        written.append(path.name)
    return written


def markdown(summary: dict[str, Any]) -> str:
    d = summary["duplicates"]
    lines = [
        f"# EDA of {summary['data']}",
        "",
        f"{summary['images']} readable images, {len(summary['unreadable'])} unreadable.",
        "",
        "| split | real | ai |",
        "|---|---|---|",
        *(
            f"| {k} | {v.get('real', 0)} | {v.get('ai', 0)} |"
            for k, v in summary["balance"].items()
        ),
        "",
        f"- formats: {summary['formats']}",
        f"- commonest sizes: {summary['sizes']}",
        f"- estimated JPEG quality: {summary['jpeg_quality']}",
        f"- PCA outliers (the boxplot's circles: beyond 1.5 IQR of their class on one of the "
        f"first components): {len(summary['pca_outliers'])}, listed by path in eda.json",
        f"- exact duplicates: {d['exact_groups']} groups, {d['exact_cross_split_groups']} across "
        "splits (leakage)",
        f"- near duplicates (thumbnail correlation > {d['near_threshold']}): {d['near_pairs']} "
        f"pairs, {d['near_cross_split_pairs']} across splits",
        "",
        f"- PCA: the first components explain {summary['pca_explained_variance']} of the "
        "thumbnails' variance",
        "",
        "Figures: balance.png, sizes.png, formats.png, jpeg_quality.png, "
        + ", ".join(summary["sample_grids"])
        + ", pca.png, pca_boxplot.png.",
    ]
    return "\n".join(lines) + "\n"
