"""The HTML report: self-contained, escaped, thumbnails upright, the face boxes where the faces
are, filters, sorting, keyboard and the enlarged view working in a browser, rows compact."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from commands import facescan
from conftest import build_red_model, noise_image, save_image
from images import rotated_jpeg
from PIL import Image

from scanner import ScanResult
from scanner.reports import html as html_report
from scanner.reports.html import MAX_REAL_ROWS, HtmlReport, script_json, thumbnail
from scanner.results import FaceResult

# "/" in a name makes a folder: the path, which the report shows, still reads "</script>".
HOSTILE = [
    "<script>document.body.dataset.pwned='1'</script>.jpg",
    '"><img src=x onerror="document.body.dataset.pwned=\'2\'">.jpg',
    "</script><script>document.body.dataset.pwned='3'</script>.png",
    "&lt;amp & 'quote'.png",
]
MODEL = {"labels": ["real", "ai"]}
WAIT_MS = 120_000  # a safety net for a hung browser, far above what a loaded machine takes
SUMMARY = {"model": "m", "threshold": 0.5, "provider": "cpu", "seconds": 1.0, "complete": True}


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


def summary_cell(page: str, name: str) -> str:
    found = re.search(rf"<th>{name}</th><td>(.*?)</td>", page)
    assert found is not None, name
    return html.unescape(found.group(1))


def write_report(path: Path, results: list[ScanResult], thumbnails: str = "flagged") -> str:
    """`results` through the HtmlReport class; the page's text."""
    report = HtmlReport(path, MODEL, thumbnails)
    for result in results:
        report.write(result)
    flagged = sum(r.label == "ai" for r in results)
    errors = sum(r.status == "error" for r in results)
    counts = {"files": len(results), "flagged": flagged, "errors": errors}
    report.close({**SUMMARY, **counts, "real": len(results) - flagged - errors})
    return path.read_text(encoding="utf-8")


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
    assert summary_cell(page, "thumbnails") == "5 flagged, 0 real (--thumbnails flagged)"
    assert page.count("<rect ") == 20
    rows = page_data(page)["rows"]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("flagged") == 5 and kinds.count("error") == 2 and kinds.count("real") == 3
    assert all(r["thumbnail"] for r in rows if r["kind"] == "flagged")
    assert not any(r.get("thumbnail") for r in rows if r["kind"] != "flagged")


def test_histogram_writes_each_count_and_the_threshold() -> None:
    histogram = [0] * 20
    histogram[1], histogram[13], histogram[19] = 3, 12_345, 1
    svg = html_report._histogram_svg(histogram, 0.625)
    counts = re.findall(r'<text class="count"[^>]*>([^<]*)</text>', svg)
    assert counts == ["3", "12k", "1"]  # one per non-empty bar, left to right
    assert "<title>scores 0.65-0.70: 12345 files</title>" in svg  # the whole count on hover
    assert re.search(r'<line class="threshold" x1="380.0"', svg)  # 30 + 0.625 * 560
    assert ">threshold 0.625</text>" in svg and ">score</text>" in svg and ">files</text>" in svg
    bars = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert bars[19] >= 1.5 and bars[0] == 0  # a bar of one file stays visible, none is empty


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


@pytest.mark.parametrize(
    ("mode", "flagged", "real", "note"),
    [
        (
            "flagged",
            [True, False],
            [False, False],
            "1 flagged, 0 real (--thumbnails flagged); over the cap: 1 flagged",
        ),
        ("none", [False, False], [False, False], "none (--thumbnails none)"),
        (
            "all",
            [True, False],
            [True, False],
            "1 flagged, 1 real (--thumbnails all); over the cap: 1 flagged, 1 real",
        ),
    ],
)
def test_which_images_get_thumbnails_within_the_caps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    flagged: list[bool],
    real: list[bool],
    note: str,
) -> None:
    monkeypatch.setattr(html_report, "MAX_THUMBNAILS", 1)
    monkeypatch.setattr(html_report, "MAX_REAL_THUMBNAILS", 1)
    results = [ScanResult(str(tmp_path / "gone.png"), "error", error="vanished")]
    for label, score in (("ai", 0.9), ("ai", 0.8), ("real", 0.2), ("real", 0.1)):
        path = save_image(tmp_path / f"{label}{score}.png", (200, 0, 0))
        results.append(ScanResult(str(path), "ok", label, score, width=24, height=24))
    page = write_report(tmp_path / "r.html", results, mode)
    rows = page_data(page)["rows"]
    has = {
        k: [bool(r.get("thumbnail")) for r in rows if r["kind"] == k] for k in ("flagged", "real")
    }
    assert has == {"flagged": flagged, "real": real} and rows[0]["kind"] == "error"
    assert "thumbnail" not in rows[0]  # an error row has nothing to show
    assert summary_cell(page, "thumbnails") == note


