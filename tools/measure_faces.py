"""Measure the face detector and the crop on the shared datasets (the figures in the face issue).

    python tools/measure_faces.py recall    --data ../shared/datasets/faces2
    python tools/measure_faces.py min-face  --data ../shared/datasets/faces2
    python tools/measure_faces.py timing
    python tools/measure_faces.py groups    --data ../shared/datasets/faces2
    python tools/measure_faces.py stability --data ../shared/datasets/faces2
    python tools/measure_faces.py camera    --data ../shared/datasets/faces2
    python tools/measure_faces.py framing   --data ../shared/datasets/faces2
    python tools/measure_faces.py draft     --data ../shared/datasets/faces2
    python tools/measure_faces.py turn-small --data ../shared/datasets/faces2
    python tools/measure_faces.py box-shift  --data ../shared/datasets/faces2 [--model clip]
    python tools/measure_faces.py found      --data ../shared/datasets/faces3
    python tools/measure_faces.py half-set   --data ../shared/datasets/faces3 --out DIR
    python tools/measure_faces.py retry-cost

Every figure is printed with what it counts. Seeds are fixed, so a rerun gives the same counts
(times vary with the machine's load: each is the median of several runs).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

from scanner.decode import decode  # noqa: E402
from scanner.faces import (  # noqa: E402
    Face,
    FaceCropSpec,
    FaceDetector,
    FacePhoto,
    box_iou,
    crop_square,
    face_crop,
    mirrored_region,
)
from scanner.preprocess import RESIZE_FILTERS, fit_geometry, normalize  # noqa: E402
from scanner.session import ModelSession  # noqa: E402
from scanner.testing.group_photos import (  # noqa: E402  (the tests' builder)
    PastedFace,
    group_photo,
    photo_background,
)

MODEL = REPO / "models" / "centerface.onnx"  # this tree's file, whatever is installed


def detector(detect_size: int = 640, threads: int = 2) -> FaceDetector:
    return FaceDetector(MODEL, provider="cpu", threads=threads, detect_size=detect_size)


def test_images(data: Path) -> list[Path]:
    return sorted(data.glob("test/*/*.jpg"))


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def source_of(path: Path) -> str:
    return path.name.split("_")[0]


def median_ms(
    run: Callable[[], object], repeat: int = 15, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median milliseconds of `run` by `clock` (process_time: CPU time, which other users of
    shared cores do not inflate)."""
    run()  # warm-up
    times = []
    for _ in range(repeat):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times) * 1000


def recall(args: argparse.Namespace) -> None:
    """Share of test images with at least one face: as they are, enlarged to 640, and pasted at
    native size into a 1280 x 960 photo that the detector sees at 640 x 480 (faces at half size)."""
    small, large = detector(), detector()
    paths = test_images(args.data)
    found: dict[str, dict[str, int]] = {}
    canvas = photo_background(1280, 960, seed=1)
    rng = np.random.default_rng(0)
    for path in paths:
        image = rgb(path)
        enlarged = image.resize((640, 640), Image.Resampling.BILINEAR)
        scene = canvas.copy()
        scene.paste(image, (int(rng.integers(0, 1000)), int(rng.integers(0, 680))))
        row = found.setdefault(source_of(path), {"n": 0, "native": 0, "x640": 0, "in-scene": 0})
        row["n"] += 1
        row["native"] += bool(small.detect(image))
        row["x640"] += bool(large.detect(enlarged))
        row["in-scene"] += bool(large.detect(scene))
    total = {k: sum(r[k] for r in found.values()) for k in ("n", "native", "x640", "in-scene")}
    for name, row in [*sorted(found.items()), ("all", total)]:
        n = row["n"]
        cells = "  ".join(f"{k} {row[k] / n:6.1%}" for k in ("native", "x640", "in-scene"))
        print(f"{name:8} n={n:4}  {cells}")


