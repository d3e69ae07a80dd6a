"""`facescan-train audit MODEL DATA`: does the detector fail some people more than others?

Real photos: the false-positive rate (real flagged as ai) per skin-tone bin (ITA, see
trainer/skin_tone.py) and, where MANIFEST.csv annotates them (faces3's UTKFace photos), per
annotated age group, gender and race (trainer/annotated_groups.py). AI faces: recall per age,
gender and ethnicity word of their prompts (trainer/prompt_groups.py). Both classes also per
image size, JPEG quality and source, so that a capture-condition gap is not read as a
demographic one. Every rate carries its count and 95 % Wilson interval, and each breakdown its
largest gap (trainer/fairness_stats.py). Images are scored exactly as `facescan-train evaluate`
scores them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from trainer import data, evaluate
from trainer.annotated_groups import COLUMNS, SOURCE, annotated_groups
from trainer.audit_report import write_markdown, write_plots
from trainer.eda import jpeg_quality
from trainer.fairness_stats import MIN_GROUP, RATIO_RULE, Rate, largest_gap, rates_by_group
from trainer.prompt_groups import prompt_groups, read_sdfd_prompts
from trainer.skin_tone import NO_SKIN, FaceBox, central_box, ita_bin, skin_ita

SKIN_TONE = "skin tone (ITA)"
ANNOTATED = "annotated"  # breakdown names: "annotated age", "annotated gender", "annotated race"
ATTRIBUTES = ("age", "gender", "ethnicity")
PROMPT_SOURCES = ("sdfd", "pollinations")
MAX_EXACT_GROUPS = 12  # more distinct sizes or qualities than this are grouped in bands
CAVEAT = (
    "Skin tone is the Individual Typology Angle (ITA) of the skin-coloured pixels in the face "
    "region: a lighting-sensitive proxy (exposure, white balance and make-up move it by tens of "
    "degrees), not a person's ethnicity or identity. Prompt groups are the words a generator was "
    "asked for, not what it drew."
)
Groups = dict[str, list[str | None]]  # breakdown name -> each image's group (None: not in it)
Parsed = tuple[str, dict[str, str]] | None  # (prompt source, attribute -> group) of one image
K = TypeVar("K")


@dataclass
class Images:
    """What the audit knows of each decoded image besides its score."""

    angles: list[float | None]  # ITA in degrees, None: no skin found
    parsed: list[Parsed]
    groups: Groups
    annotated: bool  # the manifest gives some of these images an age, gender or race
    ages: list[str]  # the annotated age in years ("" where none), for audit_images.csv


def audit(
    model_path: Path,
    data_dir: Path,
    split: str,
    out: Path | None,
    prompts: Path | None = None,
    exclude_kind: tuple[str, ...] | None = None,
    face_box: FaceBox = central_box,
    min_group: int = MIN_GROUP,
    force: bool = False,
) -> dict[str, Any]:
    """Score DATA's `split`, break error rates down by group, write audit.json, audit.md,
    audit_images.csv and the bar charts to `out` (evaluate.report_dir: RUN/audit-SPLIT or
    runs/audit-STEM-SPLIT by default)."""
    out = evaluate.report_dir(model_path, "audit", split, out, force)
    scorer = evaluate.scorer_for(model_path)
    sdfd_prompts = read_sdfd_prompts(prompts) if prompts else None
    loaded = evaluate.load_split(data_dir, split, scorer, exclude_kind)
    images = describe(loaded, face_box, sdfd_prompts)
    y, scores = loaded.decoded.labels(), scorer.score(loaded.decoded)
    flagged = scores >= scorer.threshold
    result: dict[str, Any] = {
        "model": str(model_path),
        "data": str(data_dir),
        "split": split,
        "threshold": scorer.threshold,
        "unreadable": len(loaded.decoded.failed),
        "dropped_by_kind": loaded.dropped,
        "face_region": face_region(face_box, loaded.decoded),
        "caveat": CAVEAT,
        "min_group": min_group,
        "gap_rule": f"error rate > {RATIO_RULE} x the best group's and 95 % intervals apart",
        "overall": {
            "false_positive_rate": Rate(int(flagged[y == 0].sum()), int((y == 0).sum())).to_dict(),
            "recall": Rate(int(flagged[y == 1].sum()), int((y == 1).sum())).to_dict(),
        },
        "prompt_coverage": prompt_coverage(images.parsed, sdfd_prompts is not None),
        "ita_by_prompt_ethnicity": ita_by_group(
            images, {f"{s} ethnicity": f"{s} " for s in PROMPT_SOURCES}
        ),
    }
    if images.annotated:
        result["annotated_source"] = SOURCE
        result["ita_by_annotated_race"] = ita_by_group(images, {f"{ANNOTATED} race": ""})
    groups = {**images.groups, **within_source(images.groups, SKIN_TONE)}
    result.update(breakdowns(flagged, y, groups, min_group))
    result["largest_gaps"] = headline_gaps(result)
    write_all(out, result, loaded.decoded.samples, scores, images)
    return result


def face_region(face_box: FaceBox, decoded: data.Decoded) -> str:
    """Where skin is measured, in words. With a face-crop model the pixels are already the face
    the scanner's detector found (its crop), so the box is taken inside that face."""
    if decoded.units is not None and face_box is central_box:
        return "the middle 40 % x 40 % of the face crop cut around the detector's box"
    return (face_box.__doc__ or face_box.__name__).strip().splitlines()[0].rstrip(".")


