"""The bias audit for people: audit.md (tables with counts, rates and intervals) and one bar
chart per class with 95 % intervals (fpr_by_group.png, recall_by_group.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trainer import plots
from trainer.annotated_groups import AGE_ORDER
from trainer.prompt_groups import POLL_AGES
from trainer.skin_tone import ITA_BINS, NO_SKIN

# Groups with a natural order are shown in it (light to dark, young to old), the rest by name.
NATURAL_ORDER = [name for name, _ in ITA_BINS] + [NO_SKIN, "baby", *POLL_AGES, "adult", *AGE_ORDER]
CLASSES = (("real", "false-positive rate", "FPR"), ("ai", "recall", "recall"))


def ordered(groups: dict[str, Any]) -> list[str]:
    rank = {name: i for i, name in enumerate(NATURAL_ORDER)}
    return sorted(groups, key=lambda g: (rank.get(g, len(rank)), g))


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def rate_cell(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{pct(entry['rate'])} [{pct(low)}, {pct(high)}]"


def gap_sentence(what: str, gap: dict[str, Any] | None, as_recall: bool) -> str:
    """One line on a gap; for recall the error rates are turned back into recall."""
    if gap is None:
        return f"- {what}: fewer than two groups large enough to compare."
    if "breakdown" in gap:
        what += f" ({gap['breakdown']})"
    shown = (lambda e: pct(1 - e)) if as_recall else pct
    ratio = "best group has none" if gap["ratio"] is None else f"{gap['ratio']:.2f}x"
    overlap = "intervals overlap" if gap["intervals_overlap"] else "intervals apart"
    verdict = "**meets the rule**" if gap["exceeds_rule"] else "does not meet the rule"
    error = "miss rate" if as_recall else "error rate"
    return (
        f"- {what}: worst '{gap['worst']}' {shown(gap['worst_error_rate'])} vs best "
        f"'{gap['best']}' {shown(gap['best_error_rate'])} ({error} ratio {ratio}, "
        f"{overlap}): {verdict}."
    )


def write_markdown(result: dict[str, Any], path: Path) -> Path:
    overall, gaps = result["overall"], result["largest_gaps"]
    lines = [
        f"# Bias audit: {result['model']} on {result['data']} ({result['split']})",
        "",
        f"> {result['caveat']}",
        *([">", f"> {result['annotated_source']}"] if "annotated_source" in result else []),
        "",
        f"Threshold {result['threshold']:.4f}. Real images {overall['false_positive_rate']['n']},"
        f" false-positive rate {rate_cell(overall['false_positive_rate'])}; AI images "
        f"{overall['recall']['n']}, recall {rate_cell(overall['recall'])} (95 % Wilson "
        f"intervals). Face region: {result['face_region']}. Groups under {result['min_group']} "
        f"images are listed but not ranked. A gap meets the rule when the {result['gap_rule']}.",
        "",
        "## Largest gaps",
        "",
        gap_sentence("FPR between skin tones", gaps["fpr_between_skin_tones"], False),
        gap_sentence(
            "FPR between skin tones within one source",
            gaps["fpr_between_skin_tones_within_a_source"],
            False,
        ),
        *(
            gap_sentence(f"FPR between annotated {column} groups", gap, False)
            for column, gap in gaps.get("fpr_between_annotated_groups", {}).items()
        ),
        gap_sentence("Recall between prompt groups", gaps["recall_between_prompt_groups"], True),
        f"- Breakdowns meeting the rule: {', '.join(gaps['exceeding_rule']) or 'none'}.",
    ]
    for label, rate, short in CLASSES:
        lines += ["", f"## {'Real photos' if label == 'real' else 'AI faces'}: {rate}"]
        for name, table in result[label]["groups"].items():
            lines += ["", f"### {name}", "", f"| group | n | flagged | {short} [95 % CI] |"]
            lines.append("|---|---|---|---|")
            for g in ordered(table):
                e = table[g]
                lines.append(f"| {g} | {e['n']} | {e['flagged']} | {rate_cell(e)} |")
            lines += ["", gap_sentence("Largest gap", result[label]["gaps"][name], label == "ai")]
    coverage = result["prompt_coverage"]
    lines += ["", "## Prompt words found", "", "| source | AI images | age | gender | ethnicity |"]
    lines.append("|---|---|---|---|---|")
    for source in ("sdfd", "pollinations"):
        c = coverage[source]
        lines.append(
            f"| {source} | {c['images']} | {c['age']} | {c['gender']} | {c['ethnicity']} |"
        )
    if "note" in coverage:
        lines += ["", coverage["note"]]
    prompted, annotated = result["ita_by_prompt_ethnicity"], result.get("ita_by_annotated_race")
    lines += ita_check_lines(prompted, "the prompted ethnicity (AI faces)", "prompt group")
    lines += ita_check_lines(annotated or {}, "the annotated race (real photos)", "annotated race")
    path.write_text("\n".join(lines) + "\n")
    return path


def ita_check_lines(check: dict[str, Any], against: str, group: str) -> list[str]:
    """Does the skin-tone proxy follow the ethnicity a face was prompted with, or the race it
    is annotated with?"""
    if not check:
        return []
    tones = [name for name, _ in ITA_BINS] + [NO_SKIN]
    lines = ["", f"## Skin-tone proxy against {against}", ""]
    lines += [f"| {group} | n | median ITA | " + " | ".join(tones) + " |"]
    lines.append("|---|---|---|" + "---|" * len(tones))
    for group, c in sorted(check.items(), key=lambda kv: -(kv[1]["median_ita"] or -999)):
        median = "n/a" if c["median_ita"] is None else f"{c['median_ita']:.1f}"
        counts = " | ".join(str(c["bins"].get(t, 0)) for t in tones)
        lines.append(f"| {group} | {c['n']} | {median} | {counts} |")
    return lines


def write_plots(result: dict[str, Any], out: Path) -> list[Path]:
    """One figure per class: a panel per breakdown, a bar per group with its 95 % interval."""
    written = []
    for label, rate, _ in CLASSES:
        tables = result[label]["groups"]
        if not tables:
            continue
        overall = result["overall"]["false_positive_rate" if label == "real" else "recall"]
        name = "fpr_by_group.png" if label == "real" else "recall_by_group.png"
        rate_panels(tables, overall["rate"], f"all {label} images ({rate})", rate, out / name)
        written.append(out / name)
    return written


def rate_panels(
    tables: dict[str, dict], overall: float, overall_label: str, rate: str, path: Path
) -> Figure:
    """A panel per breakdown, a bar per group (the natural order top-down) with its interval.
    Every panel has as many bar slots as the tallest (at least plots.MIN_SLOTS), so bars are equally
    thick everywhere and one group is one bar, not a panel filled by it. The overall rate's
    line is explained once, below the panels, where the legend covers no bar."""
    cols = 2 if len(tables) > 1 else 1
    rows = -(-len(tables) // cols)
    slots = max(plots.MIN_SLOTS, *(len(t) for t in tables.values()))
    fig = Figure(figsize=(6.5 * cols, rows * (0.9 + 0.32 * slots) + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(tables) :]:
        ax.axis("off")
    line = None
    for ax, (name, table) in zip(axes.flat, tables.items(), strict=False):
        groups = ordered(table)
        ys = slots - 1 - np.arange(len(groups))  # the first group in the top slot
        rates = np.array([table[g]["rate"] for g in groups])
        low = np.array([table[g]["ci95"][0] for g in groups])
        high = np.array([table[g]["ci95"][1] for g in groups])
        ax.barh(ys, rates, height=0.7, xerr=[rates - low, high - rates], capsize=3)
        ax.set_yticks(ys, [f"{g} (n={table[g]['n']})" for g in groups])
        ax.set_ylim(-0.5, slots - 0.5)
        line = ax.axvline(overall, color="k", linestyle="--", linewidth=1)
        ax.set(xlim=(0, 1), xlabel=f"{rate}, 95 % Wilson interval", title=name)
    fig.suptitle(f"{rate} per group, 95 % Wilson intervals")
    if line is not None:
        line.set_label(f"{overall_label}: {pct(overall)}")
        fig.legend(handles=[line], loc="lower center", fontsize=8)
    return plots._save(fig, path, legend_below=True)
