"""HTML report (`--out report.html`): one self-contained file a moderator opens offline.

Summary, thumbnails of the flagged images sorted by score, a score histogram, the error table,
and filters/sorting in a few lines of vanilla JavaScript. Nothing is fetched: thumbnails are JPEG
data URIs and a Content-Security-Policy forbids every network request.

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
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scanner.decode import load
from scanner.pipeline import ScanResult
from scanner.report import ReportError, row

THUMBNAIL_PX = 160
THUMBNAIL_QUALITY = 80
MAX_THUMBNAILS = 2_000  # about 10 KB each: a report of at most ~20 MB of thumbnails
MAX_REAL_ROWS = 10_000
BINS = 20


def thumbnail(path: str) -> str | None:
    """A JPEG data URI of the image, upright (EXIF orientation honoured), at most 160 px a side;
    None when the file cannot be read again (it may have changed since it was scored)."""
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
        self._target = path
        self._positive = model["labels"][1]
        folder = path.parent if str(path.parent) else Path(".")
        try:  # fail before the scan, not after it, when the folder is not writable
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        except OSError as e:
            raise ReportError(f"cannot write report {path}: {e.strerror or e}") from None
        self._tmp = Path(tmp)
        self._fd = fd
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
        with os.fdopen(self._fd, "w", encoding="utf-8") as f:
            f.write(page)
        umask = os.umask(0o022)  # mkstemp made it private; a report is meant to be shared
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        os.replace(self._tmp, self._target)


def render(
    rows: list[dict[str, Any]],
    histogram: list[int],
    summary: dict[str, Any],
    cached: int,
    omitted_real: int,
) -> str:
    """The whole page. Only numbers and escaped text are formatted into the markup."""
    page = PAGE
    parts = {
        "SUMMARY": _summary_table(summary, cached, omitted_real),
        "HISTOGRAM": _histogram_svg(histogram, float(summary["threshold"])),
        "DATA": script_json({"rows": rows, "omitted_real": omitted_real}),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def _summary_table(summary: dict[str, Any], cached: int, omitted_real: int) -> str:
    state = "interrupted (partial report)" if summary.get("interrupted") else "complete"
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


# The page. Placeholders {{NAME}} are filled by `render`; the script reads the JSON block and
# builds the table with textContent. `#selftest` in the URL makes it click through its own
# filters and record what it saw in <body data-selftest>, for the headless-browser test.
PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:;
 style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>facescan report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .6em}
.top{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
table.summary th{text-align:left;padding-right:1em;font-weight:600}
.histogram{width:420px;height:150px}.histogram rect{fill:#5b7db1}
.histogram line.threshold{stroke:#c0392b;stroke-width:2;stroke-dasharray:4 3}
.histogram text{font-size:11px;fill:#555}
.controls{margin:1em 0}.controls button{margin-right:.4em;padding:.3em .8em}
.controls button[aria-pressed=true]{background:#5b7db1;color:#fff;border-color:#5b7db1}
#results{border-collapse:collapse;width:100%}
#results th,#results td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;
 vertical-align:middle}
#results th[data-sort]{cursor:pointer;text-decoration:underline dotted}
#results td.path{word-break:break-all;font-family:ui-monospace,monospace;font-size:12px}
#results img{max-width:160px;max-height:160px;display:block}
tr.flagged td.label{color:#c0392b;font-weight:600} tr.error td.error{color:#a04000}
</style></head>
<body>
<h1>facescan report</h1>
<div class="top">{{SUMMARY}}<figure>{{HISTOGRAM}}
<figcaption>scores of all scored files; dashed line: threshold</figcaption></figure></div>
<div class="controls">show:
<button type="button" data-filter="flagged" aria-pressed="true">flagged</button>
<button type="button" data-filter="all" aria-pressed="false">all</button>
<button type="button" data-filter="error" aria-pressed="false">errors</button>
<span id="count"></span></div>
<table id="results"><thead><tr><th>image</th><th data-sort="score">score</th><th>label</th>
<th data-sort="path">path</th><th>evidence</th><th>reason</th><th>cached</th><th>error</th>
</tr></thead>
<tbody id="rows"></tbody></table>
<script type="application/json" id="facescan-data">{{DATA}}</script>
<script>
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("facescan-data").textContent);
  var state = {filter: "flagged", key: "score", desc: true};
  var THUMB = /^data:image\/jpeg;base64,[A-Za-z0-9+\/=]+$/;
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function compare(a, b) {
    var x = a[state.key], y = b[state.key];
    if (state.key === "score") { x = x == null ? -1 : x; y = y == null ? -1 : y; }
    var order = x < y ? -1 : x > y ? 1 : 0;
    return state.desc ? -order : order;
  }
  function render() {
    var body = document.getElementById("rows");
    body.textContent = "";
    var shown = data.rows.filter(function (r) {
      return state.filter === "all" || r.kind === state.filter;
    }).sort(compare);
    shown.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = r.kind;
      var td = cell(tr, "");
      if (r.thumbnail && THUMB.test(r.thumbnail)) {
        var img = document.createElement("img");
        img.alt = "";
        img.src = r.thumbnail;
        td.appendChild(img);
      }
      cell(tr, r.score == null ? "" : r.score.toFixed(3));
      cell(tr, r.label, "label");
      cell(tr, r.path, "path");
      cell(tr, r.evidence);
      cell(tr, r.reason);
      cell(tr, r.cached ? "cached" : "");
      cell(tr, r.error, "error");
      body.appendChild(tr);
    });
    var more = data.omitted_real && state.filter === "all"
      ? " (+" + data.omitted_real + " real rows not listed)" : "";
    document.getElementById("count").textContent = shown.length + " rows" + more;
    document.querySelectorAll("button[data-filter]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.filter === state.filter));
    });
  }
  document.querySelectorAll("button[data-filter]").forEach(function (b) {
    b.addEventListener("click", function () { state.filter = b.dataset.filter; render(); });
  });
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      state.desc = state.key === th.dataset.sort ? !state.desc : th.dataset.sort === "score";
      state.key = th.dataset.sort;
      render();
    });
  });
  render();
  function checkThumbnails() {
    var images = Array.prototype.slice.call(document.querySelectorAll("#rows img"));
    return Promise.all(images.map(function (img) {
      return img.decode().then(
        function () { return img.naturalWidth > 0; }, function () { return false; });
    })).then(function (ok) {
      var loaded = ok.filter(Boolean).length;
      document.body.dataset.thumbnails = loaded + "/" + images.length;
    });
  }
  function selfTest() {
    var seen = {};
    ["flagged", "all", "error"].forEach(function (f) {
      document.querySelector("button[data-filter=" + f + "]").click();
      seen[f] = document.querySelectorAll("#rows tr").length;
    });
    document.querySelector("button[data-filter=all]").click();
    document.querySelector("th[data-sort=path]").click();
    seen.first_by_path = document.querySelector("#rows td.path").textContent;
    document.querySelector("th[data-sort=score]").click();
    seen.first_by_score = document.querySelector("#rows td.path").textContent;
    document.querySelector("button[data-filter=flagged]").click();
    document.body.dataset.selftest = JSON.stringify(seen);
  }
  checkThumbnails().then(function () { if (location.hash === "#selftest") selfTest(); });
})();
</script>
</body></html>
"""
