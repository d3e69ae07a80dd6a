"""`facescan serve` under load, on loopback only, next to the `facescan` CLI on the same images
in the same run.

    python bench/serve_bench.py [--images 2000] [--size 256] [--per-request 1 8]
                                [--concurrency 1 8 32] [--rss-requests 10000] [--seconds 120]
                                [--model NAME|FILE]

Writes `--images` distinct JPEGs (make bench's generator) and starts `facescan serve --port 0`
with the shipped model. For each (images per request, concurrency) level, drives it from this
process with a bounded client (asyncio, one keep-alive connection per concurrent client,
requests built once and sent as raw HTTP/1.1, so the client takes as little of the shared cores
as it can): every image once (`--per-request` images per multipart request) or `--seconds`,
whichever ends first. An answer is an error unless it is 200 with one `ok` row per image.
`facescan DIR --out r.csv` runs as a whole process before the first level and after each, and
each level is compared with the two CLI runs either side of it (the load on a shared machine
drifts), in img/s and in CPU time per image (the server process's; the CLI's). Then
`--rss-requests` single-image requests at concurrency 8, the server's RSS read after the first
1,000 and after the last. First of all, the server's CPU per `GET /healthz`: what the HTTP stack
alone costs.

Only 127.0.0.1 is ever contacted, every loop is bounded in requests and time, and the server is
stopped (SIGTERM) at the end. A benchmark, not a test: it asserts nothing; it prints a table and
writes it as JSON (bench-out/serve.json).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import REPO, facescan_process, rate, write_jpegs  # make bench's own helpers
from scanner.shipped import resolve_model  # noqa: E402
from scanner.testing.served import Served  # the tests' way to run a server; not a copy

HOST = "127.0.0.1"  # loopback only
BOUNDARY = "facescanbenchboundary"


def request_bytes(port: int, images: list[bytes]) -> bytes:
    """One POST /v1/scan: a raw body for one image, multipart for several."""
    if len(images) == 1:
        kind, body = "image/jpeg", images[0]
    else:
        kind = f"multipart/form-data; boundary={BOUNDARY}"
        parts = [
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Disposition: form-data; "
            f'name="file"; filename="{i}.jpg"\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for i, data in enumerate(images)
        ]
        body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST /v1/scan HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(":") for h in lines) if k.lower() == "content-length"
    )
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def drive(
    port: int, requests: list[bytes], per_request: int, concurrency: int, total: int, seconds: float
) -> dict:
    """`total` requests (cycling through `requests`) from `concurrency` clients, or fewer if
    `seconds` run out first."""
    latencies: list[float] = []
    errors = 0
    numbers = itertools.count()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while (i := next(numbers)) < total and time.monotonic() < deadline:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status, body = await answer(reader)
                latencies.append(time.perf_counter() - started)
                if status != 200 or body.count(b'"status":"ok"') != per_request:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = len(latencies)
    latencies.sort()
    return {
        "requests": done,
        "images": done * per_request,
        "seconds": round(elapsed, 3),
        "img_s": rate(done * per_request, elapsed),
        "p50_ms": percentile_ms(latencies, 0.5),
        "p99_ms": percentile_ms(latencies, 0.99),
        "errors": errors,
    }


def percentile_ms(ordered: list[float], q: float) -> float | None:
    return (
        round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else None
    )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished (and waited-for) descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_image_ms(seconds: float, images: int) -> float:
    return round(1000 * seconds / images, 3) if images else float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def batch_counts(port: int) -> tuple[float, float]:
    """(batches, images in them) the server has scored so far, from its /metrics."""
    import urllib.request

    text = urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=30).read().decode()
    values = dict(line.split()[:2] for line in text.splitlines() if line.startswith("facescan_"))
    return float(values["facescan_batches_total"]), float(values["facescan_batched_images_total"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-request", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rss-requests", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0, help="cap per measurement")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "serve.json")
    parser.add_argument("--model", help="a shipped model's name or an .onnx file [the default]")
    args = parser.parse_args()
    results: dict = {"images": args.images, "size": args.size, "host": HOST}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_jpegs(Path(tmp) / "photos", args.images, args.size)
        images = [f.read_bytes() for f in sorted(folder.iterdir())]
        model = resolve_model(args.model)  # a shipped name, a file, or the default

        def cli_rate() -> tuple[float, float]:
            cpu = children_cpu()
            seconds, _ = facescan_process(folder, model, "cpu", Path(tmp) / "r.csv")
            return rate(len(images), seconds), per_image_ms(children_cpu() - cpu, len(images))

        with Served("--model", model, "--provider", "cpu") as server:
            results["http_overhead"] = http_overhead(server)
            results["service"], results["cli_img_s_runs"] = levels(server, images, cli_rate, args)
            results["rss"] = rss_rows(server, images, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)


def levels(
    server: Served,
    images: list[bytes],
    cli_rate: Callable[[], tuple[float, float]],
    args: argparse.Namespace,
) -> tuple[dict, list[tuple[float, float]]]:
    """Each (images per request, concurrency) level once, with a CLI run before and after it:
    on a shared machine the load drifts, so each level is compared with the mean of the two
    CLI runs either side of it. CPU time per image (the server's; the CLI's whole process)
    drifts much less than wall time, so it is compared too."""
    port, rows, cli_runs = server.port, {}, [cli_rate()]
    for per_request in args.per_request:
        requests = [
            request_bytes(port, images[i : i + per_request])
            for i in range(0, len(images) - per_request + 1, per_request)
        ]
        asyncio.run(drive(port, requests, per_request, 4, 50, args.seconds))  # warm-up
        for concurrency in args.concurrency:
            before, cpu = batch_counts(port), process_cpu(server.process.pid)
            row = asyncio.run(
                drive(port, requests, per_request, concurrency, len(requests), args.seconds)
            )
            cpu = process_cpu(server.process.pid) - cpu
            after = batch_counts(port)
            cli_runs.append(cli_rate())
            row["cpu_ms_per_image"] = per_image_ms(cpu, row["images"])
            row["cli_img_s"] = round(statistics.mean(r[0] for r in cli_runs[-2:]), 1)
            row["cli_cpu_ms_per_image"] = round(statistics.mean(r[1] for r in cli_runs[-2:]), 3)
            row["vs_cli"] = round(row["img_s"] / row["cli_img_s"], 2)
            row["cpu_vs_cli"] = round(row["cli_cpu_ms_per_image"] / row["cpu_ms_per_image"], 2)
            row["mean_batch"] = round((after[1] - before[1]) / (after[0] - before[0]), 1)
            rows[f"{per_request}_per_request_c{concurrency}"] = row
    return rows, cli_runs


def http_overhead(server: Served, requests: int = 4000) -> dict:
    """Server CPU per `GET /healthz` at concurrency 8: the HTTP stack's own cost (uvicorn uses
    httptools and uvloop when they are installed, h11 and asyncio otherwise)."""
    import importlib.util

    probe = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    cpu = process_cpu(server.process.pid)
    done = asyncio.run(drive(server.port, [probe], 0, 8, requests, 60))  # 0: no rows in answer
    return {
        "server_cpu_ms_per_request": per_image_ms(process_cpu(server.process.pid) - cpu, requests),
        "errors": done["errors"],
        "httptools_and_uvloop": all(importlib.util.find_spec(m) for m in ("httptools", "uvloop")),
    }


def rss_rows(server: Served, images: list[bytes], args: argparse.Namespace) -> dict:
    """The server's RSS after 1,000 single-image requests and after --rss-requests."""
    single = [request_bytes(server.port, [image]) for image in images]
    first = asyncio.run(drive(server.port, single, 1, 8, 1000, args.seconds))
    rss_1k = rss_mib(server.process.pid)
    rest = asyncio.run(drive(server.port, single, 1, 8, args.rss_requests - 1000, args.seconds * 5))
    return {
        "requests": first["requests"] + rest["requests"],
        "errors": first["errors"] + rest["errors"],
        "rss_mib_after_1000": rss_1k,
        f"rss_mib_after_{args.rss_requests}": rss_mib(server.process.pid),
    }


def print_table(results: dict) -> None:
    print(f"{results['images']} JPEGs of {results['size']} px; facescan CLI runs (whole "
          f"process: img/s, CPU ms per image): {results['cli_img_s_runs']}")  # fmt: skip
    print(f"{'run':<22}{'img/s':>8}{'CLI':>8}{'x CLI':>7}{'cpu ms':>8}{'CLI ms':>8}"
          f"{'x CLI':>7}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}{'batch':>6}")  # fmt: skip
    for name, row in results["service"].items():
        print(
            f"{name:<22}{row['img_s']:>8}{row['cli_img_s']:>8}{row['vs_cli']:>7}"
            f"{row['cpu_ms_per_image']:>8}{row['cli_cpu_ms_per_image']:>8}{row['cpu_vs_cli']:>7}"
            f"{row['p50_ms']:>9}{row['p99_ms']:>9}{row['errors']:>7}{row['mean_batch']:>6}"
        )
    print("server RSS:", json.dumps(results["rss"]))
    print("HTTP stack alone:", json.dumps(results["http_overhead"]))


if __name__ == "__main__":
    main()
