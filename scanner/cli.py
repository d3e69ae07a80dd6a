"""`facescan PATH... [options]`: the options declared, gathered into a typed `ScanOptions` (its
settings mapped by `scanner.cli_options`, as `facescan serve`'s are), and handed to
`scanner.command`, which does the work and decides the exit status.

Scanning is the default command: `facescan PATH...` is `facescan scan PATH...`. Other commands
(`facescan COMMAND ...`) are named first; a path that happens to be called like a command is
written `./NAME` or after `--`.

Heavy imports (numpy, Pillow, onnxruntime) happen inside the command, so `--help` and
`--version` stay fast. Help text is plain (no rich markup), so `[default: ...]`, `facescan[ray]`
and `a | b` choices print as written.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from scanner import cli_options as opts
from scanner import engines, reports, stops
from scanner.baseline_cli import baseline_app
from scanner.cli_options import PlainGroup, PlainUsage
from scanner.options import ScanOptions
from scanner.serve import cli as serve_cli
from scanner.settings import ScanSettings
from scanner.source import Source

EPILOG = (
    "Exit status: 0 no image flagged and none unreadable; 1 at least one image flagged "
    "(takes precedence); 2 nothing flagged but some file could not be read, or the scan could "
    "not run (bad option, missing model, no such path); 130 interrupted (Ctrl-C); 143 "
    "terminated (SIGTERM). --fail-on picks which findings fail (flagged files that the "
    "--baseline approved or holds as pending do not fail by default); --exit-zero exits 0 "
    "once the report is written."
)
FORMATS = " | ".join(reports.formats())


# Set in the group's context when the command line names no command: the scan is implied.
IMPLIED_SCAN = "facescan.implied_scan"


class Commands(PlainGroup):
    """`scan` unless the first argument names another command; `facescan --help` is the scan
    command's help followed by the other commands."""

    commands_title = "Commands (facescan COMMAND --help for each)"

    # typer vendors click (typer._click): its types are not public, hence Any.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in (
            *ctx.help_option_names, "--version",
        ):  # fmt: skip
            args = ["scan", *args]
            ctx.meta[IMPLIED_SCAN] = True
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        scan_command = self.commands["scan"]
        with ScanContext(scan_command, info_name=ctx.info_name) as scan_ctx:
            scan_command.format_help(scan_ctx, formatter)
        self.format_commands(ctx, formatter)


class ScanContext(typer.Context):
    """The scan command's context: where the command line named no command, its usage line and
    error hints say `facescan`, as typed, not `facescan scan`."""

    @property
    def command_path(self) -> str:
        if self.parent is not None and self.parent.meta.get(IMPLIED_SCAN):
            return str(self.parent.command_path)
        return str(super().command_path)


class ScanCommand(PlainUsage):
    context_class = ScanContext


app = typer.Typer(
    cls=Commands,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings=opts.HELP_OPTIONS,
)


@app.callback()
def facescan(
    version: opts.Version = False,
) -> None:
    """Find AI-generated faces in a pile of photos."""


@app.command(cls=ScanCommand, epilog=EPILOG, no_args_is_help=True)
@opts.with_settings(after="thumbnails", stops_anywhere=False)
def scan(
    settings: ScanSettings,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            readable=False,  # an unreadable file is an error row, not a reason to stop
            help="Folders (walked recursively) or files (or --files-from).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=f"Report file; its extension picks the format: {reports.describe()}.",
        ),
    ] = None,  # fmt: skip
    format: Annotated[
        str | None, typer.Option(help=f"Report format, overriding the extension: {FORMATS}.")
    ] = None,
    thumbnails: Annotated[
        str | None,
        typer.Option(
            help="HTML report: which images get a thumbnail (160 px JPEG, about 8 KB each): "
            "flagged | all (real ones too, to spot misses) | none; at most 2,000 flagged and "
            "2,000 real [default: flagged]."
        ),
    ] = None,  # fmt: skip
    batch_size: Annotated[
        int,
        typer.Option(help="Images per inference batch (on the CPU each worker scores up to 8)."),
    ] = 32,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Skip names or relative paths matching this glob (repeatable)."),
    ] = None,
    follow_symlinks: Annotated[
        bool, typer.Option(help="Follow symbolic links (each folder once).")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(help="SQLite result cache: unchanged files are not rescored on a re-scan."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="Scan only part I of N (1-based I/N): CI jobs split a tree by path."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help=f"Where decoding and inference run: {' | '.join(engines.names())} "
            "(ray: Ray Data on this machine or a cluster, needs facescan[ray])."
        ),
    ] = "local",  # fmt: skip
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="--engine ray: join this cluster (auto, HOST:6379, ray://HOST:10001) "
            "[default: start Ray here]."
        ),
    ] = None,  # fmt: skip
    actors: Annotated[
        int, typer.Option(help="--engine ray: inference actors, one model session each.")
    ] = 1,
    files_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Scan exactly the paths listed in FILE (- for stdin), one per line, instead "
            "of PATHs; listed names without an image extension and folders are skipped.",
        ),
    ] = None,  # fmt: skip
    null: Annotated[
        bool,
        typer.Option(
            "--null", "-0", help="--files-from is NUL-separated (git diff -z, find -print0)."
        ),
    ] = False,  # fmt: skip
    baseline: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Reviewed decisions by file content (facescan baseline create): approved and "
            "pending flagged files do not fail the job; the report's baseline column says why.",
        ),
    ] = None,  # fmt: skip
    update_baseline: Annotated[
        bool,
        typer.Option(
            help="Also write the --baseline FILE: new flagged files added as pending, "
            "decisions kept."
        ),
    ] = False,  # fmt: skip
    prune_baseline: Annotated[
        bool,
        typer.Option(help="With --update-baseline: drop entries whose file this scan did not see."),
    ] = False,
    fail_on: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="What fails the job: ai (flagged, not approved or pending in the baseline), "
            "pending, error (unreadable), comma-separated, or none [default: ai,error].",
        ),
    ] = None,  # fmt: skip
    exit_zero: Annotated[
        bool, typer.Option(help="Exit 0 whatever was found (collect-only jobs): --fail-on none.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary; errors still print.")
    ] = False,
    debug: opts.Debug = False,
    version: opts.Version = False,
) -> int:
    """Score face images as real or AI-generated and write a report."""
    from scanner.command import scan_command

    source = Source.of(paths or (), files_from, null, exclude or (), follow_symlinks, shard)
    options = ScanOptions(
        settings, source, out, format, thumbnails, quiet, debug, exit_zero, baseline,
        update_baseline, prune_baseline, fail_on,
    )  # fmt: skip
    return scan_command(options)


app.add_typer(baseline_app)
app.command("serve", epilog=serve_cli.EPILOG)(serve_cli.serve)


def main() -> None:
    """The `facescan` program (also `python -m scanner`)."""
    try:
        app(prog_name="facescan")
    except SystemExit as e:
        exit_now(e.code if isinstance(e.code, str) else stops.exit_status(e.code or 0))


def exit_now(code: str | int | None) -> NoReturn:
    """Exit once the work is done without tearing the interpreter down: freeing every module
    and the libraries' globals (onnxruntime's, numpy's) took 0.1 s, a sixth of a one-file scan
    (a pre-commit hook's usual run). atexit handlers still run and the streams are flushed;
    where a stream cannot be (a closed pipe), Python's own exit reports it as usual."""
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr, flush=True)
    os._exit(1 if isinstance(code, str) else code or 0)


if __name__ == "__main__":
    main()
