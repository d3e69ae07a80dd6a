"""C2PA benchmark: what reading Content Credentials costs a scan, unsigned photos first.

    python bench/provenance_bench.py [--images 1000] [--signed 50] [--repeat 7]

Writes photo-like JPEGs (the `make bench` generator) at 256 and 1024 px, and times the scanner's
`Prepare` (read, hash, decode, metadata, credential, resize) over each folder in this process,
one file after another, with the credential reading as shipped and with it forced off
(`scanner.work.read_credentials` replaced by a function that returns None), alternating the two
`--repeat` times and keeping each one's median. Times are this thread's CPU time, not wall time:
on a shared machine the wall time of a pass swings with other jobs' load by more than the
difference measured here. Unsigned photos are the goal's case (at most 5 %
slower); then the same for JPEGs signed with a C2PA credential (a throwaway certificate chain,
scanner/testing/c2pa_signing.py, needs cryptography), where the library really reads and
validates one.
Needs c2pa-python (the [provenance] extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import write_jpegs  # noqa: E402  (the same generated photos as make bench)
from scanner import credentials, work  # noqa: E402
from scanner.preprocess import PreprocessSpec  # noqa: E402
from scanner.testing.c2pa_signing import ai_generator, make_pki, sign  # the tests' signer
from scanner.walk import walk  # noqa: E402
from scanner.work import Prepare  # noqa: E402

SPEC = PreprocessSpec(input_size=224)  # whole images: the cheapest Prepare, the largest share


def prepare_seconds(folder: Path) -> float:
    """CPU seconds of one pass of Prepare over the folder, in this thread (no pool)."""
    prepare = Prepare(SPEC)
    items = list(walk([str(folder)]))
    started = time.thread_time()
    for item in items:
        prepared = prepare(item)
        assert prepared.error is None, prepared.error
    return time.thread_time() - started


def side_by_side(folder: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of a pass with the credential reading as shipped, and forced off."""
    shipped = work.read_credentials
    off: Callable[..., None] = lambda *args: None  # noqa: E731
    runs: dict[str, list[float]] = {"shipped": [], "off": []}
    prepare_seconds(folder)  # warm-up: page cache, imports, the library loaded once
    for i in range(repeat):
        order = ("shipped", "off") if i % 2 == 0 else ("off", "shipped")  # drift hits both
        for arm in order:
            work.read_credentials = shipped if arm == "shipped" else off  # type: ignore[assignment]
            try:
                runs[arm].append(prepare_seconds(folder))
            finally:
                work.read_credentials = shipped
    return statistics.median(runs["shipped"]), statistics.median(runs["off"])


def signed_copies(source: Path, folder: Path, count: int) -> Path:
    """The first `count` JPEGs of `source`, signed as an AI generator's output."""
    folder.mkdir()
    pki = make_pki()
    for path in sorted(source.iterdir())[:count]:
        (folder / path.name).write_bytes(sign(path.read_bytes(), "JPEG", ai_generator(), pki))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="unsigned 256-px JPEGs")
    parser.add_argument("--signed", type=int, default=50, help="signed JPEGs per size")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not credentials.available():
        sys.exit(f"skipped: c2pa-python is not installed ({credentials.INSTALL_HINT})")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sets = {
            "unsigned 256-px JPEGs": write_jpegs(root / "small", args.images, 256),
            "unsigned 1024-px JPEGs": write_jpegs(root / "large", args.images // 5, 1024, seed=1),
        }
        for size in ("256", "1024"):
            unsigned = sets[f"unsigned {size}-px JPEGs"]
            signed = signed_copies(unsigned, root / f"signed{size}", args.signed)
            sets[f"signed {size}-px JPEGs"] = signed
        print(f"Prepare, one thread, CPU time, median of {args.repeat} alternating passes")
        header = f"{'files':<24} {'count':>5} {'reading ms/file':>16} {'off ms/file':>12}"
        print(f"{header} {'cost':>8}")
        for name, folder in sets.items():
            count = sum(1 for _ in folder.iterdir())
            shipped, off = side_by_side(folder, args.repeat)
            cost = f"{(shipped / off - 1) * 100:+.1f} %"
            print(f"{name:<24} {count:>5} {shipped / count * 1e3:>16.3f} "
                  f"{off / count * 1e3:>12.3f} {cost:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