def min_face(args: argparse.Namespace) -> None:
    """Recall by face size: test images shrunk to S x S and pasted into a 640 x 480 photo (the
    detector's own resolution, so no further resize). Face size = the box found at native size,
    scaled to S."""
    det = detector()
    paths = test_images(args.data)[:: max(1, len(test_images(args.data)) // 200)]
    native = {path: det.detect(rgb(path)) for path in paths}
    paths = [path for path in paths if native[path]]
    canvas = photo_background(640, 480, seed=2)
    for side in (16, 20, 24, 28, 32, 40, 48, 64, 96):
        hits, face_px = 0, []
        for i, path in enumerate(paths):
            image = rgb(path)
            face_px.append(native[path][0].size * side / max(image.size))
            scene = canvas.copy()
            scene.paste(
                image.resize((side, side), Image.Resampling.LANCZOS), (40 + i % 9 * 60, 200)
            )
            hits += any(f.box[0] >= 30 for f in det.detect(scene))
        px = statistics.median(face_px)
        print(f"image {side:3} px (face box ~{px:5.1f} px): found {hits / len(paths):6.1%}")


def timing(args: argparse.Namespace) -> None:
    """Median time of one detect() call (resize + network + decode) by input size and threads:
    wall clock, and the CPU time of the whole process (with one thread: the wall time it would
    take on an idle core)."""
    rng = np.random.default_rng(0)
    sizes = ((128, 128), (256, 256), (640, 480), (640, 640), (1000, 750))
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    for threads in (1, 2):
        det = detector(threads=threads)
        for image in images:
            note = " (resized to 640x480 inside)" if image.width > 640 else ""
            call = functools.partial(det.detect, image)
            wall, cpu = median_ms(call), median_ms(call, clock=time.process_time)
            print(
                f"threads {threads}  {image.width}x{image.height}: {wall:6.1f} ms wall, "
                f"{cpu:6.1f} ms CPU{note}"
            )


def match(det_boxes: list[tuple[float, ...]], truth: tuple[float, ...]) -> float:
    if not det_boxes:
        return 0.0
    return float(box_iou(truth, np.asarray(det_boxes)).max())


def groups(args: argparse.Namespace) -> None:
    """Group photos: 6 test faces per 1600 x 1200 canvas, 40-400 px, log-uniform. A pasted face is
    found when a detection has IoU >= 0.5 with the box its image gave alone, moved to the canvas."""
    paths = test_images(args.data)
    ref = detector()
    alone: dict[Path, tuple] = {}
    for detect_size in (640, 960, 1280):
        det = detector(detect_size)
        rng = np.random.default_rng(3)  # the same canvases for every detect_size
        rows: list[tuple[int, float, float]] = []  # size, IoU vs source box, IoU vs square
        for canvas_index in range(args.canvases):
            picks = [paths[i] for i in rng.choice(len(paths), 6, replace=False)]
            sizes = [int(s) for s in np.exp(rng.uniform(np.log(40), np.log(400), 6))]
            photo, pasted = group_photo(picks, sizes, seed=canvas_index)
            boxes = [f.box for f in det.detect(photo)]
            for p in pasted:
                rows.append((p.square[2] - p.square[0], *ious(p, boxes, ref, alone)))
        print(f"detect_size {detect_size}: {len(rows)} faces on {args.canvases} canvases")
        for lo, hi in ((40, 60), (60, 100), (100, 200), (200, 401)):
            sub = [r for r in rows if lo <= r[0] < hi]
            if sub:
                hit = sum(r[1] >= 0.5 for r in sub) / len(sub)
                med = statistics.median(r[1] for r in sub)
                sq = statistics.median(r[2] for r in sub)
                print(
                    f"  image {lo:3}-{hi - 1:3} px: n={len(sub):3} found {hit:6.1%}  "
                    f"median IoU {med:.2f} (vs pasted square {sq:.2f})"
                )


def ious(
    p: PastedFace, boxes: list[tuple[float, ...]], ref: FaceDetector, alone: dict
) -> tuple[float, float]:
    if p.path not in alone:
        image = rgb(p.path)
        faces = ref.detect(image)
        alone[p.path] = (faces[0].box if faces else None, image.size)
    box, size = alone[p.path]
    truth = p.to_canvas(box, size) if box else tuple(float(v) for v in p.square)
    return match(boxes, truth), match(boxes, tuple(float(v) for v in p.square))


def stability(args: argparse.Namespace) -> None:
    """How far the box moves when the same image is saved again as JPEG q75 (largest of the four
    coordinate shifts, pixels of the 160-256 px images), and the crop's mean pixel change."""
    det = detector()
    shifts, changes = [], []
    for path in test_images(args.data)[::3]:
        image = rgb(path)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=75)
        again = Image.open(buf).convert("RGB")
        a, b = det.detect(image), det.detect(again)
        if a and b:
            shifts.append(float(np.abs(np.subtract(a[0].box, b[0].box)).max()))
            ca = np.asarray(face_crop(image, a[0]), np.float32)
            cb = np.asarray(face_crop(image, b[0]), np.float32)  # same pixels, moved crop only
            changes.append(float(np.abs(ca - cb).mean()))
    q = np.percentile(shifts, [50, 90, 99])
    print(
        f"{len(shifts)} images: box shift median {q[0]:.2f} px, p90 {q[1]:.2f}, p99 {q[2]:.2f}, "
        f"max {max(shifts):.2f}; crop change from the moved box alone: mean "
        f"{statistics.mean(changes):.2f}/255, p90 {np.percentile(changes, 90):.2f}"
    )


def camera(args: argparse.Namespace) -> None:
    """12-MP JPEGs (4000 x 3000, q90) with 4 test faces pasted at 150-1200 px: time of a full
    decode, FacePhoto's draft decode, detection, and the crops (with the decodes they need);
    crops cut from the drafts against crops cut from the full decode."""
    paths = test_images(args.data)
    spec = FaceCropSpec()
    det = detector(spec.detect_size)
    rows: dict[str, list[float]] = {k: [] for k in ("full", "draft", "detect", "crops")}
    found, diffs, sizes = [], [], []
    for seed in range(args.photos):
        picks = [paths[i] for i in np.random.default_rng(seed).choice(len(paths), 4, replace=False)]
        photo, _ = group_photo(picks, [150, 300, 600, 1200], canvas=(4000, 3000), seed=seed)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=90)
        data = buf.getvalue()
        sizes.append(len(data))
        rows["full"].append(median_ms(functools.partial(decode, data), 3))
        rows["draft"].append(median_ms(functools.partial(FacePhoto, data, spec.detect_size), 3))
        source = FacePhoto(data, spec.detect_size)
        rows["detect"].append(median_ms(functools.partial(source.detect, det, spec.min_face), 3))
        faces = source.detect(det, spec.min_face)
        found.append(len(faces))
        crop_ms = []
        for _ in range(3):
            fresh = FacePhoto(data, spec.detect_size)  # only the detection decode so far
            start = time.perf_counter()
            crops = [fresh.crop(face, spec) for face in faces]
            crop_ms.append((time.perf_counter() - start) * 1000)
        rows["crops"].append(statistics.median(crop_ms))
        full = decode(data).image
        for face, crop in zip(faces, crops, strict=True):
            ref = face_crop(full, face, spec.output_size, spec.margin, spec.align)
            diffs.append(float(np.abs(np.subtract(crop, ref, dtype=np.float32)).mean()))
    print(
        f"{args.photos} photos, {statistics.median(sizes) / 1e6:.1f} MB median, "
        f"{sum(found)} of {4 * args.photos} faces found at detect_size {spec.detect_size}"
    )
    for key, values in rows.items():
        print(f"{key:7} median {statistics.median(values):7.1f} ms per photo")
    print(
        f"crop from draft vs from full decode: mean abs diff {statistics.mean(diffs):.2f}/255, "
        f"max {max(diffs):.2f} over {len(diffs)} crops"
    )


