"""HTML report (`--out report.html`): one self-contained file a moderator opens offline.

Summary, thumbnails of the flagged images sorted by score, a score histogram, the error table,
and filters/sorting in a few lines of vanilla JavaScript (the page is `html_report.html`, package
data beside this file). Nothing is fetched: thumbnails are JPEG data URIs and a
Content-Security-Policy forbids every network request.

Hostile file names cannot run script: the rows travel as JSON inside a
`<script type="application/json">` block with `<`, `>` and `&` escaped, and the page's script puts
them into the table with `textContent`, never as markup; the few values written as HTML by Python
go through `html.escape`.

Memory is bounded whatever the scan's size: flagged and error rows are kept, real rows up to
`MAX_REAL_ROWS` (the rest are counted), the first `MAX_THUMBNAILS` flagged images get a thumbnail,
and the histogram is 20 counters. Like the JSON report, the file appears atomically at the end.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from scanner.reports.base import AtomicFile, ReportFormat, cannot_write, row
from scanner.results import ScanResult

THUMBNAIL_PX = 160
THUMBNAIL_QUALITY = 80
MAX_THUMBNAILS = 2_000  # about 10 KB each: a report of at most ~20 MB of thumbnails
MAX_REAL_ROWS = 10_000
BINS = 20


def thumbnail(path: str) -> str | None:
    """A JPEG data URI of the image, upright (EXIF orientation honoured), at most 160 px a side;
    None when the file cannot be read again (it may have changed since it was scored)."""
    from scanner.decode import load  # Pillow: only when a thumbnail is made

    try:
        image = load(path, draft_size=THUMBNAIL_PX).image
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    except Exception:  # a thumbnail is a convenience: never let it stop the report
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class HtmlReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._out = AtomicFile(path)
        self._positive = model["labels"][1]
        self._rows: list[dict[str, Any]] = []
        self._histogram = [0] * BINS
        self._kept_real = self._omitted_real = self._thumbnails = self._cached = 0

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
        if kind == "flagged" and self._thumbnails < MAX_THUMBNAILS:
            values["thumbnail"] = thumbnail(result.path)
            self._thumbnails += 1
        self._rows.append(values)

    def _kind(self, result: ScanResult) -> str:
        if result.status == "error":
            return "error"
        return "flagged" if result.label == self._positive else "real"

    def close(self, summary: dict[str, Any]) -> None:
        page = render(self._rows, self._histogram, summary, self._cached, self._omitted_real)
        try:
            self._out.file.write(page)
        except OSError as e:
            raise cannot_write(self._out.target, e) from None
        self._out.commit()


def render(
    rows: list[dict[str, Any]],
    histogram: list[int],
    summary: dict[str, Any],
    cached: int,
    omitted_real: int,
) -> str:
    """The whole page. Only numbers and escaped text are formatted into the markup."""
    page = resources.files(__package__).joinpath("html_report.html").read_text("utf-8")
    parts = {
        "SUMMARY": _summary_table(summary, cached, omitted_real),
        "HISTOGRAM": _histogram_svg(histogram, float(summary["threshold"])),
        "DATA": script_json({"rows": rows, "omitted_real": omitted_real}),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def _summary_table(summary: dict[str, Any], cached: int, omitted_real: int) -> str:
    state = "complete" if summary.get("complete") else f"{summary['state']} (partial report)"
    items = [
        ("files", summary["files"]),
        ("flagged", summary["flagged"]),
        ("real", summary["real"]),
        ("errors", summary["errors"]),
        ("from cache", cached),
        ("model", summary["model"]),
        ("threshold", f"{float(summary['threshold']):.3f}"),
        ("provider", summary["provider"]),
        ("time", f"{summary['seconds']:.1f} s"),
        ("written", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("scan", state),
    ]
    if omitted_real:
        items.append(("not listed", f"{omitted_real} real rows (see a CSV/JSONL report)"))
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items
    )
    return f'<table class="summary">{cells}</table>'


def _histogram_svg(histogram: list[int], threshold: float) -> str:
    """Bars of the score distribution (all scored files), with the threshold as a line."""
    width, height, bar = 400, 120, 400 / len(histogram)
    top = max(histogram) or 1
    bars = "".join(
        f'<rect x="{i * bar + 1:.1f}" y="{height - count / top * height:.1f}" '
        f'width="{bar - 2:.1f}" height="{count / top * height:.1f}">'
        f"<title>{i / len(histogram):.2f}-{(i + 1) / len(histogram):.2f}: {count}</title></rect>"
        for i, count in enumerate(histogram)
    )
    x = threshold * width
    return (
        f'<svg class="histogram" viewBox="0 -4 {width} {height + 20}" role="img" '
        f'aria-label="score histogram">{bars}'
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" class="threshold"/>'
        f'<text x="0" y="{height + 14}">0</text>'
        f'<text x="{width / 2}" y="{height + 14}" text-anchor="middle">0.5</text>'
        f'<text x="{width}" y="{height + 14}" text-anchor="end">1</text></svg>'
    )


FORMATS = [ReportFormat("html", (".html", ".htm"), "one offline page for a moderator", HtmlReport)]