def test_script_json_cannot_close_the_script() -> None:
    text = script_json({"p": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"p": "</script><!-- & -->"}


def test_format_option_and_real_row_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.reports import open_report

    monkeypatch.setattr(html_report, "MAX_REAL_ROWS", 2)

    report = open_report(tmp_path / "r.out", "html", MODEL)
    assert isinstance(report, html_report.HtmlReport)
    for i in range(5):
        report.write(ScanResult(f"r{i}.png", "ok", "real", 0.1, reason="model"))
    summary = {"files": 5, "flagged": 0, "real": 5, "errors": 0}
    report.close({**SUMMARY, **summary})
    data = page_data((tmp_path / "r.out").read_text(encoding="utf-8"))
    assert len(data["rows"]) == 2 and data["omitted_real"] == 3
    assert MAX_REAL_ROWS == 10_000


def test_thumbnails_option(tmp_path: Path, red_model: Path) -> None:
    save_image(tmp_path / "pile" / "red.png", (250, 0, 0))
    save_image(tmp_path / "pile" / "blue.png", (0, 0, 250))
    out = tmp_path / "r.html"
    done = facescan("pile", "--model", red_model, "--thumbnails", "all", "--out", out, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert all(r["thumbnail"] for r in page_data(out.read_text(encoding="utf-8"))["rows"])
    refused = {
        ("--thumbnails", "some", "--out", "r.html"): "--thumbnails must be flagged, all, none",
        ("--thumbnails", "all"): "--thumbnails needs --out REPORT.html",
        ("--thumbnails", "all", "--out", "r.csv"): "--thumbnails is for an HTML report",
    }
    for args, message in refused.items():
        done = facescan("pile", "--model", red_model, *args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "r.csv").exists()


def run_chromium(path: str, *args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    flags = [
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"),
        *("--disable-component-update", "--disable-sync", "--no-first-run"),
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run([path, *flags, *args], capture_output=True, text=True, timeout=60)


def self_test(
    browser: Any, page: Path, size: tuple[int, int] = (800, 600)
) -> tuple[dict[str, str], Any, str]:
    """The page's #selftest run in headless Chromium (driven by Playwright, at a `size` viewport):
    the body's data attributes, what the self-test saw, and the DOM as it was left (the flagged
    view, sorted by score). It waits for the self-test's result, not for a set time: the page
    decodes its thumbnails first, which takes what it takes on a busy machine."""
    tab = browser.new_page(viewport={"width": size[0], "height": size[1]})
    try:
        # Waits for the self-test's result alone (not also for "load", with its own 30-s
        # limit): a busy machine takes what it takes.
        tab.goto(page.resolve().as_uri() + "#selftest", wait_until="commit")
        tab.wait_for_selector("body[data-selftest]", state="attached", timeout=WAIT_MS)
        dom = tab.content()
    finally:
        tab.close()
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[-2000:]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0)))
    assert "pwned" not in attributes  # no file name or content ran as script
    return attributes, json.loads(html.unescape(attributes["selftest"])), dom


def test_in_headless_chromium(
    browser: Any, chromium: tuple[str, Any], report: Path, tmp_path: Path
) -> None:
    attributes, seen, _ = self_test(browser, report)
    assert attributes["thumbnails"] == "5/5"  # every flagged thumbnail decoded
    assert (seen["flagged"], seen["real"], seen["all"], seen["error"]) == (5, 3, 10, 2)
    rows = page_data(report.read_text(encoding="utf-8"))["rows"]
    assert seen["first_by_path"] == min(r["path"] for r in rows)
    top = max(rows, key=lambda r: r["score"] or 0)
    assert seen["first_by_score"] == top["path"]
    assert seen["paths"]["cut"] == 0  # no folder or file name split over two lines

    # Keys, in the "all" view sorted by path: j and arrow down go to the next flagged row,
    # skipping the real and error rows between them; k and arrow up come back.
    flagged = sorted(r["path"] for r in rows if r["kind"] == "flagged")
    assert len(flagged) == 5 and flagged[-1].endswith("/rotated.jpg")  # after real0..2.png
    assert seen["down"] == [*flagged, flagged[-1]]  # six presses: the last one stays
    assert seen["up"] == [flagged[3], flagged[2]]
    assert seen["focus_style"] == "solid"  # the focused row is outlined
    assert seen["open"] == {"hidden": False, "path": flagged[2], "boxes": 0}  # Enter opens it
    assert seen["open_next"] == flagged[3]  # j in the enlarged view shows the next one
    assert seen["after_escape"] == {"path": flagged[3], "hidden": True}  # Esc: back on its row
    # --thumbnails flagged (the default): the views holding real rows say how to see them.
    hint = "Real images have no thumbnail in this report (--thumbnails flagged, the default). "
    hint += "Scan again with --thumbnails all to see every image."
    assert seen["hint"] == {"flagged": None, "real": hint, "all": hint, "error": None}

    shot = tmp_path / "shot.png"
    size = "--window-size=1200,900"
    run_chromium(chromium[0], f"--screenshot={shot}", size, report.as_uri(), profile=tmp_path)
    assert Image.open(shot).size == (1200, 900)


@dataclasses.dataclass(frozen=True)
class WithProvenance(ScanResult):
    """A row as the C2PA wiring writes it (ScanResult has no provenance field in this tree)."""

    provenance: dict[str, Any] | None = None


GROUP_FACES = (
    FaceResult((40, 90, 140, 190), 0.99, 0.97, "ai"),
    FaceResult((250, 150, 330, 230), 0.95, 0.21, "real"),
    FaceResult((350, 20, 380, 50), 0.80),  # under --min-face: listed, not scored
)
VALID_AI = "C2PA: AI-generated image, signed by Test Signer, valid"
PROVENANCE: dict[str, dict[str, Any]] = {
    "valid-ai.jpg": {"validation": "valid", "declares_ai_creation": True, "summary": VALID_AI},
    "tampered.jpg": {"validation": "invalid", "declares_ai_creation": True, "summary": "bad"},
    "untrusted.jpg": {
        "validation": "untrusted",
        "summary": "C2PA: </script><script>document.body.dataset.pwned='5'</script>",
    },
}


@pytest.fixture(scope="module")
def review_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows written through HtmlReport: a group photo with three faces, C2PA credentials of
    every kind, baseline decisions, and 30 flagged photos deep in long-named folders."""
    tmp = tmp_path_factory.mktemp("review")
    photos = tmp / "photos"
    results: list[ScanResult] = [
        WithProvenance(
            str(save_image(photos / "group.jpg", (200, 40, 40), size=400)),
            "ok",
            "ai",
            0.97,
            width=400,
            height=400,
            faces=GROUP_FACES,
            baseline="new",
            provenance=PROVENANCE["valid-ai.jpg"],
            # as scanner.evidence writes it: the credential's summary is the last item
            evidence="xmp:DigitalSourceType=trainedAlgorithmicMedia; " + VALID_AI,
            reason="provenance",
        ),  # fmt: skip
        ScanResult(str(photos / "gone.jpg"), "error", error="file not found"),
    ]
    for name, info in PROVENANCE.items():
        path = str(save_image(photos / name, (90, 90, 90)))
        label, score = ("real", 0.1) if name == "untrusted.jpg" else ("ai", 0.9)
        results.append(
            WithProvenance(path, "ok", label, score, baseline="approved", provenance=info)
        )
    plain = save_image(photos / "plain.jpg", (0, 0, 200))
    results.append(ScanResult(str(plain), "ok", "real", 0.2, reason="model"))  # no provenance
    deep = tmp / "moderation-queue-2024" / "partner-upload-service-batch-0042" / "originals"
    for i in range(30):
        path = str(save_image(deep / f"IMG_{i:04d}-from-a-phone-camera.jpg", (150, 60, 60)))
        results.append(ScanResult(path, "ok", "ai", 0.6 + i / 100, width=24, height=24))
    write_report(tmp / "review.html", results, thumbnails="all")
    return tmp / "review.html"


def test_boxes_badges_and_compact_rows_in_chromium(
    browser: Any, review_report: Path, tmp_path: Path
) -> None:
    attributes, seen, dom = self_test(browser, review_report, (1920, 1080))
    assert attributes["thumbnails"] == "36/36"  # 33 thumbnails, the group photo's 3 face crops
    assert seen["rows_per_1080"] >= 20  # at 1920 px wide; the table of before fitted 7
    assert seen["paths"]["wrapped"] >= 30 and seen["paths"]["cut"] == 0  # wrapped at "/" only

    # The group photo (the top score): each box where its face is, as a share of the image.
    boxes = seen["boxes"][0]
    assert [(b[0], b[5]) for b in boxes] == [
        ("box ai", "0.97"),
        ("box real", "0.21"),
        ("box unscored inside", "small"),  # at the image's top: its label inside the box
    ]
    for face, drawn in zip(GROUP_FACES, boxes, strict=True):
        assert drawn[1:5] == pytest.approx([v / 400 for v in face.box], abs=0.02)
    assert seen["faces"][0] == "faces: 0.97 ai · 0.21 real · (small)"
    assert seen["hint"] == {"flagged": None, "real": None, "all": None, "error": None}  # all

    # The details cell, rows in path order: only what each row has.
    page = review_report.read_text(encoding="utf-8")
    rows = sorted(page_data(page)["rows"], key=lambda r: r["path"])
    details = {Path(r["path"]).name: d for r, d in zip(rows, seen["details"], strict=True)}
    # The credential's summary once, after its badge (not again in the evidence); items apart.
    assert details["group.jpg"] == [
        ["badge c2pa-ai", "C2PA: AI"],
        ["c2pa-summary", "AI-generated image, signed by Test Signer, valid"],
        ["badge new", "baseline: new"],
        ["evidence", "evidence: xmp:DigitalSourceType=trainedAlgorithmicMedia"],
        ["", "label from provenance"],
    ]
    line = re.search(r'<div class="details">(.*?)</div>', dom)
    assert line is not None
    text = html.unescape(re.sub(r"<[^>]+>", "", line.group(1)))
    assert text == (
        "C2PA: AI · AI-generated image, signed by Test Signer, valid · baseline: new · "
        "evidence: xmp:DigitalSourceType=trainedAlgorithmicMedia · label from provenance"
    )
    assert details["tampered.jpg"][0] == ["badge c2pa-invalid", "C2PA: tampered/invalid"]
    assert details["untrusted.jpg"][:2] == [
        ["badge c2pa", "C2PA: untrusted"],
        ["c2pa-summary", PROVENANCE["untrusted.jpg"]["summary"][6:]],  # as text, never run
    ]
    assert details["untrusted.jpg"][2] == ["badge approved", "baseline: approved"]
    assert details["plain.jpg"] is None  # nothing to say: no details cell at all
    assert details["gone.jpg"] == [["error-text", "file not found"]]


def shown_path(path: str) -> str:
    """A path as the page shows it: control characters as \\xNN."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", path)