def draft(args: argparse.Namespace) -> None:
    """How far a crop cut from a 1/2, 1/4 or 1/8 decode is from the one cut from the full decode,
    by how many decoded pixels the crop's square spans per output pixel (12-MP JPEGs, faces of
    400-1600 px, 256-px crops)."""
    paths = test_images(args.data)
    det, spec = detector(1280), FaceCropSpec(output_size=256)
    by_ratio: dict[str, list[float]] = {"<1": [], "1-2": [], ">=2": []}
    for seed in range(args.photos):
        picks = [paths[i] for i in np.random.default_rng(seed).choice(len(paths), 4, replace=False)]
        photo, _ = group_photo(picks, [400, 800, 1200, 1600], canvas=(4000, 3000), seed=seed)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=90)
        full = decode(buf.getvalue()).image
        for face in det.detect(full):
            ref = np.asarray(face_crop(full, face, 256, spec.margin, spec.align), np.float32)
            for factor in (2, 4, 8):
                image = decode(buf.getvalue(), draft_size=3000 // factor).image
                local = face.scaled(image.width / full.width, image.height / full.height)
                crop = np.asarray(face_crop(image, local, 256, spec.margin, spec.align))
                ratio = face.size * (1 + 2 * spec.margin) / factor / 256
                key = "<1" if ratio < 1 else "1-2" if ratio < 2 else ">=2"
                by_ratio[key].append(float(np.abs(crop - ref).mean()))
    for key, diffs in by_ratio.items():
        if diffs:
            print(
                f"square/output {key:3}: n={len(diffs):3} mean abs diff vs full decode "
                f"{statistics.mean(diffs):.2f}/255 (max {max(diffs):.2f})"
            )


def framing(args: argparse.Namespace) -> None:
    """Face box / image side per source (which margin reproduces the dataset's framing), the
    share of a crop that lies outside the image by margin, landmark order and eye angles."""
    det = detector()
    ratio: dict[str, list[float]] = {}
    outside: dict[float, list[float]] = {m: [] for m in (0.0, 0.1, 0.2, 0.3, 0.5)}
    left_first, angles = 0, []
    for path in test_images(args.data)[::3]:
        image = rgb(path)
        faces = det.detect(image)
        if not faces:
            continue
        face = faces[0]
        ratio.setdefault(source_of(path), []).append(face.size / max(image.size))
        for margin, values in outside.items():
            cx, cy, side, _ = crop_square(face, margin, align=False)
            inside = [
                min(hi, c + side / 2) - max(0, c - side / 2)
                for c, hi in ((cx, image.width), (cy, image.height))
            ]
            values.append(1 - inside[0] * inside[1] / side**2)
        (lx, ly), (rx, ry) = face.landmarks[:2]
        left_first += lx < rx
        angles.append(abs(np.degrees(np.arctan2(ry - ly, rx - lx))))
    for name, values in sorted(ratio.items()):
        m = statistics.median(values)
        print(
            f"{name:7} n={len(values):3}  face/image side median {m:.2f}: "
            f"margin {(1 / m - 1) / 2:.2f} gives the dataset's framing"
        )
    for margin, values in outside.items():
        print(
            f"margin {margin:.1f}: crop area outside the image (mirrored) median "
            f"{statistics.median(values):5.1%}, p90 {np.percentile(values, 90):5.1%}"
        )
    print(
        f"landmark 0 left of landmark 1 in {left_first} of {len(angles)}; |eye angle| median "
        f"{np.median(angles):.1f} deg, p90 {np.percentile(angles, 90):.1f}, "
        f"max {max(angles):.1f}"
    )


def turn_small(args: argparse.Namespace) -> None:
    """A cheaper crop, tried to speed up 256-px scans: shrink the square's region to the output
    scale first, then turn it (128 x 128 bilinear affine, not one at the face's own size). Its
    time against face_crop's, and how far it moves the model's scores (default: accurate)."""
    session = ModelSession(args.model, "cpu")
    spec = session.info.preprocess
    assert spec.faces is not None
    det, size, margin = detector(), spec.faces.output_size, spec.faces.margin
    shipped, smaller, times = [], [], {"face_crop": 0.0, "turn small": 0.0}
    for path in test_images(args.data)[::2]:
        image = rgb(path)
        for face in det.detect(image)[:1]:
            start = time.process_time()
            shipped.append(face_crop(image, face, size, margin, align=True))
            middle = time.process_time()
            smaller.append(turned_at_output_scale(image, face, size, margin))
            times["face_crop"] += middle - start
            times["turn small"] += time.process_time() - middle
    for name, seconds in times.items():
        print(f"{name:10}: {seconds / len(shipped) * 1000:.2f} ms CPU per crop")
    print(score_change(session, shipped, smaller))


def score_change(session: ModelSession, crops: list[Image.Image], others: list[Image.Image]) -> str:
    """How far the model's scores move from `crops` to `others` (the same faces)."""
    spec = session.info.preprocess
    a, b = (
        session.predict(normalize(np.concatenate([fit_geometry(c, spec) for c in cs]), spec))
        for cs in (crops, others)
    )
    moved, threshold = np.abs(a - b), session.info.threshold
    flips = int(((a >= threshold) != (b >= threshold)).sum())
    return (
        f"{len(a)} faces: scores moved {moved.mean():.4f} on average (p90 "
        f"{np.percentile(moved, 90):.3f}, max {moved.max():.3f}), {flips} labels flipped at "
        f"threshold {threshold:.4f}"
    )


def box_shift(args: argparse.Namespace) -> None:
    """How far a model's scores (default: accurate) move when the face box moves a little:
    detected at the scan's resolution for the default --min-face (64: a 256-px image at 128 px)
    against --min-face 32 (at 256 px), and the default box shifted right by one pixel."""
    session = ModelSession(args.model, "cpu")
    faces = session.info.preprocess.faces
    assert faces is not None
    det = detector(faces.detect_size, threads=2)
    crops: dict[str, list[Image.Image]] = {"default": [], "min-face 32": [], "1 px right": []}
    for path in test_images(args.data)[::2]:
        photo = FacePhoto(path.read_bytes(), faces.detect_size)
        coarse, fine = photo.detect(det, faces.min_face), photo.detect(det, 32)
        if not (coarse and fine):
            continue
        x0, y0, x1, y1 = coarse[0].box
        moved = Face((x0 + 1, y0, x1 + 1, y1), coarse[0].score, coarse[0].landmarks)
        for name, face in zip(crops, (coarse[0], fine[0], moved), strict=True):
            crops[name].append(photo.crop(face, faces))
    for name in ("min-face 32", "1 px right"):
        print(f"{name}: {score_change(session, crops['default'], crops[name])}")


def found(args: argparse.Namespace) -> None:
    """How many test images get a face of --min-face (64 px) or more, so that faces, not the
    whole image, are scored: per source (MANIFEST.csv's generator), without and with the grey
    frame for close-ups (FaceDetector's close_ups), on each image and on its central half (the
    face then fills the frame, as in an avatar or a tight crop). Detection as the scanner runs
    it (FacePhoto.detect at the default detect_size and min_face)."""
    spec = FaceCropSpec()
    det = detector(spec.detect_size, threads=1)
    with open(args.data / "MANIFEST.csv", newline="") as f:
        sources = {row["path"]: row["generator"] for row in csv.DictReader(f)}
    columns = ("whole, before", "whole, after", "half, before", "half, after")
    counts: dict[str, Counter[str]] = {}
    for path in test_images(args.data):
        count = counts.setdefault(sources[path.relative_to(args.data).as_posix()], Counter())
        count["images"] += 1
        data = path.read_bytes()
        for name, photo in (("whole", FacePhoto(data)), ("half", FacePhoto(central_half(data)))):
            for when, close_ups in (("before", False), ("after", True)):
                faces = photo.detect(det, spec.min_face, close_ups)
                count[f"{name}, {when}"] += any(face.size >= spec.min_face for face in faces)
    total = sum(counts.values(), Counter())
    print("| source | images | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for source, count in [*sorted(counts.items()), ("all", total)]:
        cells = " | ".join(str(count[c]) for c in columns)
        print(f"| {source} | {count['images']} | {cells} |")


def retry_cost(args: argparse.Namespace) -> None:
    """What the grey-framed second try costs a photo with no face (a noisy gradient JPEG): the
    median CPU time of FacePhoto.detect without and with it, at the scanner's settings."""
    spec, det = FaceCropSpec(), detector(FaceCropSpec.detect_size, threads=1)
    rng = np.random.default_rng(0)
    for w, h in ((4000, 3000), (256, 256)):
        y, x = np.mgrid[0:h, 0:w]
        pixels = np.stack([x * 255 / w, y * 255 / h, np.full_like(x, 90)], -1)
        pixels = np.clip(pixels + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG")
        photo = FacePhoto(out.getvalue())
        for close_ups in (False, True):
            times = []
            for _ in range(7):
                start = time.process_time()
                assert not photo.detect(det, spec.min_face, close_ups)
                times.append(time.process_time() - start)
            print(f"{w} x {h}, close_ups={close_ups}: {statistics.median(times) * 1000:.1f} ms CPU")


def half_set(args: argparse.Namespace) -> None:
    """DATA's test split with every image cut to its central half (PNG, lossless), in --out:
    close-ups to score with `facescan-train evaluate OUT --split test`. Its train and val are
    links to DATA's (the trainer's layout has all three), MANIFEST.csv names the new files."""
    with open(args.data / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["split"] != "test":
            continue
        half = central_half((args.data / row["path"]).read_bytes())
        row["path"] = str(Path(row["path"]).with_suffix(".png").as_posix())
        (args.out / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        (args.out / row["path"]).write_bytes(half)
    for split in ("train", "val"):
        (args.out / split).symlink_to((args.data / split).resolve(), target_is_directory=True)
    with open(args.out / "MANIFEST.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"the test split cut to its central half in {args.out}")


def central_half(data: bytes) -> bytes:
    """The image cut to its central half (half its width and height), as lossless PNG."""
    image = decode(data).image
    w, h = image.size
    box = (w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2)
    out = io.BytesIO()
    image.crop(box).save(out, "PNG")
    return out.getvalue()


def turned_at_output_scale(image: Image.Image, face: Face, size: int, margin: float) -> Image.Image:
    cx, cy, side, angle = crop_square(face, margin, align=True)
    reach = side / 2 * (abs(np.cos(angle)) + abs(np.sin(angle))) + 1
    left, top = int(np.floor(cx - reach)), int(np.floor(cy - reach))
    box = (left, top, int(np.ceil(cx + reach)), int(np.ceil(cy + reach)))
    region = mirrored_region(image, box)
    scale = min(1.0, size / side)
    shrunk = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    region = region.resize(shrunk, RESIZE_FILTERS["bilinear"])
    sx = region.width / (box[2] - box[0])
    cx, cy, side = (cx - left) * sx, (cy - top) * sx, side * sx
    cos, sin = np.cos(angle) * side / size, np.sin(angle) * side / size
    coeffs = (cos, -sin, cx - (cos - sin) * size / 2, sin, cos, cy - (sin + cos) * size / 2)
    return region.transform((size, size), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)


COMMANDS = {
    "recall": recall,
    "min-face": min_face,
    "timing": timing,
    "groups": groups,
    "stability": stability,
    "camera": camera,
    "framing": framing,
    "draft": draft,
    "turn-small": turn_small,
    "box-shift": box_shift,
    "found": found,
    "half-set": half_set,
    "retry-cost": retry_cost,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=list(COMMANDS))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/faces2")
    parser.add_argument("--canvases", type=int, default=40)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--model", default="accurate", help="turn-small, box-shift: NAME|FILE")
    parser.add_argument("--out", type=Path, help="half-set: the folder to write")
    args = parser.parse_args()
    COMMANDS[args.what](args)


if __name__ == "__main__":
    main()
