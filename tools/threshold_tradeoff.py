"""What each threshold costs, source by source: the model card's threshold table.

    python tools/threshold_tradeoff.py --model accurate --split test  # [--data DIR]

Scans one split with the scanner (photoshopped faces left out, as in training) and prints, for the
model's own threshold and a range around it, the share each source gets right: real photos kept
as real, AI faces flagged. One threshold serves every source, so raising it to spare one kind of
real photo (FFHQ's studio-like portraits) costs recall on the generator that looks most like it
(StyleGAN3); the table shows by how much.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scanner import Scanner  # noqa: E402
from trainer import data  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def scores_by_source(model: str, root: Path, split: str) -> tuple[dict, float]:
    """{source: (label, scores)} for one split, and the model's threshold."""
    samples, _ = data.find_samples(root)
    manifest = data.read_manifest(root)
    samples, _ = data.exclude_kinds(samples, manifest, ("manipulated",))
    samples = [s for s in samples if s.split == split]
    with Scanner(model, provider="cpu") as scanner:
        scores = {r.path: r.score for r in scanner.scan([s.path for s in samples])}
        threshold = scanner.threshold
    groups: dict[str, tuple[int, list[float]]] = {}
    for s in samples:
        label, values = groups.setdefault(data.source_of(s, manifest), (s.label, []))
        values.append(scores[s.path])
    return {k: (label, np.array(v)) for k, (label, v) in sorted(groups.items())}, threshold


def table(groups: dict, thresholds: list[float], own: float) -> str:
    names = list(groups)
    head = "| threshold | " + " | ".join(f"{n} ({data.LABELS[groups[n][0]]})" for n in names)
    lines = [head + " | false positives | AI caught |", "|---" * (len(names) + 3) + "|"]
    reals = np.concatenate([v for label, v in groups.values() if label == 0])
    fakes = np.concatenate([v for label, v in groups.values() if label == 1])
    for t in thresholds:
        right = [np.mean(v >= t) if label else np.mean(v < t) for label, v in groups.values()]
        mark = f"**{t:.4f}** (the model's)" if t == own else f"{t:.2f}"
        cells = " | ".join(f"{r:.3f}" for r in right)
        rates = f"{np.mean(reals >= t):.3f} | {np.mean(fakes >= t):.3f}"
        lines.append(f"| {mark} | {cells} | {rates} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="accurate", help="a shipped model's name or a file")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/faces2")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    groups, own = scores_by_source(args.model, args.data, args.split)
    counts = ", ".join(f"{name} {len(v)}" for name, (_, v) in groups.items())
    print(f"{args.data.name} {args.split} split ({counts}): share right per source\n")
    print(table(groups, sorted({*THRESHOLDS, own}), own))


if __name__ == "__main__":
    main()