def open_report(browser: Any, page: Path) -> Any:
    tab = browser.new_page(viewport={"width": 1440, "height": 1000})
    tab.goto(page.resolve().as_uri(), wait_until="commit")
    tab.wait_for_selector("#rows .row", state="attached", timeout=WAIT_MS)
    return tab


def test_file_href_is_relative_and_escaped() -> None:
    href = html_report.file_href
    assert href("/a/b c/#1?.jpg", "/a/reports") == "../b%20c/%231%3F.jpg"
    assert href("/a/100%.jpg", "/a") == "100%25.jpg"
    assert href("/a/javascript:alert(1)", "/a") == "javascript%3Aalert%281%29"  # no scheme
    assert href("/a/tab\there\n.jpg", "/a") == "tab%09here%0A.jpg"
    assert href(os.fsdecode(b"/a/\xff\xe9.jpg"), "/a") == "%FF%E9.jpg"  # the name's bytes
    assert href("/a/é.jpg", "/a") == "%C3%A9.jpg"


def test_a_face_five_pixels_wide_in_a_camera_photo_can_be_judged(
    browser: Any, tmp_path: Path
) -> None:
    """On the 160-px thumbnail of a 3000x4000 photo a 5-px face is a speck; its crop, cut from
    the photo, holds its pixels, and the enlarged view shows them at 128 px."""
    photo = Image.new("RGB", (3000, 4000), (40, 40, 40))
    photo.paste((255, 255, 255), (1800, 2500, 1805, 2506))  # the face: 5 x 6 px, white
    photo.paste((200, 120, 90), (200, 200, 600, 600))  # a big face
    path = tmp_path / "DSC_0042.jpg"
    photo.save(path, quality=95)
    faces = (
        FaceResult((200, 200, 600, 600), 0.99, 0.12, "real"),
        FaceResult((1800, 2500, 1805, 2506), 0.7, 0.96, "ai"),
    )
    result = ScanResult(str(path), "ok", "ai", 0.96, width=3000, height=4000, faces=faces)
    page = write_report(tmp_path / "report.html", [result])
    assert summary_cell(page, "face crops") == "2"
    crops = page_data(page)["rows"][0]["crops"]
    big, small = (Image.open(io.BytesIO(base64.b64decode(c.split(",", 1)[1]))) for c in crops)
    assert big.size == (128, 128) and small.size == (9, 9)  # 6 px and a quarter each side
    white = np.asarray(small.convert("L")) > 200
    assert 20 <= white.sum() <= 42 and white[4, 4]  # the face's 30 pixels, in the middle

    tab = open_report(browser, tmp_path / "report.html")
    tab.keyboard.press("j")
    tab.keyboard.press("Enter")
    crop = tab.locator("#lb-view .face.ai img")
    assert crop.evaluate("i => [i.clientWidth, i.naturalWidth]") == [128, 9]
    shot = Image.open(io.BytesIO(crop.screenshot())).convert("L")
    seen = np.asarray(shot) > 200
    assert 0.25 < seen.mean() < 0.55  # the face fills a third of the enlarged crop, as blocks
    assert tab.text_content("#lb-view .face.ai") == "0.96 ai"
    assert tab.locator("#lb-view .faces .face").count() == 2  # best first: the flagged one
    assert tab.get_attribute("#lb-view .faces .face:first-child", "class") == "face ai"
    tab.close()


