"""What more than one command line shares: the options of the scan settings (`facescan`, `facescan
serve`), declared once as annotated types so that their names, help and checks never drift
apart, and mapped once into a `ScanSettings`; and the usage line (`facescan-train` too). Light:
no heavy imports, `--help` loads this module."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from scanner.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from scanner.settings import ScanSettings

Model = Annotated[
    Path | None,
    typer.Option(
        metavar="NAME|FILE",
        help="A shipped model by name: clip (the default) | clip-full (slower; ranks unseen "
        "generators best) | accurate (~8x faster, blind to unseen generators) | fast (whole "
        "images); models/README.md. Or an ONNX file exported by facescan-train.",
    ),
]
Precision = Annotated[
    str, typer.Option(help="Of a shipped model: auto (int8 when shipped, else fp32) | fp32 | int8.")
]
Threshold = Annotated[
    str | None,
    typer.Option(
        metavar="NUMBER|NAME",
        help="Flag when score >= this: a number in 0..1, or one of the model's operating points "
        "by name (clip models: fpr1, fpr5, balanced; reports record the name) [default: the "
        "model's].",
    ),
]
Provider = Annotated[str, typer.Option(help="auto | cpu | cuda (cuda never falls back).")]
Workers = Annotated[int | None, typer.Option(help="Decode threads [default: cores].")]
Threads = Annotated[
    int | None,
    typer.Option(
        help="onnxruntime intra-op threads [default: 1 where the decode workers also score "
        "(a scan on the CPU), else onnxruntime's own]."
    ),
]
MaxPixels = Annotated[
    int, typer.Option(help="Refuse images with more pixels (decompression bombs).")
]
MaxBytes = Annotated[int, typer.Option(help="Refuse files larger than this.")]
IgnoreMetadata = Annotated[
    bool,
    typer.Option(
        help="Label by score alone, even when metadata or a C2PA credential says AI-generated "
        "(both are still reported)."
    ),
]
C2paTrust = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="FILE",
        help="PEM certificates a C2PA signer must chain to for its credential to be valid "
        "(repeatable; needs facescan[provenance]). Nothing is fetched.",
    ),
]
Faces = Annotated[
    str,
    typer.Option(
        help="auto: score each face the detector finds, when the model was trained on face "
        "crops (its metadata says so); off: score whole images."
    ),
]
MinFace = Annotated[
    int | None,
    typer.Option(
        help="Faces smaller than this many pixels (the box's longer side) are listed, not "
        "scored: too few pixels to judge. It also sets the resolution detection runs at (such "
        "a face is about 32 px there): a face far smaller may not be found at all, and a "
        "scored face's box, so its score, can move a little with it "
        "[default: the model's; the shipped one's is 64]."
    ),
]
DetectSize = Annotated[
    int | None,
    typer.Option(
        metavar="PX",
        help="Face detection runs on a copy of the photo at most this many pixels on its longer "
        "side: at 960 a face of about 5 % of a photo's width is found. Raise it (a multiple of "
        "32, up to 4096) to find smaller faces in large group photos, at the cost of detection "
        "time [default: the model's; the shipped one's is 960].",
    ),
]
Debug = Annotated[bool, typer.Option(help="Show tracebacks of internal errors.")]


def print_version(ctx: typer.Context, value: bool) -> None:
    """--version: the program's name (as the command line calls it) and version, then exit."""
    if value:
        from scanner.version import __version__

        typer.echo(f"{ctx.find_root().info_name} {__version__}")
        raise typer.Exit()


Version = Annotated[
    bool,
    typer.Option(
        "--version", callback=print_version, is_eager=True, help="Print the version and exit."
    ),
]


# The scan settings both `facescan` and `facescan serve` take, declared once (name, option,
# default): `with_settings` gives them to each command.
SETTINGS_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("model", Model, None),
    ("precision", Precision, "auto"),
    ("threshold", Threshold, None),
    ("provider", Provider, "auto"),
    ("workers", Workers, None),
    ("threads", Threads, None),
    ("max_pixels", MaxPixels, DEFAULT_MAX_PIXELS),
    ("max_bytes", MaxBytes, DEFAULT_MAX_BYTES),
    ("ignore_metadata", IgnoreMetadata, False),
    ("c2pa_trust", C2paTrust, None),
    ("faces", Faces, "auto"),
    ("min_face", MinFace, None),
    ("detect_size", DetectSize, None),
)


def scan_settings(values: dict[str, Any]) -> ScanSettings:
    """The settings a command's options name, taken out of `values` (the command's parameters):
    the one mapping from options to settings, for `facescan` and `facescan serve`. An option goes
    to the setting of its name (`ScanSettings.of`); --ignore-metadata and --debug say theirs the
    other way round or for more than the engine."""
    given = {name: values.pop(name) for name in ScanSettings.names() if name in values}
    given["use_metadata"] = not values.pop("ignore_metadata", False)
    given["progress"] = values.get("debug", False)  # the engine's own progress output (Ray's)
    return ScanSettings.of(**given)


def with_settings(
    after: str, stops_anywhere: bool = True, **fixed: Any
) -> Callable[[Callable[..., int]], Callable[..., None]]:
    """A typer command from `body(settings, ...)`, its exit status: the parameter `settings`
    becomes every option of SETTINGS_OPTIONS, shown after the option `after`; those, the
    settings options the body declares itself (its own help text, or its alone) and `fixed`
    come to it as one ScanSettings. The mapping runs with the body inside `guarded`, so a setting
    refused there (a --precision for a model file) is exit 2 with its message too.
    `stops_anywhere`: as `guarded`'s."""

    def decorate(body: Callable[..., int]) -> Callable[..., None]:
        signature = inspect.signature(body, eval_str=True)
        shared = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                              annotation=option)
            for name, option, default in SETTINGS_OPTIONS
        ]  # fmt: skip
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.name != "settings":
                parameters.append(parameter)
            if parameter.name == after:
                parameters += shared

        @functools.wraps(body)
        def command(**values: Any) -> None:
            from scanner.command import guarded

            def work() -> int:
                rest = {**values, **fixed}
                settings = scan_settings(rest)  # takes the settings' options out of `rest`
                return body(settings, **rest)

            raise typer.Exit(guarded(work, values.get("debug", False), stops_anywhere))

        command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return command

    return decorate


# -h is --help too, in every command (a context setting: subcommands inherit it).
HELP_OPTIONS = {"help_option_names": ["--help", "-h"]}


class PlainGroup(TyperGroup):
    """A command group whose command list gives each command's summary whole: typer cuts it to
    the screen's width ("(needs...", "create|update..."). Shared with facescan-train."""

    commands_title = "Commands"

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, summary(c)) for name, c in self.commands.items() if not c.hidden]
        if rows:
            with formatter.section(self.commands_title):
                formatter.write_dl(rows)


def summary(command: Any) -> str:
    """A command's first sentence (of its help's first paragraph), whole."""
    paragraph = " ".join((command.short_help or command.help or "").split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


class PlainUsage(TyperCommand):
    """The usage line as people write it: `cmd [OPTIONS] DATA [OUT] PATH...` (typer would print
    `{DATA}` for a required argument). Shared with facescan-train."""

    def collect_usage_pieces(self, ctx: object) -> list[str]:
        pieces = ["[OPTIONS]"]
        for param in self.params:
            if param.param_type_name != "argument":
                continue
            name = (param.metavar or param.name or "ARG").upper()
            name += "..." if param.nargs == -1 else ""
            pieces.append(name if param.required else f"[{name}]")
        return pieces