def write_all(
    out: Path, result: dict, samples: list[data.Sample], scores: np.ndarray, images: Images
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(result, indent=2))
    write_markdown(result, out / "audit.md")
    write_images_csv(out / "audit_images.csv", samples, scores, result["threshold"], images)
    names = ["audit.json", "audit.md", "audit_images.csv"] + [
        p.name for p in write_plots(result, out)
    ]
    print((out / "audit.md").read_text())
    print(f"audit written to {out} ({', '.join(names)})")


def describe(
    loaded: evaluate.Split, face_box: FaceBox, sdfd_prompts: dict[tuple[str, str], str] | None
) -> Images:
    """Every breakdown's group of every decoded image."""
    decoded = loaded.decoded
    angles = [skin_ita(p, face_box) for p in decoded.pixels]
    parsed = [
        prompt_groups(Path(s.path).stem, sdfd_prompts) if s.label == 1 else None
        for s in decoded.samples
    ]
    annotated = annotated_groups(decoded.samples, loaded.manifest)
    groups: Groups = {
        SKIN_TONE: [ita_bin(a) for a in angles],
        **{f"{ANNOTATED} {column}": values for column, values in annotated.items()},
        "image size": size_groups([s.path for s in decoded.samples]),
        "JPEG quality": quality_groups([s.path for s in decoded.samples], decoded.formats),
        "source": [data.source_of(s, loaded.manifest) for s in decoded.samples],
    }
    for source in PROMPT_SOURCES:
        for attribute in ATTRIBUTES:
            groups[f"{source} {attribute}"] = [
                p[1].get(attribute) if p and p[0] == source else None for p in parsed
            ]
    ages = [loaded.manifest.get(s.rel, {}).get("age", "").strip() for s in decoded.samples]
    return Images(angles, parsed, groups, bool(annotated), ages)


def write_images_csv(
    path: Path, samples: list[data.Sample], scores: np.ndarray, threshold: float, images: Images
) -> None:
    """One row per image with its score, ITA, annotated age in years (where annotated) and every
    group: for cross-tabulating by hand."""
    age_years = ["age (years)"] if images.annotated else []
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "score", "flagged", "ita", *age_years, *images.groups])
        for i, s in enumerate(samples):
            angle = images.angles[i]
            row = [s.rel, data.LABELS[s.label], f"{scores[i]:.6f}", int(scores[i] >= threshold)]
            row.append("" if angle is None else f"{angle:.2f}")
            row += [images.ages[i]] if images.annotated else []
            writer.writerow(row + [images.groups[name][i] or "" for name in images.groups])


def few_or_banded(
    keys: Sequence[K | None], exact: Callable[[K], str], band: Callable[[K], str]
) -> list[str | None]:
    """Each key named exactly when there are few distinct ones, else by its band."""
    name = exact if len({k for k in keys if k is not None}) <= MAX_EXACT_GROUPS else band
    return [None if k is None else name(k) for k in keys]


def size_groups(paths: list[str]) -> list[str | None]:
    """Stored width x height; by shorter side when there are many sizes."""

    def band(size: tuple[int, int]) -> str:
        side = min(size)
        edges = [e for e in (128, 256, 512, 1024, 2048) if side >= e]
        return f"short side >= {edges[-1]} px" if edges else "short side < 128 px"

    sizes = []
    for path in paths:
        with Image.open(path) as image:  # the header only
            sizes.append(image.size)
    return few_or_banded(sizes, lambda s: f"{s[0]}x{s[1]}", band)


def quality_groups(paths: list[str], formats: list[str]) -> list[str | None]:
    """Estimated JPEG quality (trainer.eda); other formats by name."""

    def band(q: int) -> str:
        return next(f"q >= {edge}" for edge in (90, 75, 50, 0) if q >= edge)

    qualities = [
        jpeg_quality(p) if f == "JPEG" else None for p, f in zip(paths, formats, strict=True)
    ]
    named = few_or_banded(qualities, lambda q: f"q{q}", band)
    return [
        n or ("JPEG, quality unknown" if f == "JPEG" else f"{f} (not JPEG)")
        for n, f in zip(named, formats, strict=True)
    ]


