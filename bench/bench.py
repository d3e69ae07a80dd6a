"""`make bench`: how fast a scan runs next to what the model and the decoder allow, in one run.

    python bench/bench.py [--preset accurate|fast] [--model M.onnx] [--int8 M-int8.onnx]
                          [--keras M.keras]
                          [--images 2000] [--large 300] [--no-companions]

Generates its own inputs (distinct 256-px and 1024-px JPEGs), then measures on this machine:
the notebook's Keras loop (one image per predict call) and Keras batched; for the fp32 and the
int8 model, onnxruntime alone on ready tensors (the inference bound), decode + preprocess alone
with the scanner's workers (the input bound) and `facescan DIR --out r.csv` as a whole process,
with its ratios to the bounds; a one-file scan's wall time (start-up); the decode bound under
faster preprocessing settings; peak RSS of scans of 1,000 and 10,000 files; `facescan --help`;
the CUDA rows when a GPU is present; then the companion benchmarks in bench/ (Ray engine, result
cache, onnxruntime settings, C2PA credential reading). Prints a table and writes it as JSON
(bench-out/bench.json). A benchmark, not a test: it asserts nothing.
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
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from bounds import classifier_rates
from PIL import Image

from scanner.engines import EngineSettings
from scanner.engines.local import LocalEngine
from scanner.preprocess import PreprocessSpec, normalize
from scanner.session import SHIPPED, ModelSession, ProviderError, default_model_path
from scanner.threads import available_cores
from scanner.walk import walk
from scanner.work import Prepare

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


def ort_bound(model: Path, provider: str, batch_size: int) -> float:
    """img/s of onnxruntime alone on ready tensors, the better way (bounds.classifier_rates)."""
    spec = ModelSession(model, "cpu").info.preprocess
    n = spec.input_size
    crops = np.random.default_rng(0).integers(0, 256, (batch_size * spec.crops_per_image, n, n, 3))
    batch = normalize(crops.astype(np.uint8), spec)
    per_crop = max(classifier_rates(model, batch, provider, batch_size).values())
    return round(per_crop / spec.crops_per_image, 1)


def decode_bound(engine: LocalEngine, spec: PreprocessSpec, folder: Path) -> float:
    """img/s of walking + decoding + cropping alone, with the local engine's worker pool."""
    start = time.perf_counter()
    count = sum(1 for _ in engine.decode(walk([str(folder)]), Prepare(spec)))
    return rate(count, time.perf_counter() - start)


