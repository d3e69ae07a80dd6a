"""The HTML report: self-contained, escaped, thumbnails upright, filters working in a browser."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from commands import facescan
from conftest import build_red_model, noise_image, save_image
from images import rotated_jpeg
from PIL import Image

from scanner.reports.html import MAX_REAL_ROWS, script_json, thumbnail

# "/" in a name makes a folder: the path, which the report shows, still reads "</script>".
HOSTILE = [
    "<script>document.body.dataset.pwned='1'</script>.jpg",
    '"><img src=x onerror="document.body.dataset.pwned=\'2\'">.jpg',
    "</script><script>document.body.dataset.pwned='3'</script>.png",
    "&lt;amp & 'quote'.png",
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scan of flagged (red), real (blue), rotated, hostile-named and broken files."""
    tmp = tmp_path_factory.mktemp("html")
    pile = tmp / "pile"
    for i, name in enumerate(HOSTILE):
        save_image(pile / name, (250 - 10 * i, 30, 30), size=300)  # flagged, bigger than 160 px
    for i in range(3):
        save_image(pile / f"real{i}.png", (10 * i, 0, 200))
    (pile / "rotated.jpg").write_bytes(rotated_jpeg())  # half red: about 0.5, flagged
    (pile / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (pile / "page.jpg").write_bytes(b"<html><script>document.body.dataset.pwned='4'</script>")
    out = tmp / "report.html"
    model = build_red_model(tmp / "red.onnx")
    done = facescan(pile, "--model", model, "--out", out, "--threshold", "0.3", "-q")
    assert done.returncode == 1, done.stderr
    return out


def page_data(page: str) -> Any:
    found = re.search(r'<script type="application/json" id="facescan-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_hostile_names_stay_text(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert page.count("<script") == 2  # the JSON block and the page's own script, nothing else
    assert "pwned" not in page.replace("\\u003c", "<").split("facescan-data")[0]  # not in markup
    rows = page_data(page)["rows"]
    paths = {r["path"].split("/pile/", 1)[1] for r in rows}
    assert set(HOSTILE) <= paths  # every path round-trips exactly


def test_page_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page


def test_summary_histogram_and_rows(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    for text in ("<th>files</th><td>10</td>", "<th>flagged</th><td>5</td>", "<th>errors</th>"):
        assert text in page
    assert page.count("<rect ") == 20
    rows = page_data(page)["rows"]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("flagged") == 5 and kinds.count("error") == 2 and kinds.count("real") == 3
    assert all(r["thumbnail"] for r in rows if r["kind"] == "flagged")


def test_thumbnails_are_upright_and_small(tmp_path: Path) -> None:
    (tmp_path / "rotated.jpg").write_bytes(rotated_jpeg())
    noise_image(1000).save(tmp_path / "big.png")
    for name, expect_portrait in (("rotated.jpg", True), ("big.png", False)):
        uri = thumbnail(str(tmp_path / name))
        assert uri is not None and uri.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert max(image.size) <= 160
        assert (image.height > image.width) == expect_portrait
    assert thumbnail(str(tmp_path / "missing.jpg")) is None


def test_script_json_cannot_close_the_script() -> None:
    text = script_json({"p": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"p": "</script><!-- & -->"}


def test_format_option_and_real_row_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner import ScanResult
    from scanner.reports import html as html_report
    from scanner.reports import open_report

    monkeypatch.setattr(html_report, "MAX_REAL_ROWS", 2)

    report = open_report(tmp_path / "r.out", "html", {"labels": ["real", "ai"]})
    assert isinstance(report, html_report.HtmlReport)
    for i in range(5):
        report.write(ScanResult(f"r{i}.png", "ok", "real", 0.1, reason="model"))
    summary = {"files": 5, "flagged": 0, "real": 5, "errors": 0, "model": "m", "threshold": 0.5}
    report.close({**summary, "provider": "cpu", "seconds": 1.0, "complete": True})
    data = page_data((tmp_path / "r.out").read_text(encoding="utf-8"))
    assert len(data["rows"]) == 2 and data["omitted_real"] == 3
    assert MAX_REAL_ROWS == 10_000


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (.ci/run installs it)")
def test_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    flags = [
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"),
        *("--disable-component-update", "--disable-sync", "--no-first-run"),
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    url = report.resolve().as_uri() + "#selftest"
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=60
    ).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[-2000:]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    assert "pwned" not in attributes  # no file name or content ran as script
    assert attributes["thumbnails"] == "5/5"  # every flagged thumbnail decoded
    seen = json.loads(html.unescape(attributes["selftest"]))
    assert (seen["flagged"], seen["all"], seen["error"]) == (5, 10, 2)
    rows = page_data(report.read_text(encoding="utf-8"))["rows"]
    assert seen["first_by_path"] == min(r["path"] for r in rows)
    top = max(rows, key=lambda r: r["score"] or 0)
    assert seen["first_by_score"] == top["path"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,900", url],
        capture_output=True,
        timeout=60,
    )
    assert Image.open(shot).size == (1200, 900)