def within_source(groups: Groups, name: str) -> Groups:
    """Breakdown `name` again inside each source, when there are several: a gap that vanishes
    within sources is a gap between sources (generators, photo collections), not people."""
    sources = sorted({s for s in groups["source"] if s is not None})
    if len(sources) < 2:
        return {}
    return {
        f"{name}, source {source}": [
            g if s == source else None for g, s in zip(groups[name], groups["source"], strict=True)
        ]
        for source in sources
    }


def breakdowns(flagged: np.ndarray, y: np.ndarray, groups: Groups, min_group: int) -> dict:
    """Per class, the rate of every group of every breakdown, and each breakdown's largest gap
    in error rate (real: flagged; ai: missed). "no skin found" is not a skin tone to rank."""
    out: dict[str, Any] = {}
    for label, name in ((0, "real"), (1, "ai")):
        members = np.flatnonzero(y == label)
        tables, gaps = {}, {}
        for breakdown, values in groups.items():
            rates = rates_by_group(flagged[members], [values[i] for i in members])
            if not rates:
                continue
            tables[breakdown] = {g: r.to_dict() for g, r in rates.items()}
            errors = {g: r if label == 0 else r.complement() for g, r in rates.items()}
            if breakdown.startswith(SKIN_TONE):
                errors.pop(NO_SKIN, None)  # not a skin tone: nothing to rank
            gaps[breakdown] = largest_gap(errors, min_group)
        out[name] = {"rate": "false-positive rate" if label == 0 else "recall"}
        out[name].update({"groups": tables, "gaps": gaps})
    return out


def headline_gaps(result: dict[str, Any]) -> dict[str, Any]:
    """The two gaps the model card reports, and every breakdown whose gap meets the rule."""
    prompt_gaps = [
        (name, gap)
        for name, gap in result["ai"]["gaps"].items()
        if gap and name.split(" ")[0] in PROMPT_SOURCES
    ]
    within = [
        (name, gap)
        for name, gap in result["real"]["gaps"].items()
        if gap and name.startswith(f"{SKIN_TONE}, source ")
    ]
    annotated = {
        column: result["real"]["gaps"][f"{ANNOTATED} {column}"]
        for column in COLUMNS
        if f"{ANNOTATED} {column}" in result["real"]["gaps"]
    }
    return {
        "fpr_between_skin_tones": result["real"]["gaps"].get(SKIN_TONE),
        "fpr_between_skin_tones_within_a_source": widest(within),
        **({"fpr_between_annotated_groups": annotated} if annotated else {}),
        "recall_between_prompt_groups": widest(prompt_gaps),
        "exceeding_rule": [
            f"{label}: {name}"
            for label in ("real", "ai")
            for name, gap in result[label]["gaps"].items()
            if gap and gap["exceeds_rule"]
        ],
    }


def widest(gaps: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The gap with the largest difference in error rate, with its breakdown's name."""
    name, gap = max(gaps, key=lambda item: item[1]["difference"], default=(None, None))
    return {"breakdown": name, **gap} if gap else None


def ita_by_group(images: Images, breakdowns: dict[str, str]) -> dict[str, Any]:
    """Median ITA and skin-tone bins per group of each breakdown (keyed by its prefix and the
    group): a check of the proxy on faces whose ethnicity is stated (AI faces: the prompt's,
    which the generator may not have followed; real photos: the annotated race)."""
    out: dict[str, Any] = {}
    for name, prefix in breakdowns.items():
        members: dict[str, list[int]] = {}
        for i, group in enumerate(images.groups[name]):
            if group is not None:
                members.setdefault(group, []).append(i)
        for group, idx in sorted(members.items()):
            angles = [a for a in (images.angles[i] for i in idx) if a is not None]
            tones = [images.groups[SKIN_TONE][i] for i in idx]
            out[f"{prefix}{group}"] = {
                "n": len(idx),
                "median_ita": float(np.median(angles)) if angles else None,
                "bins": {b: tones.count(b) for b in dict.fromkeys(tones)},
            }
    return out


def prompt_coverage(parsed: list[Parsed], have_sdfd_list: bool) -> dict[str, Any]:
    """How many AI images each prompt source holds and how many of them state each attribute."""
    out: dict[str, Any] = {}
    for source in PROMPT_SOURCES:
        found = [p[1] for p in parsed if p and p[0] == source]
        out[source] = {"images": len(found)}
        out[source].update({a: sum(a in f for f in found) for a in ATTRIBUTES})
    if not have_sdfd_list and out["sdfd"]["images"]:
        out["note"] = "no --prompts list given: the sdfd_ images have no groups"
    return out
