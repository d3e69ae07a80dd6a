"""Result-cache benchmark: a scan without cache, with a cold cache, and with a warm one.

    python bench/cache_bench.py [--images 200] [--size 1024] [--workers N] [--input-size 224]

Writes N photo-sized JPEGs (smooth gradients plus noise, like a photo) into a temporary folder,
builds the tests' tiny "mean red" ONNX model (needs the [dev] extra's onnx) with a resize to
`--input-size`, and times three `Scanner.scan` runs over the same tree in this process (model
loading excluded). The warm run hashes every file and decodes none. The tiny model costs almost
nothing, so the speed-up shown is the floor: with a real detector inference adds to the cold
runs only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import write_jpegs  # noqa: E402  (the same generated photos as make bench)
from scanner import Scanner  # noqa: E402
from scanner.preprocess import PreprocessSpec  # noqa: E402
from scanner.testing.models import build_red_model  # the tests' model builder, not a copy


def timed_scan(scanner: Scanner, folder: Path) -> tuple[float, int]:
    started = time.perf_counter()
    cached = sum(result.cached for result in scanner.scan([folder]))
    return time.perf_counter() - started, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--input-size", type=int, default=224)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "photos", Path(tmp) / "cache.sqlite"
        folder.mkdir()
        write_jpegs(folder, args.images, args.size)
        model = build_red_model(Path(tmp) / "red.onnx", PreprocessSpec(input_size=args.input_size))
        runs = {}
        for name, cache_file in (("no cache", None), ("cold cache", cache), ("warm cache", cache)):
            scanner = Scanner(model, provider="cpu", workers=args.workers, cache=cache_file)
            runs[name] = seconds, cached = timed_scan(scanner, folder)
            rate = args.images / seconds
            print(f"{name:>10}: {seconds:7.2f} s  {rate:7.1f} img/s  ({cached} from cache)")
        ratio = runs["no cache"][0] / runs["warm cache"][0]
        print(f"warm cache is {ratio:.1f}x faster than no cache ({args.images} x {args.size} px)")


if __name__ == "__main__":
    main()
