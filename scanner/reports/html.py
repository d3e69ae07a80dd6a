"""HTML report (`--out report.html`): one self-contained file a moderator opens offline.

A summary, a score histogram (counts on the bars, the threshold labelled), and one compact row
per image: thumbnail with the face boxes drawn on it, score, label, the path (a link to the file),
each face's score and crop, and a details cell (evidence, provenance, baseline, error...) that
shows only what is there (the pictures: `scanner.reports.pictures`).
Filters, sorting, keyboard navigation and the enlarged view are a few lines of vanilla
JavaScript (the page is `html_report.html`, package data beside this file). Nothing is
fetched: thumbnails are JPEG data URIs and a Content-Security-Policy forbids every request.

Hostile file names cannot run script: the rows travel as JSON inside a
`<script type="application/json">` block with `<`, `>` and `&` escaped, and the page's script puts
them into the page with `textContent`, never as markup; the few values written as HTML by Python
go through `html.escape`.

Memory is bounded whatever the scan's size: flagged and error rows are kept, real rows up to
`MAX_REAL_ROWS` (the rest are counted), at most `MAX_THUMBNAILS` flagged and
`MAX_REAL_THUMBNAILS` real images get a thumbnail, `MAX_FACE_CROPS` faces a crop, and the
histogram is 20 counters. Like the JSON report, the file appears atomically at the end.
"""

from __future__ import annotations

import html
import json
import os
import time
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import Any

from scanner.reports.base import THUMBNAILS, AtomicFile, ReportFormat, row
from scanner.reports.pictures import best_faces, pictures
from scanner.results import ScanResult

THUMBNAIL_PX = 160
THUMBNAIL_QUALITY = 80
# A thumbnail is 7.9 KB in the page on average (16.5 KB at most), measured on the 488 photos of
# the shared faces test split: the caps hold thumbnails to about 16 MB per kind.
MAX_THUMBNAILS = 2_000  # flagged images
MAX_REAL_THUMBNAILS = 2_000  # real images, with --thumbnails all
MAX_REAL_ROWS = 10_000
FACE_CROPS_PER_IMAGE = 8  # the best-scored faces of an image with a thumbnail (the page lists 8)
MAX_FACE_CROPS = 2_000  # in the whole page: about 11 MB (pictures.FACE_CROP_QUALITY)
BINS = 20


def thumbnail(path: str) -> str | None:
    """A JPEG data URI of the image, upright (EXIF orientation honoured), at most 160 px a side;
    None when the file cannot be read again (it may have changed since it was scored)."""
    return pictures(path, [], THUMBNAIL_PX, THUMBNAIL_QUALITY)[0]