def test_each_path_links_its_file_and_shows_control_characters_escaped(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path is a link to the file, relative to the report's folder (which is not the
    folder the scan ran from), percent-encoded; a tab or newline in a name shows as \\xNN."""
    names = ["IMG 0001 #1?.jpg", "100%.jpg", "tab\tand\nnewline.jpg", "été.jpg"]
    for name in names:
        save_image(tmp_path / "photos" / name, (200, 0, 0))
    monkeypatch.chdir(tmp_path)
    results = [ScanResult(f"photos/{n}", "ok", "ai", 0.9, width=24, height=24) for n in names]
    report = tmp_path / "reports" / "r.html"
    report.parent.mkdir()
    write_report(report, results, thumbnails="none")

    tab = open_report(browser, report)
    links = tab.eval_on_selector_all(
        "a.path", "as => as.map(a => [a.textContent, a.getAttribute('href'), a.href])"
    )
    shown = {text: (href, resolved) for text, href, resolved in links}
    assert set(shown) == {f"photos/{n}" for n in names[:2] + names[3:]} | {
        "photos/tab\\x09and\\x0anewline.jpg"
    }
    for name in names:
        href, resolved = shown[shown_path(f"photos/{name}")]
        assert href.startswith("../photos/") and resolved == (tmp_path / "photos" / name).as_uri()
    hint = "This report has no thumbnails (--thumbnails none). "
    assert (
        tab.text_content("#hint") == hint + "Scan again with --thumbnails all to see every image."
    )
    assert tab.is_visible("#hint")
    for name in ("IMG 0001 #1?.jpg", "tab\tand\nnewline.jpg"):  # the link opens the file
        tab.goto(shown[shown_path(f"photos/{name}")][1])
        assert tab.eval_on_selector("img", "i => i.naturalWidth") == 24
    tab.close()


@pytest.mark.parametrize(("required", "outcome"), [(False, "1 skipped"), (True, "1 error")])
def test_browser_tests_skip_without_chromium_unless_required(required: bool, outcome: str) -> None:
    """Without chromium a browser test skips, saying what it needs; under .ci/run
    (FACESCAN_BROWSER_TESTS=required) it errors: CI cannot pass without running them."""
    env = {k: v for k, v in os.environ.items() if k != "FACESCAN_BROWSER_TESTS"}
    env["PATH"] = "/nonexistent"  # no chromium to be found
    if required:
        env["FACESCAN_BROWSER_TESTS"] = "required"
    test = f"{Path(__file__)}::test_in_headless_chromium"
    command = [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", test]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=Path(__file__).parent
    )
    assert outcome in done.stdout, done.stdout
    assert "needs Debian's chromium (apt-get install chromium; README, Set up)" in done.stdout
