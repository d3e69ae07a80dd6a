"""`facescan-train eda|train|evaluate|export`: options in, one clear line out on failure.

TensorFlow is imported only by the commands that need it, so `--help` is quick and a missing
[train] extra is reported as such, not as a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from trainer.config import TrainConfig, TrainerError, parse_settings

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Fit, evaluate and export the facescan Keras detector (exit 0 ok, 1 on any problem).",
)
TRAIN_EXTRA = {"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib"}

Debug = Annotated[bool, typer.Option(help="Show tracebacks.")]


def _run(action: Callable[[], Any], debug: bool) -> None:
    """Run a command; a user-fixable problem is one line on stderr and exit 1."""
    try:
        action()
    except TrainerError as e:
        _fail(str(e), debug)
    except ImportError as e:
        if (e.name or "").split(".")[0] not in TRAIN_EXTRA:
            raise
        _fail(
            f"{e.name} is missing: install facescan[train] (pip install 'facescan[train]')", debug
        )
    except KeyboardInterrupt:
        typer.echo("facescan-train: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as e:
        _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug)", debug)


def _fail(message: str, debug: bool) -> None:
    if debug:
        raise
    typer.echo(f"facescan-train: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def train(
    data: Annotated[
        Path, typer.Argument(help="DATA/{train,val,test}/{real,fake} or DATA/{real,fake}.")
    ],
    out: Annotated[Path, typer.Option("--out", help="RUN folder to create.")],
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs [30].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step [32].")] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="Model input N x N [256; efficientnet-lite0/1/2: 224/240/260]."),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="lean | lean-wide | seed-cnn | efficientnet-lite0/1/2 [lean]."),
    ] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="imagenet: start from ImageNet weights (efficientnet-lite*).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of split, shuffling, augmentation.")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (cosine decay) [1e-3].")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Early-stopping patience on val AUC.")
    ] = None,
    preprocess: Annotated[
        str | None, typer.Option(help="resize (whole image to N) | crop (native N x N crops).")
    ] = None,
    crop_grid: Annotated[
        int | None, typer.Option(help="crop: k x k crops at scan time [1].")
    ] = None,
    resize_filter: Annotated[str | None, typer.Option(help="bilinear, bicubic, lanczos...")] = None,
    exclude_kind: Annotated[
        list[str] | None, typer.Option(help="Drop MANIFEST.csv kind (repeatable).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most N images per split (quick runs).")
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(help="Comma list of flip,brightness,contrast,rescale,jpeg,blur or none."),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any other setting: key=value (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Reuse an existing RUN folder.")] = False,
    debug: Debug = False,
) -> None:
    """Train a detector on DATA and write model, metrics and plots to RUN."""
    given = {k: v for k, v in locals().items() if v is not None}
    settings: dict[str, Any] = {
        k: given[k]
        for k in ("epochs", "batch_size", "image_size", "arch", "seed", "lr", "patience")
        + ("preprocess", "crop_grid", "resize_filter", "limit", "pretrained")
        if k in given
    }
    settings["data"] = str(data)
    if exclude_kind:
        settings["exclude_kind"] = tuple(exclude_kind)
    if augment is not None:
        settings["enabled"] = "" if augment == "none" else augment

    def action() -> None:
        from trainer.train import train as run_training

        cfg = TrainConfig().override({**settings, **parse_settings(set_ or [])})
        run_training(cfg, out, force)

    _run(action, debug)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="A RUN folder or an exported .onnx file.")],
    data: Annotated[Path, typer.Argument(help="Folder in either training layout.")],
    split: Annotated[str, typer.Option(help="train | val | test | all.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Report folder [RUN/eval-SPLIT].")] = None,
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(help="Drop MANIFEST.csv kind (repeatable) [the model's training setting]."),
    ] = None,
    include_all: Annotated[bool, typer.Option(help="Drop nothing by kind.")] = False,
    debug: Debug = False,
) -> None:
    """Metrics and plots of a Keras run or an ONNX model on any folder."""

    def action() -> None:
        from trainer.evaluate import evaluate as run_evaluation

        if not model.exists():
            raise TrainerError(f"model not found: {model}")
        kinds = () if include_all else tuple(exclude_kind) if exclude_kind else None
        run_evaluation(model, data, split, out, kinds)

    _run(action, debug)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="RUN folder written by `train`.")],
    out: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset (13-18).")] = 17,
    debug: Debug = False,
) -> None:
    """Export RUN's best model to ONNX with its metadata; fail on a Keras/ONNX mismatch."""

    def action() -> None:
        from trainer.export import export as run_export

        run_export(run, out, opset)

    _run(action, debug)


@app.command()
def eda(
    data: Annotated[Path, typer.Argument(help="Folder in either training layout.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for PNGs, eda.md and eda.json.")],
    seed: Annotated[int, typer.Option(help="Seed of the flat layout's split.")] = 1337,
    debug: Debug = False,
) -> None:
    """Explore DATA: balance, sizes, formats, samples, PCA, duplicates and split leakage."""

    def action() -> None:
        from trainer.eda import eda as run_eda

        run_eda(data, out, seed)

    _run(action, debug)


@app.command()
def quantize(
    model: Annotated[Path, typer.Argument(help="The fp32 .onnx file exported by `export`.")],
    calib: Annotated[Path, typer.Option(help="Folder of real images to calibrate on (val).")],
    out: Annotated[Path, typer.Option("--out", help="The int8 .onnx file to write.")],
    limit: Annotated[int, typer.Option(help="Calibration images at most.")] = 200,
    debug: Debug = False,
) -> None:
    """int8 model (onnxruntime static QDQ, per-channel) with the same metadata + parity report."""

    def action() -> None:
        import json

        from trainer.quantize import quantize as run_quantize

        if not model.is_file():
            raise TrainerError(f"model not found: {model}")
        if not calib.is_dir():
            raise TrainerError(f"calibration folder not found: {calib}")
        report = run_quantize(model, calib, out, limit)
        typer.echo(f"wrote {out}; parity against fp32: {json.dumps(report)}")

    _run(action, debug)


@app.command()
def checks(
    model: Annotated[Path, typer.Argument(help="An exported .onnx file.")],
    data: Annotated[Path, typer.Argument(help="Folder in either training layout.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for card-checks.json and plots.")],
    split: Annotated[str, typer.Option(help="train | val | test.")] = "test",
    exclude_kind: Annotated[
        list[str] | None, typer.Option(help="Drop MANIFEST.csv kind (repeatable).")
    ] = None,
    debug: Debug = False,
) -> None:
    """Model-card checks: robustness rows, file-property shortcut, calibration diagram."""

    def action() -> None:
        from trainer.robustness import model_card_checks

        if not model.is_file():
            raise TrainerError(f"model not found: {model}")
        model_card_checks(model, data, split, out, tuple(exclude_kind or ()))

    _run(action, debug)


def main() -> None:
    # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise to this tool.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scanner.decode import silence_pillow_warnings

    silence_pillow_warnings()
    sys.exit(app())
