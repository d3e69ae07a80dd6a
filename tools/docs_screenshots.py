"""The docs' pictures of the HTML report and the review page, remade from the shared test
split: `python tools/docs_screenshots.py [report|review]` (needs the [dev] and [serve] extras,
Debian's chromium and ../shared/datasets/faces; writes docs/html-report.png,
docs/html-report-faces.png and docs/serve-review.png).

The report: 40 AI and 40 real photos of the test split, tinted red by varying amounts, under
long upload folders; six camera-sized group photos (scanner/testing/group_photos.py), faces 10 to
500 px wide; a truncated file. Scored by the face-crop test model of scanner/testing/models.py (a
face's score
is its mean red), `--threshold 0.6 --thumbnails all`, seen at 1440x1000: the list after pressing
`j` twice, and the top group photo enlarged. The review page: AI and real faces of the test split
and two of the group photos, picked in the page of `facescan serve` with the shipped model, and
a text file named like an image.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from scanner.preprocess import FaceCropSpec, PreprocessSpec
from scanner.testing.group_photos import group_photo
from scanner.testing.models import build_red_model
from scanner.testing.served import Served

REPO = Path(__file__).resolve().parents[1]

DATA = REPO.parent / "shared" / "datasets" / "faces" / "test"
DOCS = REPO / "docs"
VIEW = {"width": 1440, "height": 1000}


def tinted(source: Path, amount: float) -> Image.Image:
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    return Image.blend(rgb, Image.new("RGB", rgb.size, (255, 0, 0)), amount)


def make_pile(root: Path) -> Path:
    fakes, reals = sorted((DATA / "fake").iterdir()), sorted((DATA / "real").iterdir())
    pile = root / "uploads"
    gallery = pile / "2024-05" / "partner-gallery-import"
    signups = pile / "2024-06" / "new-signups"
    for folder in (gallery, signups):
        folder.mkdir(parents=True)
    for i, source in enumerate(fakes[::7][:40] + reals[::5][:40]):
        folder, name = (signups, f"avatar {i} (final).jpg") if i % 9 == 0 else (gallery, "")
        name = name or f"profile_{i:03d}_{source.stem}.jpg"
        tinted(source, (i * 37 % 80) / 160).save(folder / name, quality=90)
    events = pile / "2024-05" / "events" / "team-offsite-photos"
    events.mkdir(parents=True)
    redder = root / "redder"  # AI faces tinted so that the test model flags them
    redder.mkdir()
    for source in fakes[:30]:
        tinted(source, 0.35).save(redder / source.name, quality=95)
    for n in range(6):
        sources = [*sorted(redder.iterdir())[n * 5 : n * 5 + 3], *reals[n * 5 : n * 5 + 3]]
        sizes = [500, 260, 120, 60, 30, 10]
        canvas = (3000, 4000) if n % 2 else (4000, 3000)
        photo, _ = group_photo(sources, sizes, canvas=canvas, seed=n)
        photo.save(events / f"IMG_{4821 + n}.jpg", quality=90)
    whole = (gallery / next(iter(sorted(p.name for p in gallery.iterdir())))).read_bytes()
    (gallery / "profile_999_upload-interrupted.jpg").write_bytes(whole[: len(whole) // 2])
    return pile


def shrink(path: Path) -> None:
    """256 colours, as the docs' other pictures: a third of the bytes, no visible change."""
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def report_pictures(root: Path, browser: object) -> None:
    faces = FaceCropSpec(output_size=32, min_face=24)
    model = build_red_model(root / "faces.onnx", PreprocessSpec(input_size=32, faces=faces))
    command = [sys.executable, "-m", "scanner", "uploads", "--model", model.name, "--threshold"]
    command += ["0.6", "--thumbnails", "all", "--out", "report.html", "-q"]
    subprocess.run(command, cwd=root, check=False)
    page = browser.new_page(viewport=VIEW)  # type: ignore[attr-defined]
    page.goto((root / "report.html").as_uri())
    page.wait_for_selector("#rows .row")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.screenshot(path=str(DOCS / "html-report.png"))
    shrink(DOCS / "html-report.png")
    group = page.locator("#rows .row", has_text="team-offsite-photos").first
    group.locator(".thumb").click()
    page.wait_for_selector("#lb-view .faces img")
    page.screenshot(path=str(DOCS / "html-report-faces.png"))
    shrink(DOCS / "html-report-faces.png")
    page.close()


def review_pictures(root: Path, browser: object) -> None:
    # Generated faces (Stable Diffusion, StyleGAN); ciplab's fakes are photo edits, which the
    # shipped models were not trained to flag (the model card).
    fakes = sorted(p for p in (DATA / "fake").iterdir() if not p.name.startswith("ciplab"))
    reals = sorted((DATA / "real").iterdir())
    picked = root / "picked"
    picked.mkdir()
    for source in [*fakes[3::40][:5], *reals[5::60][:3]]:
        shutil.copy(source, picked / source.name)
    for name in ("IMG_4821.jpg", "IMG_4824.jpg"):
        shutil.copy(root / "uploads" / "2024-05" / "events" / "team-offsite-photos" / name, picked)
    (picked / "notes.jpg").write_text("meeting notes, saved with the wrong extension\n")
    with Served("--provider", "cpu") as server:
        page = browser.new_page(viewport=VIEW)  # type: ignore[attr-defined]
        page.goto(server.url)
        page.wait_for_selector("body[data-state=ready]")
        files = sorted(str(p) for p in picked.iterdir())
        page.set_input_files("#pick-files", files)
        page.wait_for_selector(f"body[data-done='{len(files)}']", timeout=300_000)
        page.screenshot(path=str(DOCS / "serve-review.png"), full_page=True)
        shrink(DOCS / "serve-review.png")
        page.close()


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        root = Path(tmp)
        make_pile(root)
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        wanted = sys.argv[1:] or ["report", "review"]  # or name one of them
        if "report" in wanted:
            report_pictures(root, browser)
        if "review" in wanted:
            review_pictures(root, browser)
        browser.close()


if __name__ == "__main__":
    main()