def file_href(path: str, folder: str) -> str:
    """The link from a page in `folder` to the file at `path`: relative, each byte of the name
    that is not a letter, digit, "-._~" or "/" percent-encoded (so no name forms a scheme,
    query or fragment). Absolute (a file: URI) where no relative path exists (another drive)."""
    target = os.path.abspath(path)
    try:
        relative = os.path.relpath(target, folder).replace(os.sep, "/")
    except ValueError:
        return Path(target).as_uri()
    return urllib.parse.quote(os.fsencode(relative))


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class HtmlReport:
    def __init__(self, path: Path, model: dict[str, Any], thumbnails: str = "flagged") -> None:
        if thumbnails not in THUMBNAILS:
            raise ValueError(f"thumbnails must be one of {THUMBNAILS}, not {thumbnails!r}")
        self._out = AtomicFile(path)
        self._folder = os.path.dirname(os.path.abspath(path))
        self._positive = model["labels"][1]
        self._mode = thumbnails
        self._rows: list[dict[str, Any]] = []
        self._histogram = [0] * BINS
        self._kept_real = self._omitted_real = self._cached = 0
        self._thumbnails = {"flagged": 0, "real": 0}  # made
        self._over_cap = {"flagged": 0, "real": 0}  # wanted one, past the cap
        self._crops = self._crops_over_cap = 0

    def write(self, result: ScanResult) -> None:
        values = row(result)
        values["kind"] = kind = self._kind(result)
        self._cached += bool(result.cached)
        if result.score is not None:
            self._histogram[min(int(result.score * BINS), BINS - 1)] += 1
        if kind == "real":
            if self._kept_real >= MAX_REAL_ROWS:
                self._omitted_real += 1
                return
            self._kept_real += 1
        values["href"] = file_href(result.path, self._folder)
        if self._grant_thumbnail(kind):
            self._add_pictures(values, result)
        self._rows.append(values)

    def _add_pictures(self, values: dict[str, Any], result: ScanResult) -> None:
        """The thumbnail, and `crops` beside `faces`: a data URI or None for each face (the
        best-scored FACE_CROPS_PER_IMAGE get one, while under MAX_FACE_CROPS)."""
        faces = list(result.faces or ())
        wanted = best_faces(faces)[:FACE_CROPS_PER_IMAGE]
        chosen = wanted[: max(0, MAX_FACE_CROPS - self._crops)]
        self._crops_over_cap += len(wanted) - len(chosen)
        chosen_faces = [faces[i] for i in chosen]
        uri, crops = pictures(
            result.path, chosen_faces, THUMBNAIL_PX, THUMBNAIL_QUALITY, result.sha256
        )
        values["thumbnail"] = uri
        if faces:
            values["crops"] = [None] * len(faces)
            for i, crop in zip(chosen, crops, strict=True):
                values["crops"][i] = crop
            self._crops += sum(crop is not None for crop in crops)

    def _kind(self, result: ScanResult) -> str:
        if result.status == "error":
            return "error"
        return "flagged" if result.label == self._positive else "real"

    def _grant_thumbnail(self, kind: str) -> bool:
        """Whether this row gets a thumbnail: its kind is in --thumbnails and under its cap."""
        if kind == "error" or self._mode == "none" or (kind == "real" and self._mode != "all"):
            return False
        cap = MAX_THUMBNAILS if kind == "flagged" else MAX_REAL_THUMBNAILS
        if self._thumbnails[kind] >= cap:
            self._over_cap[kind] += 1
            return False
        self._thumbnails[kind] += 1
        return True

    def _thumbnail_note(self) -> str:
        """What the summary says about thumbnails: which, how many, how many the caps left out."""
        if self._mode == "none":
            return "none (--thumbnails none)"
        made = ", ".join(f"{n} {kind}" for kind, n in self._thumbnails.items())
        over = ", ".join(f"{n} {kind}" for kind, n in self._over_cap.items() if n)
        return f"{made} (--thumbnails {self._mode})" + (f"; over the cap: {over}" if over else "")

    def _crop_note(self) -> str:
        over = f"; {self._crops_over_cap} over the cap" if self._crops_over_cap else ""
        return f"{self._crops}{over}"

    def close(self, summary: dict[str, Any]) -> None:
        notes = [("from cache", self._cached), ("thumbnails", self._thumbnail_note())]
        if self._crops or self._crops_over_cap:
            notes.append(("face crops", self._crop_note()))
        if self._omitted_real:
            notes.append(("not listed", f"{self._omitted_real} real rows (see a CSV/JSONL report)"))
        data = {
            "rows": self._rows,
            "omitted_real": self._omitted_real,
            "positive": self._positive,
            "thumbnails": self._mode,  # the page says how to get the thumbnails a view lacks
        }
        page = render(data, self._histogram, summary, notes)
        self._out.write(page)
        self._out.commit()


