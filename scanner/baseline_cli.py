"""`facescan baseline create|update FILE PATH... [scan options]`: record flagged files for review.

Both are the scan command with `--baseline FILE --update-baseline --fail-on none`: everything
after FILE is handed to it, so every scan option (and `--files-from`) works and is declared once.
They differ in what they expect of FILE: `create` refuses to overwrite a baseline (its decisions
would be lost), `update` needs one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand


class BaselineCommand(TyperCommand):
    """The usage line as people write it."""

    def collect_usage_pieces(self, ctx: object) -> list[str]:
        return ["FILE", "PATH...", "[SCAN OPTIONS]"]


baseline_app = typer.Typer(
    name="baseline",
    help="Record flagged files in a reviewed baseline (facescan baseline create|update --help).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
# Everything after FILE goes to the scan command: PATHs and every scan option.
SCAN_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}
BASELINE_FILE = typer.Argument(metavar="FILE", help="The baseline (JSON).")


BASELINE_EPILOG = (
    "Every scan option works (facescan --help), --files-from included. Exit status: 0 when the "
    "baseline is written, whatever was flagged; 2 when it could not be."
)


@baseline_app.command(
    "create", cls=BaselineCommand, context_settings=SCAN_ARGUMENTS, epilog=BASELINE_EPILOG
)
def baseline_create(ctx: typer.Context, file: Annotated[Path, BASELINE_FILE]) -> None:
    """Scan PATHs and write a new baseline FILE, every flagged file pending review.

    A job given --baseline FILE then fails only on flagged files the baseline does not hold
    (and on those a reviewer marks confirmed-ai)."""
    record(ctx, file, exists=False)


@baseline_app.command(
    "update", cls=BaselineCommand, context_settings=SCAN_ARGUMENTS, epilog=BASELINE_EPILOG
)
def baseline_update(
    ctx: typer.Context,
    file: Annotated[Path, BASELINE_FILE],
    prune: Annotated[
        bool, typer.Option(help="Drop entries whose file this scan did not see.")
    ] = False,
) -> None:
    """Scan PATHs and update FILE: new flagged files added as pending, decisions kept.

    Entries are keyed by the file's content, so a moved or renamed file keeps its decision and
    an edited one is new. Entries whose file this scan did not see are kept and listed, or
    dropped with --prune."""
    record(ctx, file, exists=True, prune=prune)


def record(ctx: typer.Context, file: Path, exists: bool, prune: bool = False) -> None:
    """Run the scan command on the remaining arguments with the baseline updated and nothing
    failing: recording findings is not a gate."""
    if file.exists() != exists:
        from scanner import console

        console.fail(
            f"baseline {file} exists: facescan baseline update keeps its decisions"
            if file.exists()
            else f"no baseline {file}: facescan baseline create makes one"
        )
        raise typer.Exit(2)
    args = [*ctx.args, "--baseline", str(file), "--update-baseline", "--fail-on", "none"]
    args += ["--prune-baseline"] if prune else []
    scan_command = ctx.find_root().command.commands["scan"]  # type: ignore[attr-defined]
    with scan_command.make_context(ctx.command_path, args) as scan_context:
        scan_command.invoke(scan_context)
