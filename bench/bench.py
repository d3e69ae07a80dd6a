"""`make bench`: how fast a scan runs next to what the model and the decoder allow, in one run.

    python bench/bench.py [--model M.onnx] [--keras M.keras] [--images 2000] [--large 300]

Generates its own inputs (distinct 256-px and 1024-px JPEGs), then measures on this machine:
the notebook's Keras loop (one image per predict call) and Keras batched; onnxruntime alone on
ready tensors (the inference bound); decode + preprocess alone with the scanner's workers (the
input bound); `facescan DIR --out r.csv` as a whole process; peak RSS of scans of 1,000 and
10,000 files; `facescan --help`. Prints a table and writes it as JSON (bench-out/bench.json).
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from scanner.pipeline import Scanner, available_cores
from scanner.preprocess import normalize
from scanner.session import ModelSession, default_model_path
from scanner.walk import walk

REPO = Path(__file__).resolve().parent.parent


def write_jpegs(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """`count` distinct photo-like JPEGs: smooth gradients, a blob and noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        a, b, c = rng.uniform(0, 1, 3)
        blob = np.exp(-(((xx - a) ** 2 + (yy - b) ** 2) / (0.05 + 0.1 * c)))
        base = np.stack([xx * 200 * a, yy * 200 * b, blob * 255], axis=-1)
        pixels = base + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"img{i:05}.jpg", quality=85
        )
    return folder


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ort_bound(session: ModelSession, batch_size: int, seconds: float = 3.0) -> float:
    """img/s of onnxruntime alone on a ready batch, repeated for about `seconds`."""
    spec = session.info.preprocess
    n = spec.input_size
    crops = np.random.default_rng(0).integers(0, 256, (batch_size * spec.crops_per_image, n, n, 3))
    batch = normalize(crops.astype(np.uint8), spec)
    session.predict(batch)  # warm-up: first run allocates
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.predict(batch)
        done += batch_size
    return rate(done, time.perf_counter() - start)


def decode_bound(scanner: Scanner, folder: Path) -> float:
    """img/s of walking + decoding + cropping alone, with the scanner's worker pool."""
    start = time.perf_counter()
    count = sum(1 for _ in scanner._decode(walk([str(folder)])))
    return rate(count, time.perf_counter() - start)


def facescan_process(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, largest process) of one whole `facescan` process."""
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=False, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, "-c", code, sys.executable, "-m", "scanner", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def keras_rows(keras_path: Path | None, session: ModelSession, files: list[Path]) -> dict:
    """The notebook's way: model.predict per image, then batched. Skipped without [train]."""
    if keras_path is None or not keras_path.is_file():
        return {"note": "skipped: no Keras model (pass --keras RUN/model.keras)"}
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
    except ImportError:
        return {"note": "skipped: TensorFlow not installed (the [train] extra)"}
    from scanner.decode import load
    from scanner.preprocess import preprocess

    model = keras.models.load_model(keras_path, compile=False)
    spec = session.info.preprocess
    tensors = [preprocess(load(p).image, spec) for p in files]
    model.predict(tensors[0], verbose=0)
    one = timed(lambda: [model.predict(t, verbose=0) for t in tensors])
    stacked = np.concatenate(tensors)
    batched = timed(lambda: model.predict(stacked, batch_size=32, verbose=0))
    return {
        "keras_loop_img_s": rate(len(files), one),
        "keras_batched_img_s": rate(len(files), batched),
    }