def facescan_process(target: Path, model: Path, provider: str, out: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, largest process) of one whole `facescan` process."""
    args = [str(target), "--model", str(model), "--provider", provider, "-q"]
    args += ["--out", str(out), "--exit-zero"]
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=False, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, "-c", code, sys.executable, "-m", "scanner", *args]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    return float(printed[0]), int(printed[1])


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
    parser.add_argument("--preset", choices=SHIPPED, default=SHIPPED[0], help="shipped model")
    parser.add_argument("--model", type=Path, help="fp32 .onnx [the preset's]")
    parser.add_argument("--int8", type=Path, help="int8 .onnx [the preset's]")
    parser.add_argument("--keras", type=Path, help="Keras model [models/facescan-PRESET.keras]")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--large", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "bench.json")
    parser.add_argument(
        "--no-companions", action="store_true", help="only this model's rows, not the other benches"
    )
    args = parser.parse_args()
    args.model = args.model or default_model_path("fp32", args.preset)
    args.int8 = args.int8 or default_model_path("int8", args.preset)
    args.keras = args.keras or REPO / "models" / f"facescan-{args.preset}.keras"

    results: dict = {"machine": machine(), "model": str(args.model)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sets = {
            "256px": write_jpegs(root / "small", args.images, 256),
            "1024px": write_jpegs(root / "large", args.large, 1024, seed=1),
        }
        models = {"fp32": args.model} | ({"int8": args.int8} if args.int8.is_file() else {})
        rows: dict = {"batch_size": args.batch_size, "workers": available_cores()}
        runs = [(precision, model, "cpu") for precision, model in models.items()]
        if has_cuda():  # the same rows again with inference on the GPU
            runs += [(precision, model, "cuda") for precision, model in models.items()]
        else:
            rows["cuda"] = "no CUDA provider in this onnxruntime: CUDA rows skipped"
        scanned = []
        for precision, model, provider in runs:
            key = precision if provider == "cpu" else f"{precision}_cuda"
            rows[key] = model_rows(model, provider, sets, root / key, args.batch_size)
            scanned.append(key)
        rows["decode_variants"] = decode_variants(args.model, sets)
        rows["rss"] = rss_rows(root, args.model)
        rows["help_seconds_median"] = help_seconds()
        # Last: TensorFlow's threads, once loaded, slow every process timed after it.
        small = sorted(sets["256px"].iterdir())[:200]
        rows["notebook"] = keras_rows(args.keras, ModelSession(args.model, "cpu"), small)
        for key in scanned:
            for name in sets:
                if row := rows[key].get(name):
                    row["vs_notebook_loop"] = vs_notebook(row["end_to_end_img_s"], rows["notebook"])
        results["rows"] = rows
    results["companions"] = {} if args.no_companions else companion_benches(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten to {args.out}")


def model_rows(
    model: Path, provider: str, sets: dict[str, Path], reports: Path, batch_size: int
) -> dict:
    """One model on one provider: its inference bound, start-up, and each image set's scan."""
    try:
        engine = LocalEngine(EngineSettings(model, provider, batch_size=batch_size))
    except ProviderError as e:  # e.g. CUDA listed, but its libraries fail to load
        return {"note": f"skipped: {e}"}
    inference = ort_bound(model, provider, batch_size)
    one_file = next(sets["256px"].iterdir())
    startup = startup_seconds(one_file, model, provider)
    out: dict = {"ort_bound_img_s": inference, "startup_seconds": startup}
    for name, folder in sets.items():
        report = reports.with_name(f"{reports.name}-{name}.csv")
        out[name] = end_to_end_row(engine, folder, report, inference, startup, provider)
    return out


def end_to_end_row(
    engine: LocalEngine,
    folder: Path,
    report: Path,
    inference: float,
    startup: float,
    provider: str,
) -> dict:
    """`facescan` as a whole process on one image set, next to that set's two bounds.

    vs_bound is the headline ratio: end to end / min(inference bound, decode bound). On CPU each
    bound is measured with every core to itself, but a scan runs both stages on the same cores,
    so the best a scan can do is the shared-core ceiling 1 / (1/decode + 1/inference);
    vs_shared_ceiling says how close the pipeline gets to that (not for CUDA, where inference
    leaves the cores). steady_img_s leaves out the start-up (a one-file scan's wall time). The
    scan runs three times; its median is kept."""
    count = sum(1 for _ in folder.iterdir())
    decode = decode_bound(engine, engine.info.preprocess, folder)
    model = engine.session.path
    runs = [facescan_process(folder, model, provider, report) for _ in range(3)]  # drift
    seconds, rss = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
    end_to_end = rate(count, seconds)
    row = {
        "decode_bound_img_s": decode,
        "end_to_end_img_s": end_to_end,
        "end_to_end_peak_rss_mib": round(rss / 1024, 1),
        "steady_img_s": rate(count, max(seconds - startup, 1e-3)),
        "vs_bound": round(end_to_end / min(decode, inference), 3),
    }
    if provider == "cpu":
        ceiling = 1 / (1 / decode + 1 / inference)
        row["shared_core_ceiling_img_s"] = round(ceiling, 1)
        row["vs_shared_ceiling"] = round(end_to_end / ceiling, 3)
    return row


