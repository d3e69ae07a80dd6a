"""Rates per group with 95 % Wilson intervals, and the largest gap between groups.

A group's rate is the share of its images the model flagged: for real images the false-positive
rate, for AI images the recall. Gaps compare error rates (flagged real images, missed AI images),
so "worse" always means "the model fails these people more often".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
MIN_GROUP = 10  # smaller groups are listed but not ranked: one image moves their rate by >= 10 %
RATIO_RULE = 1.5  # the rule: error rate > 1.5 x the best group's, intervals apart


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n (Wilson 1927; Newcombe 1998, method 3).
    Unlike the normal approximation it stays within 0..1 and is sensible at k = 0 or k = n."""
    if n == 0:
        return 0.0, 1.0  # no data: every proportion is possible
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At k = 0 or k = n one end is exactly 0 or 1; rounding must not leave 1e-17 there.
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


@dataclass(frozen=True)
class Rate:
    """k of n images flagged, with the 95 % Wilson interval of k / n."""

    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def complement(self) -> Rate:
        """The other outcome's count (missed instead of caught); Wilson intervals are symmetric
        under this, so its interval is 1 minus this one's."""
        return Rate(self.n - self.k, self.n)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {"n": self.n, "flagged": self.k, "rate": self.rate, "ci95": [low, high]}


def rates_by_group(flagged: np.ndarray, groups: Sequence[str | None]) -> dict[str, Rate]:
    """Flagged count and size of each group, sorted by name; images without a group (None)
    are left out of this breakdown."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for hit, group in zip(flagged, groups, strict=True):
        if group is not None:
            counts[group][0] += int(hit)
            counts[group][1] += 1
    return {g: Rate(k, n) for g, (k, n) in sorted(counts.items())}


def largest_gap(
    errors: dict[str, Rate], min_group: int = MIN_GROUP, ratio_rule: float = RATIO_RULE
) -> dict[str, Any] | None:
    """The worst group against the best by error rate, among groups of at least `min_group`
    images (None when fewer than two qualify). `exceeds_rule` is the issue's test for a gap
    worth acting on: worst > ratio_rule x best and the two 95 % intervals do not overlap."""
    ranked = sorted((r.rate, g) for g, r in errors.items() if r.n >= min_group)
    if len(ranked) < 2:
        return None
    (_, best), (_, worst) = ranked[0], ranked[-1]
    b, w = errors[best], errors[worst]
    apart = w.interval[0] > b.interval[1]
    ratio = w.rate / b.rate if b.rate > 0 else None  # None: the best group has no errors
    bigger = w.rate > ratio_rule * b.rate
    return {
        "best": best,
        "worst": worst,
        "best_error_rate": b.rate,
        "worst_error_rate": w.rate,
        "difference": w.rate - b.rate,
        "ratio": ratio,
        "intervals_overlap": not apart,
        "exceeds_rule": bool(bigger and apart),
        "groups_ranked": len(ranked),
    }
