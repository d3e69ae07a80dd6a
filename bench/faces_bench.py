"""Face-crop scans next to what the machine allows: camera photos and 256-px faces.

    python bench/faces_bench.py [--model M.onnx] [--camera 24] [--faces 400]
                                [--data ../shared/datasets/faces2]

Builds its inputs from the shared faces set ($FACESCAN_DATA or --data; without it, says so and
stops): 12-MP JPEGs (4000 x 3000, q90) with three test faces pasted at 300 to 1,000 px each, and
256-px test faces as they are. Then, per set, with every core busy (one worker per core, as a
scan runs), the bounds of each stage alone:

- decode: Pillow's full decode; decode_scaled: the reduced (DCT-scaled) decode detection runs
  on (scanner.faces.FacePhoto);
- detect: the face detector on those decodes (one onnxruntime thread per worker);
- classify: the model on ready crops, as many crops per image as faces found, the better of
  one session on all cores (batches of 32) and a thread per core (batches of 8, one
  onnxruntime thread each: how a CPU scan scores);

the ceiling 1 / (1/decode_scaled + 1/detect + 1/classify) (the stages share the cores), and
`facescan DIR --out r.csv` as a whole process, start-up included (median of 3), with its ratio to
the ceiling. The issue's goals: camera photos at 0.6 of it or more, 256-px faces at 0.85.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the group-photo builder the tests use

from faces_helpers import group_photo  # noqa: E402

from scanner.decode import available_cores, decode  # noqa: E402
from scanner.faces import FacePhoto, shared_detector  # noqa: E402
from scanner.preprocess import fit_geometry, normalize  # noqa: E402
from scanner.session import ModelSession, default_model_path  # noqa: E402

CANVAS = (4000, 3000)
FACE_SIZES = (1000, 600, 300)  # pasted image sides: faces of about 750, 450 and 225 px


def camera_photos(faces: list[Path], folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        picked = [faces[(3 * i + k) % len(faces)] for k in range(len(FACE_SIZES))]
        photo, _ = group_photo(picked, list(FACE_SIZES), canvas=CANVAS, seed=i)
        photo.save(folder / f"camera{i:03}.jpg", quality=90)
    return folder


def parallel_rate(work: Callable[[bytes], object], items: list[bytes], rounds: int = 3) -> float:
    """Items per second of `work` over `items` with one thread per core (the best of rounds:
    the machine is shared)."""
    best = 0.0
    with ThreadPoolExecutor(available_cores()) as pool:
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(work, items))
            best = max(best, len(items) / (time.perf_counter() - start))
    return round(best, 1)


def stage_bounds(files: list[Path], model: Path) -> dict[str, float]:
    """Each stage alone, on these files, every core busy."""
    session = ModelSession(model, "cpu")
    spec = session.info.preprocess
    faces = spec.faces
    if faces is None:
        raise SystemExit(f"{model} scores whole images: this benchmark is for face-crop models")
    datas = [f.read_bytes() for f in files]
    detector = shared_detector(faces.detect_size, "cpu", os.getpid())
    photos = [FacePhoto(d, faces.detect_size) for d in datas]
    found = [photo.detect(detector, faces.min_face) for photo in photos]
    units = sum(max(1, sum(f.size >= faces.min_face for f in fs)) for fs in found)
    crops = np.concatenate(
        [
            fit_geometry(crop, spec)
            for photo, fs in zip(photos, found, strict=True)
            for crop in photo.crops(fs, faces)
        ]
        or [np.zeros((1, spec.input_size, spec.input_size, 3), np.uint8)]
    )
    per_unit = crops_per_second(model, normalize(crops, spec))
    return {
        "decode_img_s": parallel_rate(lambda d: decode(d), datas),
        "decode_scaled_img_s": parallel_rate(lambda d: FacePhoto(d, faces.detect_size), datas),
        "detect_img_s": parallel_rate(
            lambda i: photos[i].detect(detector, faces.min_face), list(range(len(photos)))
        ),
        "classify_img_s": round(per_unit * len(files) / units, 1),
        "faces_scored_per_image": round(units / len(files), 2),
    }


def crops_per_second(model: Path, crops: np.ndarray) -> float:
    """The classifier alone on ready crops, the better of its two ways to use the cores: one
    session on all of them (onnxruntime's own threads, batches of 32), or a thread per core
    scoring batches of 8 with one onnxruntime thread each (how a CPU scan scores)."""
    return max(
        scoring_rate(ModelSession(model, "cpu"), crops, 32, callers=1),
        scoring_rate(ModelSession(model, "cpu", threads=1), crops, 8, available_cores()),
    )


def scoring_rate(
    session: ModelSession, crops: np.ndarray, size: int, callers: int, seconds: float = 3
) -> float:
    """Crops per second with `callers` threads each scoring batches of `size`."""
    batch = np.resize(crops, (size, *crops.shape[1:]))  # repeats the crops to fill it
    session.predict(batch)  # warm-up

    def score_until(deadline: float) -> int:
        done = 0
        while time.perf_counter() < deadline:
            session.predict(batch)
            done += size
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        done = sum(pool.map(score_until, [start + seconds] * callers))
    return done / (time.perf_counter() - start)


def scan_seconds(folder: Path, model: Path, out: Path, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "scanner", str(folder), "--model", str(model), "-q",
             "--out", str(out), "--exit-zero"],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(files: list[Path], folder: Path, model: Path, out: Path) -> dict[str, float]:
    bounds = stage_bounds(files, model)
    stages = ("decode_scaled_img_s", "detect_img_s", "classify_img_s")
    ceiling = 1 / sum(1 / bounds[s] for s in stages)
    end_to_end = len(files) / scan_seconds(folder, model, out)
    return {
        **bounds,
        "shared_core_ceiling_img_s": round(ceiling, 1),
        "end_to_end_img_s": round(end_to_end, 1),
        "vs_ceiling": round(end_to_end / ceiling, 3),
    }


def listed(folder: Path) -> Iterable[Path]:
    return sorted(folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--camera", type=int, default=24, help="12-MP photos to build")
    parser.add_argument("--faces", type=int, default=400, help="256-px test faces to scan")
    default_data = os.environ.get("FACESCAN_DATA", REPO.parent / "shared" / "datasets" / "faces")
    parser.add_argument("--data", type=Path, default=Path(default_data))
    args = parser.parse_args()
    tests = sorted(p for p in args.data.glob("test/*/*.jpg") if "ciplab" not in p.name)
    if not tests:
        print(f"skipped: no shared faces at {args.data} (set FACESCAN_DATA)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        camera = camera_photos(tests[::7], root / "camera", args.camera)
        small = root / "faces256"
        small.mkdir()
        picked = [p for p in tests if p.name.startswith(("z140k", "sdfd"))][: args.faces]
        for p in picked:
            (small / p.name).write_bytes(p.read_bytes())
        results = {
            "model": str(args.model),
            "camera_12mp": row(list(listed(camera)), camera, args.model, root / "c.csv"),
            "faces_256px": row(list(listed(small)), small, args.model, root / "s.csv"),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