def decode_variants(model: Path, sets: dict[str, Path]) -> dict:
    """The decode bound under faster preprocessing that a model can be trained with (the model
    card's "What was tried" has their accuracy): how far reduce-on-load and JPEG draft decoding
    move what limits camera-sized photos."""
    engine = LocalEngine(EngineSettings(model, "cpu"))
    shipped = engine.info.preprocess
    variants = {
        "as_shipped": shipped,
        "reducing_gap_1": replace(shipped, reducing_gap=1.0),
        "reducing_gap_1_jpeg_draft": replace(shipped, reducing_gap=1.0, jpeg_draft=True),
    }
    out = {}
    for name, spec in variants.items():
        out[name] = {f"{size}_img_s": decode_bound(engine, spec, d) for size, d in sets.items()}
    return out


def vs_notebook(end_to_end: float, notebook: dict) -> float | None:
    loop = notebook.get("keras_loop_img_s")
    return round(end_to_end / loop, 1) if loop else None


def startup_seconds(image: Path, model: Path, provider: str, runs: int = 3) -> float:
    """Median wall time of a whole `facescan` process that scans one file."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "one.csv"
        seconds = [facescan_process(image, model, provider, report)[0] for _ in range(runs)]
        return round(statistics.median(seconds), 3)


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
        _, rss = facescan_process(folder, model, "cpu", root / f"rss{count}.jsonl")
        out[f"peak_rss_mib_{count}_files"] = round(rss / 1024, 1)
    out["ratio_10k_vs_1k"] = round(
        out["peak_rss_mib_10000_files"] / out["peak_rss_mib_1000_files"], 3
    )
    return out


# The shipped models that score faces (not `fast`, which scores whole images); the clip ones
# scan fewer images (their encoder is 20-50 times slower).
FACE_CROP_MODELS = tuple(name for name in SHIPPED if name != "fast")


def faces_command(name: str) -> list[str]:
    fewer = ["--camera", "12", "--faces", "200"] if name.startswith("clip") else []
    return ["bench/faces_bench.py", "--model", str(default_model_path("fp32", name)), *fewer]


def companion_benches(model: Path) -> dict[str, str]:
    """Each face-crop model's scans (camera photos, 256-px faces) against the four-stage ceiling,
    what two cores give against one (bench/cores_bench.py), Ray engine (local, 1 and 2 actors),
    result-cache, HTTP service and C2PA reading benchmarks, run as they are."""
    out = {}
    runs = {
        **{f"faces ({name})": faces_command(name) for name in FACE_CROP_MODELS},
        "two cores": ["bench/cores_bench.py"],
        "ray": ["bench/ray_bench.py", "--images", "500", "--model", str(model)],
        "cache": ["bench/cache_bench.py", "--images", "200"],
        "onnxruntime settings": ["bench/ort_tuning.py"],
        "serve": ["bench/serve_bench.py", "--images", "2000"],
        "C2PA credentials": ["bench/provenance_bench.py"],
    }
    # name -> (the module it needs, the extra that brings it)
    extras = {
        "ray": ("ray", "[ray]"),
        "serve": ("uvicorn", "[serve]"),
        "C2PA credentials": ("c2pa", "[provenance]"),
    }
    for name, command in runs.items():
        module, extra = extras.get(name, ("", ""))
        if module and importlib.util.find_spec(module) is None:
            out[name] = f"skipped: {module} not installed (the {extra} extra)"
            continue
        done = subprocess.run(
            [sys.executable, *command], cwd=REPO, capture_output=True, text=True, check=False
        )
        out[name] = (done.stdout or done.stderr).strip()
    return out


def has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def print_table(results: dict) -> None:
    print("machine:", json.dumps(results["machine"]))
    print("model:  ", results["model"])
    for key, value in flatten(results["rows"]):
        print(f"  {key:<56} {value}")
    for name, text in results.get("companions", {}).items():
        print(f"\n{name} benchmark:\n{text}")


def flatten(rows: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in rows.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", value


if __name__ == "__main__":
    main()