def render(
    data: dict[str, Any],
    histogram: list[int],
    summary: dict[str, Any],
    notes: list[tuple[str, object]],
) -> str:
    """The whole page. Only numbers and escaped text are formatted into the markup; `data` (the
    rows) travels as escaped JSON. `notes` are the report's own lines for the summary table."""
    page = resources.files(__package__).joinpath("html_report.html").read_text("utf-8")
    parts = {
        "SUMMARY": _summary_table(summary, notes),
        "HISTOGRAM": _histogram_svg(histogram, summary["threshold"]),
        "DATA": script_json(data),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def _summary_table(summary: dict[str, Any], notes: list[tuple[str, object]]) -> str:
    state = "complete" if summary.get("complete") else f"{summary['state']} (partial report)"
    items = [
        ("files", summary["files"]),
        ("flagged", summary["flagged"]),
        ("real", summary["real"]),
        ("errors", summary["errors"]),
        ("model", summary["model"]),
        ("threshold", _threshold_text(summary["threshold"])),
        ("provider", summary["provider"]),
        ("time", f"{summary['seconds']:.1f} s"),
        ("written", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("scan", state),
        *notes,
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items
    )
    return f'<table class="summary">{cells}</table>'


def _threshold_text(threshold: float | None) -> str:
    """None: the scan stopped before its model loaded (scanner.command.leave_empty_report)."""
    return "unknown: the model did not load" if threshold is None else f"{float(threshold):.3f}"


# The histogram's drawing area inside its viewBox: room above for the threshold's label and the
# counts, on the left for the y-axis name, below for the ticks and the x-axis name.
_LEFT, _TOP, _WIDTH, _HEIGHT = 30, 30, 560, 120


def _histogram_svg(histogram: list[int], threshold: float | None) -> str:
    """Bars of the score distribution (all scored files), each with its count written above it
    (a bar of one file is too short to see), the threshold as a labelled line, named axes."""
    bar, peak = _WIDTH / len(histogram), max(histogram) or 1
    parts = []
    for i, count in enumerate(histogram):
        tall = max(count / peak * _HEIGHT, 1.5) if count else 0.0
        x, y = _LEFT + i * bar, _TOP + _HEIGHT - tall
        span = f"{i / len(histogram):.2f}-{(i + 1) / len(histogram):.2f}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{tall:.1f}">'
            f"<title>scores {span}: {count} files</title></rect>"
        )
        if count:
            parts.append(
                f'<text class="count" x="{x + bar / 2:.1f}" y="{y - 3:.1f}" '
                f'text-anchor="middle">{_short_count(count)}</text>'
            )
    base = _TOP + _HEIGHT
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<text x="{_LEFT + tick * _WIDTH:.1f}" y="{base + 13}" text-anchor="middle">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text class="axis" x="{_LEFT + _WIDTH / 2}" y="{base + 28}" text-anchor="middle">'
        f"score</text>"
        f'<text class="axis" x="10" y="{_TOP + _HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 10 {_TOP + _HEIGHT / 2})">files</text>'
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT + _WIDTH}" y1="{base}" y2="{base}"/>'
    )
    if threshold is not None:
        x = _LEFT + threshold * _WIDTH
        anchor, shift = ("end", -4) if threshold > 0.5 else ("start", 4)
        parts.append(
            f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="2" y2="{base}"/>'
            f'<text class="threshold" x="{x + shift:.1f}" y="10" text-anchor="{anchor}">'
            f"threshold {threshold:.3f}</text>"
        )
    return (
        f'<svg class="histogram" viewBox="0 0 {_LEFT + _WIDTH + 10} {base + 34}" role="img" '
        f'aria-label="score histogram">{"".join(parts)}</svg>'
    )


def _short_count(count: int) -> str:
    """A count that fits on a bar: 9999, 12k, 1.2M (the bar's tooltip has it whole)."""
    if count < 10_000:
        return str(count)
    return f"{count / 1000:.0f}k" if count < 999_500 else f"{count / 1_000_000:.1f}M"


FORMATS = [ReportFormat("html", (".html", ".htm"), "one offline page for a moderator", HtmlReport)]