def help_seconds(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scanner", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def machine() -> dict:
    import onnxruntime as ort

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    return {
        "cpu": cpu,
        "cores": available_cores(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path("fp32"))
    parser.add_argument("--int8", type=Path, default=default_model_path("int8"))
    parser.add_argument("--keras", type=Path, default=REPO / "models" / "facescan-default.keras")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--large", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "bench.json")
    args = parser.parse_args()

    results: dict = {"machine": machine(), "model": str(args.model)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small = write_jpegs(root / "small", args.images, 256)
        large = write_jpegs(root / "large", args.large, 1024, seed=1)
        scanner = Scanner(args.model, provider="cpu", batch_size=args.batch_size)
        session = scanner.session
        rows: dict = {"workers": scanner.workers, "batch_size": args.batch_size}
        rows["notebook"] = keras_rows(args.keras, session, sorted(small.iterdir())[:200])
        rows["ort_bound_img_s"] = ort_bound(session, args.batch_size)
        if args.int8.is_file():
            int8 = ModelSession(args.int8, provider="cpu")
            rows["int8"] = {"ort_bound_img_s": ort_bound(int8, args.batch_size)}
            seconds, _ = facescan_process(
                [
                    str(small),
                    "--model",
                    str(args.int8),
                    "-q",
                    "--out",
                    str(root / "int8.csv"),
                    "--exit-zero",
                ]
            )
            rows["int8"]["end_to_end_256px_img_s"] = rate(args.images, seconds)
        for name, folder, count in (("256px", small, args.images), ("1024px", large, args.large)):
            seconds, rss = facescan_process(
                [
                    str(folder),
                    "--model",
                    str(args.model),
                    "-q",
                    "--out",
                    str(root / f"{name}.csv"),
                    "--exit-zero",
                ]
            )
            rows[name] = {
                "decode_bound_img_s": decode_bound(scanner, folder),
                "end_to_end_img_s": rate(count, seconds),
                "end_to_end_peak_rss_mib": round(rss / 1024, 1),
            }
            bound = min(rows["ort_bound_img_s"], rows[name]["decode_bound_img_s"])
            rows[name]["end_to_end_vs_bound"] = round(rows[name]["end_to_end_img_s"] / bound, 3)
            loop = rows["notebook"].get("keras_loop_img_s")
            if loop:
                rows[name]["end_to_end_vs_notebook_loop"] = round(
                    rows[name]["end_to_end_img_s"] / loop, 1
                )
        if "int8" in rows:  # its bound: the smaller of int8 inference and 256-px decoding
            bound = min(rows["int8"]["ort_bound_img_s"], rows["256px"]["decode_bound_img_s"])
            rows["int8"]["end_to_end_vs_bound"] = round(
                rows["int8"]["end_to_end_256px_img_s"] / bound, 3
            )
        rows["rss"] = rss_rows(root, args.model)
        rows["help_seconds_median"] = help_seconds()
        rows["cuda"] = cuda_row(args.model, args.batch_size)
        results["rows"] = rows
    results["companions"] = companion_benches(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten to {args.out}")


def rss_rows(root: Path, model: Path) -> dict:
    """Peak RSS of whole scans of 1,000 and 10,000 small files: flat memory means equal."""
    out = {}
    for count in (1000, 10_000):
        folder = root / f"rss{count}"
        folder.mkdir()
        image = Image.new("RGB", (32, 32), (120, 80, 60))
        for i in range(count):
            (folder / f"{i // 1000:02}").mkdir(exist_ok=True)
            image.save(folder / f"{i // 1000:02}" / f"f{i:05}.jpg", quality=80)
        _, rss = facescan_process(
            [
                str(folder),
                "--model",
                str(model),
                "-q",
                "--out",
                str(root / f"rss{count}.jsonl"),
                "--exit-zero",
            ]
        )
        out[f"peak_rss_mib_{count}_files"] = round(rss / 1024, 1)
    out["ratio_10k_vs_1k"] = round(
        out["peak_rss_mib_10000_files"] / out["peak_rss_mib_1000_files"], 3
    )
    return out


def companion_benches(model: Path) -> dict[str, str]:
    """The Ray engine (local, 1 and 2 actors) and result-cache benchmarks, run as they are."""
    out = {}
    runs = {
        "ray": ["bench/ray_bench.py", "--images", "500", "--model", str(model)],
        "cache": ["bench/cache_bench.py", "--images", "200"],
    }
    for name, command in runs.items():
        if name == "ray" and importlib.util.find_spec("ray") is None:
            out[name] = "skipped: Ray not installed (the [ray] extra)"
            continue
        done = subprocess.run(
            [sys.executable, *command], cwd=REPO, capture_output=True, text=True, check=False
        )
        out[name] = (done.stdout or done.stderr).strip()
    return out


def cuda_row(model: Path, batch_size: int) -> dict:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"note": "no CUDA provider in this onnxruntime: CUDA rows skipped"}
    session = ModelSession(model, provider="cuda")
    return {"ort_bound_img_s": ort_bound(session, batch_size)}


def print_table(results: dict) -> None:
    print("machine:", json.dumps(results["machine"]))
    print("model:  ", results["model"])
    for key, value in results["rows"].items():
        if isinstance(value, dict):
            for sub, v in value.items():
                print(f"  {key:<10} {sub:<32} {v}")
        else:
            print(f"  {key:<43} {value}")
    for name, text in results.get("companions", {}).items():
        print(f"\n{name} benchmark:\n{text}")


if __name__ == "__main__":
    main()
