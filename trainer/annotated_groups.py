"""The annotated groups of a dataset's real photos: the `age`, `gender` and `race` columns of
MANIFEST.csv (faces3's UTKFace rows), ages grouped as the issue asks. One place for the bias
audit (`facescan-train audit`) and the clip model's card (trainer/probe_eval.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from trainer import data

COLUMNS = ("age", "gender", "race")
AGE_GROUPS = ((0, 15, "under 15"), (15, 61, "15-60"), (61, 200, "over 60"))  # [low, high) years
AGE_ORDER = [name for _, _, name in AGE_GROUPS]
SOURCE = (
    "Annotated groups (age, gender, race) are the UTKFace dataset's own labels of its photos "
    "(faces3's utk_ rows): assigned by annotators, not self-reported, and the race codes are "
    "coarse (white, black, asian, indian, other); images without them are left out."
)
Manifest = dict[str, dict[str, str]]


def age_group(age: str) -> str | None:
    """'7' -> 'under 15', '15' and '60' -> '15-60', '61' -> 'over 60'; blank -> None."""
    if not age.strip():
        return None
    years = int(float(age))
    return next(name for low, high, name in AGE_GROUPS if low <= years < high)


def group_of(row: dict[str, str], column: str) -> str | None:
    """One image's group in `column` (its age group for `age`), None when blank or absent."""
    value = (row.get(column) or "").strip()
    if not value:
        return None
    return age_group(value) if column == "age" else value


def is_annotated(row: dict[str, str]) -> bool:
    return any(group_of(row, column) for column in COLUMNS)


def annotated_groups(
    samples: Sequence[data.Sample], manifest: Manifest
) -> dict[str, list[str | None]]:
    """Column -> each sample's group; {} when none of the samples carries an annotation (faces,
    faces2, or a split of faces3 without UTKFace photos), so callers add nothing for them."""
    rows = [manifest.get(s.rel, {}) for s in samples]
    if not any(is_annotated(row) for row in rows):
        return {}
    return {column: [group_of(row, column) for row in rows] for column in COLUMNS}
