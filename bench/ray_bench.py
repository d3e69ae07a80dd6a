"""Engine benchmark: the same files scanned by the local engine and by Ray with 1 and 2 actors.

    python bench/ray_bench.py [--images 500] [--size 256] [--model PATH] [--repeat 1]

Writes N JPEGs (gradients plus noise, like a photo) into a temporary folder and times the whole
`facescan` process (start-up, Ray start and stop included: what a user waits for) for each
engine, writing a CSV report. Without `--model` it builds the tests' tiny "mean red" ONNX model
(input 224, needs the [dev] extra's onnx), so inference costs almost nothing and the figures
compare the engines' decoding and overhead; pass a real detector to include inference. Each
report is checked against the local engine's: same rows, scores within 1e-5. Needs facescan[ray].
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import write_jpegs  # noqa: E402  (the same generated photos as make bench)
from scanner.preprocess import PreprocessSpec  # noqa: E402
from scanner.testing.models import build_red_model  # the tests' model builder, not a copy

ENGINES = {
    "local": [],
    "ray, 1 actor": ["--engine", "ray", "--actors", "1"],
    "ray, 2 actors": ["--engine", "ray", "--actors", "2"],
}


def run(folder: Path, model: Path, out: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "scanner", str(folder), "--model", str(model)]
    command += ["--provider", "cpu", "--out", str(out), "--exit-zero", "--quiet", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def same_report(a: Path, b: Path) -> bool:
    with open(a, newline="") as fa, open(b, newline="") as fb:
        rows_a, rows_b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    if [r["path"] for r in rows_a] != [r["path"] for r in rows_b]:
        return False
    pairs = zip(rows_a, rows_b, strict=True)
    return all(abs(float(x["score"]) - float(y["score"])) <= 1e-5 for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        write_jpegs(folder, args.images, args.size)
        model = args.model or build_red_model(
            Path(tmp) / "red.onnx", PreprocessSpec(input_size=224)
        )
        seconds, same = {}, {}
        for name, extra in ENGINES.items():
            out = Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}.csv"
            seconds[name] = statistics.median(
                run(folder, model, out, extra) for _ in range(args.repeat)
            )
            same[name] = same_report(Path(tmp) / "local.csv", out)
    print(f"{args.images} JPEGs of {args.size}x{args.size}, whole `facescan` process")
    print(f"{'engine':<15} {'seconds':>8} {'img/s':>7} {'vs local':>9}  same report")
    for name, s in seconds.items():
        ratio = seconds["local"] / s
        print(f"{name:<15} {s:>8.1f} {args.images / s:>7.1f} {ratio:>8.2f}x  {same[name]}")


if __name__ == "__main__":
    main()
