"""`facescan PATH... [options]`: wires command-line options to `Scanner` and the report writers.

Heavy imports (numpy, Pillow, onnxruntime) happen inside `scan`, so `--help` and `--version` stay
fast. Progress and the summary go to stderr; stdout carries only the table of flagged files.
"""

from __future__ import annotations

import enum
import functools
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from scanner.pipeline import Scanner, ScanResult


class Exit(enum.IntEnum):
    CLEAN = 0  # nothing flagged, every file read
    FLAGGED = 1  # at least one image flagged (takes precedence over errors)
    ERROR = 2  # nothing flagged but some file unreadable, or the scan could not run
    INTERRUPTED = 130  # Ctrl-C


EPILOG = (
    "Exit status: 0 no image flagged and none unreadable; 1 at least one image flagged "
    "(takes precedence); 2 nothing flagged but some file could not be read, or the scan could "
    "not run (bad option, missing model, no such path); 130 interrupted. "
    "--exit-zero always exits 0 once the report is written."
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from scanner import __version__

        typer.echo(f"facescan {__version__}")
        raise typer.Exit()


@app.command(epilog=EPILOG, no_args_is_help=True)
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Folders (walked recursively) or files.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report file: .csv, .json, .jsonl, .html.")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(help="Report format, overriding the extension: csv|json|jsonl|html."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="ONNX model exported by facescan-train [default: the shipped model]."),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(help="Shipped model: auto (int8 when shipped, else fp32) | fp32 | int8."),
    ] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="Flag when score >= this [default: the model's].")
    ] = None,
    provider: Annotated[
        str, typer.Option(help="auto | cpu | cuda (cuda never falls back).")
    ] = "auto",
    workers: Annotated[int | None, typer.Option(help="Decode threads [default: cores].")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per inference batch.")] = 32,
    threads: Annotated[
        int | None, typer.Option(help="onnxruntime intra-op threads [default: its own].")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Skip names or relative paths matching this glob (repeatable)."),
    ] = None,
    follow_symlinks: Annotated[
        bool, typer.Option(help="Follow symbolic links (each folder once).")
    ] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels (decompression bombs).")
    ] = 100_000_000,
    max_bytes: Annotated[int, typer.Option(help="Refuse files larger than this.")] = 512
    * 1024
    * 1024,
    cache: Annotated[
        Path | None,
        typer.Option(help="SQLite result cache: unchanged files are not rescored on a re-scan."),
    ] = None,
    ignore_metadata: Annotated[
        bool, typer.Option(help="Label by score alone, even when metadata says AI-generated.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="Scan only part I of N (1-based I/N): CI jobs split a tree by path."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local | ray (Ray Data: this machine or a cluster; facescan[ray]).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Join this Ray cluster: auto, HOST:6379, ray://HOST:10001 [default: "
            "start Ray here]."
        ),
    ] = None,
    actors: Annotated[
        int, typer.Option(help="--engine ray: inference actors, one model session each.")
    ] = 1,
    exit_zero: Annotated[
        bool, typer.Option(help="Exit 0 whatever was found (collect-only jobs).")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary; errors still print.")
    ] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of internal errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Score face images as real or AI-generated and write a report."""
    try:
        code = _run(**locals())
    except KeyboardInterrupt:
        code = Exit.INTERRUPTED
    except typer.Exit:
        raise
    except Exception as e:
        if debug:
            raise
        err.print(f"facescan: internal error: {type(e).__name__}: {e} (rerun with --debug)")
        code = Exit.ERROR
    raise typer.Exit(int(code))


def _fail(message: str) -> int:
    err.print(f"facescan: {message}", markup=False)
    return Exit.ERROR


def _run(**opts: Any) -> int:
    from scanner.decode import silence_pillow_warnings
    from scanner.metadata import InvalidModelError
    from scanner.pipeline import DecodeLimits
    from scanner.report import ReportError, format_for, open_report
    from scanner.session import ProviderError, resolve_model
    from scanner.walk import Shard

    silence_pillow_warnings()
    paths = [str(p) for p in opts["paths"]]
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        return _fail(f"no such file or folder: {', '.join(missing)}")
    if opts["out"] is None and opts["format"]:
        return _fail("--format needs --out")
    try:
        if opts["out"] is not None:
            format_for(opts["out"], opts["format"])  # fail before loading the model
        opts["shard"] = Shard.parse(opts["shard"]) if opts["shard"] else None
        scanner = _engine(opts)(
            model=resolve_model(opts["model"], opts["precision"]),
            provider=opts["provider"],
            threshold=opts["threshold"],
            workers=opts["workers"],
            batch_size=opts["batch_size"],
            threads=opts["threads"],
            limits=DecodeLimits(opts["max_pixels"], opts["max_bytes"]),
            cache=opts["cache"],
            use_metadata=not opts["ignore_metadata"],
        )
        report = (
            open_report(opts["out"], opts["format"], _model_info(scanner)) if opts["out"] else None
        )
    except (InvalidModelError, ProviderError, ReportError, ValueError) as e:
        return _fail(str(e))
    tally = _scan(scanner, paths, opts, report)
    if not opts["quiet"]:
        _print_summary(tally)
    if opts["out"] is None:
        _print_flagged(tally.flagged)
    if tally.interrupted:
        return Exit.INTERRUPTED
    if opts["exit_zero"]:
        return Exit.CLEAN
    if tally.flagged_count:
        return Exit.FLAGGED
    return Exit.ERROR if tally.errors else Exit.CLEAN


def _engine(opts: dict[str, Any]) -> Callable[..., Scanner]:
    """Scanner for --engine local; RayScanner for --engine ray (Ray is imported only then)."""
    from scanner.pipeline import Scanner

    if opts["engine"] == "local":
        if opts["ray_address"] or opts["actors"] != 1:
            raise ValueError("--ray-address and --actors need --engine ray")
        return Scanner
    if opts["engine"] != "ray":
        raise ValueError(f"--engine {opts['engine']!r}: choose local or ray")
    try:
        from scanner.ray_engine import RayScanner
    except ImportError as e:
        raise ValueError(f"--engine ray needs Ray: pip install 'facescan[ray]' ({e})") from None
    return functools.partial(
        RayScanner, address=opts["ray_address"], actors=opts["actors"], progress=opts["debug"]
    )


class Tally:
    """Counts for the summary. Keeps error rows, and flagged rows only when they are printed
    (no --out): a report file already holds them, and memory must not grow with the scan."""

    def __init__(self, scanner: Scanner, out: Path | None) -> None:
        self.scanner, self.out = scanner, out
        self.files = self.real = self.flagged_count = 0
        self.flagged: list[ScanResult] = []
        self.errors: list[ScanResult] = []
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.interrupted = False

    def add(self, result: ScanResult) -> None:
        self.files += 1
        if result.status == "error":
            self.errors.append(result)
        elif result.label == self.scanner.info.positive_label:
            self.flagged_count += 1
            if self.out is None:
                self.flagged.append(result)
        else:
            self.real += 1

    def summary(self) -> dict[str, Any]:
        from scanner.report import printable

        return {
            "files": self.files,
            "flagged": self.flagged_count,
            "real": self.real,
            "errors": len(self.errors),
            "error_files": [printable(r.path) for r in self.errors],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.files / self.seconds, 1) if self.seconds else None,
            "interrupted": self.interrupted,
            **_model_info(self.scanner),
        }


def _model_info(scanner: Scanner) -> dict[str, Any]:
    return {
        "model": str(scanner.session.path),
        "provider": scanner.session.provider,
        "threshold": scanner.threshold,
        "labels": list(scanner.info.labels),
        "preprocess": scanner.spec.to_dict(),
    }


def _scan(scanner: Scanner, paths: list[str], opts: dict[str, Any], report: Any) -> Tally:
    tally = Tally(scanner, opts["out"])
    walk_opts = {
        "exclude": opts["exclude"] or (),
        "follow_symlinks": opts["follow_symlinks"],
        "shard": opts["shard"],
    }
    with _progress(paths, walk_opts, enabled=not opts["quiet"] and err.is_terminal) as advance:
        try:
            with closing(scanner.scan(paths, **walk_opts)) as results:  # stops the workers
                for result in results:
                    if report is not None:
                        report.write(result)
                    tally.add(result)
                    advance()
        except KeyboardInterrupt:
            tally.interrupted = True
        finally:
            tally.seconds = time.perf_counter() - tally.started
            if report is not None:
                report.close(tally.summary())
    return tally


class _progress:
    """A rich progress bar on stderr; the total is counted by a background walk."""

    def __init__(self, paths: list[str], walk_opts: dict[str, Any], enabled: bool) -> None:
        self.paths, self.walk_opts, self.enabled = paths, walk_opts, enabled

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.task = self.bar.add_task("scan", total=None, rate="")
        self.bar.start()
        threading.Thread(target=self._count, daemon=True).start()
        started = time.perf_counter()

        def advance() -> None:
            self.bar.advance(self.task)
            done = self.bar.tasks[0].completed
            self.bar.update(self.task, rate=f"{done / (time.perf_counter() - started):.0f} img/s")

        return advance

    def _count(self) -> None:
        from scanner.walk import walk

        total = 0
        for total, _ in enumerate(walk(self.paths, **self.walk_opts), start=1):
            if total % 1000 == 0:
                self.bar.update(self.task, total=total)
        self.bar.update(self.task, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


def _print_summary(tally: Tally) -> None:
    s = tally.summary()
    rate = f"{s['images_per_second']} img/s" if s["images_per_second"] else "-"
    state = "interrupted" if tally.interrupted else "done"
    err.print(
        f"facescan {state}: {s['files']} files, [bold]{s['flagged']} flagged[/bold] "
        f"{tally.scanner.info.positive_label}, {s['real']} {tally.scanner.info.labels[0]}, "
        f"{s['errors']} errors in {s['seconds']:.1f} s ({rate})"
    )
    err.print(
        f"model {s['model']} | provider {s['provider']} | threshold {s['threshold']:.3f}"
        + (f" | report {tally.out}" if tally.out else ""),
        markup=False,
    )
    for path, r in zip(s["error_files"][:20], tally.errors, strict=False):
        err.print(f"  error: {path}: {r.error}", markup=False)
    if len(tally.errors) > 20:
        err.print(f"  ... and {len(tally.errors) - 20} more errors (see the report)")


def _print_flagged(flagged: list[ScanResult]) -> None:
    """A table on a terminal; `score<TAB>label<TAB>path` lines when piped (paths never cut)."""
    from rich.table import Table

    from scanner.report import printable

    rows = [(f"{r.score:.3f}", r.label or "", printable(r.path)) for r in flagged]
    rows.sort(key=lambda row: row[0], reverse=True)
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    if rows:
        table = Table("score", "label", title=f"{len(rows)} flagged", title_justify="left")
        table.add_column("path", overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
