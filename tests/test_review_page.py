"""The review page of `facescan serve` in headless Chromium (Debian's `chromium`, driven by
Playwright for Python; no browser is downloaded): pick images and a folder, see each file's
verdict as it arrives, filter, export CSV and JSONL, give a token when the service asks for
one. File names that look like markup stay text."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from commands import Served
from conftest import build_red_model, save_image
from PIL import Image

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the [dev] extra)")
pytest.importorskip("uvicorn", reason="needs the [serve] extra: pip install 'facescan[serve]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not CHROMIUM, reason="needs Debian's chromium (apt-get install chromium; .ci/run does)"
)
HOSTILE = "<img src=x onerror=\"document.body.dataset.pwned='1'\">.png"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Red images (the red model's "ai"), blue ones ("real"), a broken file, a hostile name,
    and a folder holding an image, a sub-folder and a text file."""
    root = tmp_path_factory.mktemp("pile")
    files = {
        "ai1.png": save_image(root / "ai1.png", (250, 20, 20), size=64),
        "ai2.jpg": save_image(root / "ai2.jpg", (230, 40, 10), size=80, quality=95),
        HOSTILE: save_image(root / HOSTILE, (240, 0, 0), size=48),
        "real1.png": save_image(root / "real1.png", (10, 60, 220), size=64),
        "real2.png": save_image(root / "real2.png", (0, 0, 90), size=40),
    }
    (root / "broken.jpg").write_bytes(b"<html>not an image</html>")
    files["broken.jpg"] = root / "broken.jpg"
    folder = root / "album"
    save_image(folder / "sub" / "deep.png", (200, 0, 0), size=32)
    save_image(folder / "top.png", (0, 0, 200), size=32)
    (folder / "notes.txt").write_text("a folder's other files are not images")
    return {**files, "album": folder}


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_page(accept_downloads=True)
    page.goto(url)
    page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
    return page


def wait_done(page: Any, count: int) -> None:
    page.wait_for_selector(f"body[data-done='{count}']", timeout=WAIT_MS)


def cards(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        ".card",
        """cards => cards.map(c => ({
            name: c.querySelector('.name').textContent,
            kind: c.dataset.kind,
            verdict: c.querySelector('.verdict').textContent,
            detail: c.querySelector('.detail').textContent,
            visible: c.offsetParent !== null,
            thumbnail: (c.querySelector('img') || {}).naturalWidth || 0,
            preview: c.querySelector('.thumb').textContent,
        }))""",
    )


def download(page: Any, button: str) -> str:
    with page.expect_download() as info:
        page.click(button)
    return Path(info.value.path()).read_text(encoding="utf-8")


def test_review_a_pile(browser: Any, pile: dict[str, Path], tmp_path: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    with Served("--model", model, "--provider", "cpu") as server:
        page = open_page(browser, server.url)
        assert 'flags "ai"' in page.text_content("#model")
        singles = [str(p) for name, p in pile.items() if name != "album"]
        page.set_input_files("#pick-files", singles)
        page.set_input_files("#pick-folder", str(pile["album"]))
        wait_done(page, len(singles) + 2)
        shown = {c["name"]: c for c in cards(page)}
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

        # Every file once, named as given (the folder's with its relative path, its text file
        # skipped as the CLI's walk skips it); verdicts from the service.
        assert set(shown) == {
            *(n for n in pile if n != "album"),
            "album/top.png",
            "album/sub/deep.png",
        }
        kinds = {name: c["kind"] for name, c in shown.items()}
        assert sorted(n for n, k in kinds.items() if k == "flagged") == sorted(
            ["ai1.png", "ai2.jpg", HOSTILE, "album/sub/deep.png"]
        )
        assert sorted(n for n, k in kinds.items() if k == "real") == [
            "album/top.png", "real1.png", "real2.png"
        ]  # fmt: skip
        assert shown["broken.jpg"]["kind"] == "error"
        assert "not a supported image: content is HTML" in shown["broken.jpg"]["detail"]
        assert shown["ai1.png"]["verdict"] == "ai 0.980" and shown["ai1.png"]["thumbnail"] == 64
        assert page.get_attribute("body", "data-pwned") is None  # the name stayed text
        drawn = [name for name, c in shown.items() if c["thumbnail"]]
        assert sorted(drawn) == sorted(set(shown) - {"broken.jpg"})  # from the picked files
        assert shown["broken.jpg"]["preview"] == "no preview"

        for button, visible in (("flagged", 4), ("error", 1), ("all", len(shown))):
            page.click(f"[data-filter={button}]")
            assert sum(c["visible"] for c in cards(page)) == visible, button

        jsonl = [json.loads(line) for line in download(page, "#export-jsonl").splitlines()]
        table = list(csv.DictReader(io.StringIO(download(page, "#export-csv"))))
    by_path = {row["path"]: row for row in jsonl}
    assert set(by_path) == set(shown)
    assert by_path["ai1.png"]["sha256"] == hashlib.sha256(pile["ai1.png"].read_bytes()).hexdigest()
    assert by_path["real2.png"]["label"] == "real" and by_path["broken.jpg"]["score"] is None
    assert [r["path"] for r in table] == [r["path"] for r in jsonl]
    assert list(table[0]) == list(jsonl[0])  # the report's columns, in order
    for row, values in zip(table, jsonl, strict=True):
        assert row["score"] == ("" if values["score"] is None else str(values["score"]))
        assert row["cached"] == "false"
    assert Image.open(tmp_path / "review.png").width > 0


def test_the_page_asks_for_the_token(browser: Any, pile: dict[str, Path], tmp_path: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret-token\n")
    with Served("--model", model, "--token-file", tokens) as server:
        page = open_page(browser, server.url)
        page.set_input_files("#pick-files", [str(pile["ai1.png"]), str(pile["real1.png"])])
        page.wait_for_selector("#auth:not([hidden])", timeout=WAIT_MS)
        assert page.get_attribute("body", "data-done") == "0"  # held, not failed
        page.fill("#token", "s3cret-token")
        page.click("#auth button")
        wait_done(page, 2)
        assert sorted(c["kind"] for c in cards(page)) == ["flagged", "real"]


def test_face_boxes_follow_the_thumbnail(
    browser: Any, pile: dict[str, Path], tmp_path: Path
) -> None:
    """Rows carry no faces yet (face detection is another change); the page draws a row's
    `faces[].box` ([x0, y0, x1, y1], upright image pixels) once they do. Here the service's
    real row for the file gets one face added on its way to the page."""
    import httpx

    model = build_red_model(tmp_path / "red.onnx")
    image = pile["ai1.png"]
    with Served("--model", model) as server:
        page = open_page(browser, server.url)
        files = {"file": (image.name, image.read_bytes(), "image/png")}
        body = httpx.post(f"{server.url}/v1/scan", files=files).json()
        body["results"][0]["faces"] = [{"box": [8, 16, 40, 48], "score": 0.93}]

        def add_face(route: Any) -> None:  # (Playwright's route.fetch drops a form's file)
            route.fulfill(json=body)

        page.route("**/v1/scan", add_face)
        page.set_input_files("#pick-files", [str(image)])  # 64 x 64
        wait_done(page, 1)
        box = page.eval_on_selector(
            ".box", "b => [b.style.left, b.style.top, b.style.width, b.title]"
        )
    assert box == ["12.5%", "25%", "50%", "face 0.93"]
