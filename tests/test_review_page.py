"""The review page of `facescan serve` in headless Chromium (Debian's `chromium`, driven by
Playwright for Python; no browser is downloaded): pick images and a folder, see each file's
verdict as it arrives, filter, export CSV and JSONL, give a token when the service asks for
one. File names that look like markup stay text."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from commands import Served
from conftest import build_red_model, save_image
from PIL import Image

pytest.importorskip("uvicorn", reason="needs the [serve] extra: pip install 'facescan[serve]'")
HOSTILE = "<img src=x onerror=\"document.body.dataset.pwned='1'\">.png"
WAIT_MS = 60_000


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
    """The first 401 pauses the queue: the files not yet sent wait for the token instead of
    each being sent and refused; a refused token asks again; then every file is scanned."""
    model = build_red_model(tmp_path / "red.onnx")
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret-token\n")
    many = [save_image(tmp_path / "many" / f"{i:02d}.png", (250, 0, 0), size=24) for i in range(12)]
    picked = [str(pile["ai1.png"]), str(pile["real1.png"]), *map(str, many)]
    with Served("--model", model, "--token-file", tokens) as server:
        page = open_page(browser, server.url)
        sent: list[str | None] = []
        page.on(
            "request",
            lambda r: (
                sent.append(r.headers.get("authorization")) if r.url.endswith("/v1/scan") else None
            ),
        )
        page.set_input_files("#pick-files", picked)
        paused = "body[data-queue=paused][data-in-flight='0']"  # the refused ones all answered
        page.wait_for_selector(paused, timeout=WAIT_MS)
        assert page.is_visible("#auth") and page.get_attribute("body", "data-done") == "0"
        assert 1 <= len(sent) <= 4  # PARALLEL (review.js): what was in flight, not all 14
        assert "14 files, 0 scanned" in page.text_content("#counts")
        assert "14 waiting for the token" in page.text_content("#counts")

        page.fill("#token", "wrong-token")
        page.click("#auth button")
        page.wait_for_selector(paused, timeout=WAIT_MS)
        assert "refused the token" in page.text_content("#auth")
        assert sent.count("Bearer wrong-token") <= 4

        page.fill("#token", "s3cret-token")
        page.click("#auth button")
        wait_done(page, len(picked))
        assert page.is_hidden("#auth")
        kinds = sorted(c["kind"] for c in cards(page))
        assert kinds == ["flagged"] * 13 + ["real"]
        assert sent.count("Bearer s3cret-token") == len(picked)  # each file once with it


def test_face_boxes_coloured_by_label_with_scores(
    browser: Any, pile: dict[str, Path], tmp_path: Path
) -> None:
    """Each face's box where the face is ([x0, y0, x1, y1], upright image pixels, as shares of
    the thumbnail), coloured by its label as the HTML report does (red for the flagged label,
    green for the other, grey dashed for a face too small to score) with its score written on
    it, and the faces' scores listed under the thumbnail. The service's row for the file gets
    faces added on its way to the page (a plain test image holds none)."""
    import httpx

    model = build_red_model(tmp_path / "red.onnx")
    image = save_image(tmp_path / "group.png", (250, 20, 20), size=200)
    faces = [
        {"box": [20, 40, 100, 120], "detection": 0.9, "score": 0.214, "label": "real"},
        {"box": [110, 60, 180, 130], "detection": 0.9, "score": 0.934, "label": "ai"},
        {"box": [150, 0, 170, 20], "detection": 0.6, "score": None, "label": None},
    ]
    with Served("--model", model) as server:
        page = open_page(browser, server.url)
        files = {"file": (image.name, image.read_bytes(), "image/png")}
        body = httpx.post(f"{server.url}/v1/scan", files=files).json()
        body["results"][0]["faces"] = faces

        def add_faces(route: Any) -> None:  # (Playwright's route.fetch drops a form's file)
            route.fulfill(json=body)

        page.route("**/v1/scan", add_faces)
        page.set_input_files("#pick-files", [str(image)])  # 200 x 200
        wait_done(page, 1)
        page.wait_for_function("document.querySelector('.thumb img').complete")
        boxes = page.eval_on_selector_all(
            ".box",
            """boxes => boxes.map(b => {
                const img = b.parentElement.querySelector('img').getBoundingClientRect();
                const r = b.getBoundingClientRect(), label = b.querySelector('span');
                const l = label.getBoundingClientRect();
                return {
                    share: [(r.left - img.left) / img.width, (r.top - img.top) / img.height,
                            (r.right - img.left) / img.width, (r.bottom - img.top) / img.height],
                    colour: getComputedStyle(b).borderTopColor,
                    style: getComputedStyle(b).borderTopStyle,
                    text: label.textContent,
                    seen: label.checkVisibility() && l.width > 0 && l.height > 0
                        && document.elementFromPoint(l.left + l.width / 2,
                                                     l.top + l.height / 2) === label,
                    title: b.title,
                };
            })""",
        )
        listed = page.text_content(".card .faces")
        page.screenshot(path=str(tmp_path / "faces.png"))
    red, green, grey = "rgb(224, 36, 94)", "rgb(30, 158, 74)", "rgb(136, 136, 136)"
    assert [(b["colour"], b["style"], b["text"]) for b in boxes] == [
        (green, "solid", "0.21"),
        (red, "solid", "0.93"),
        (grey, "dashed", "small"),
    ]
    assert all(b["seen"] for b in boxes)  # each score drawn where it can be read
    for face, box in zip(faces, boxes, strict=True):
        assert box["share"] == pytest.approx([v / 200 for v in face["box"]], abs=0.02)
    assert [b["title"] for b in boxes] == ["face 0.21 real", "face 0.93 ai", "face (small)"]
    assert listed == "faces: 0.93 ai · 0.21 real · (small)"  # best first
