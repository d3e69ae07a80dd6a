"""The facescan-train command line without training: help text, exit codes, --debug (no
TensorFlow needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip(
    "matplotlib", reason="the trainer needs its [train] extra: pip install facescan[train]"
)

from scanner.preprocess import FaceCropSpec  # noqa: E402
from trainer import robustness, tfenv  # noqa: E402
from trainer.cli import DEFAULTS, app  # noqa: E402
from trainer.config import TrainConfig, TrainerError  # noqa: E402


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def squeezed(text: str) -> str:
    """Without whitespace: help is rewrapped (and may break at hyphens) to the terminal width."""
    return "".join(text.split())


def test_every_command_help_shows_every_option_help_in_full() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(commands) == {
        *("train", "evaluate", "export", "eda", "quantize", "checks", "audit"),
        *("fetch-encoder", "probe"),
    }
    for name, command in commands.items():
        code, output = invoke(name, "--help")
        assert code == 0, output
        for param in command.params:
            text = getattr(param, "help", None)
            if text:
                assert squeezed(text) in squeezed(output), (name, param.name, output)
    _, train_help = invoke("train", "--help")
    for shown in (
        "lean | lean-wide | seed-cnn | efficientnet-lite0/1/2 [efficientnet-lite0].",
        "Maximum epochs [8].",
        "Model input N x N [128;",
        "[faces].",
    ):
        assert squeezed(shown) in squeezed(train_help)


def test_train_help_gives_the_face_crops_real_defaults() -> None:
    _, train_help = invoke("train", "--help")
    crop = FaceCropSpec()
    shown = f"--set face_margin={crop.margin} face_align=true min_face={crop.min_face}."
    assert squeezed(shown) in squeezed(train_help), train_help


def test_train_defaults_are_the_shipped_accurate_models_recipe() -> None:
    """`facescan-train train DATA` with no flags trains what the accurate model was trained
    with (its metadata records every setting), and the Makefile adds nothing to it."""
    accurate = Path(__file__).resolve().parent.parent / "models" / "facescan-accurate.onnx"
    if not accurate.is_file():
        pytest.skip("no model shipped in models/ yet")
    from scanner.session import ModelSession

    settings = ModelSession(accurate, provider="cpu").info.extra["training"]["settings"]
    assert TrainConfig.from_dict(settings) == DEFAULTS.override({"data": settings["data"]})
    makefile = (accurate.parent.parent / "Makefile").read_text()
    recipe = makefile.split("\ntrain:\n", 1)[1].splitlines()[0]
    assert recipe.strip() == "$(PYTHON) -m trainer train $(DATA) --out $(RUN) $(TRAIN_ARGS)"


def test_another_arch_starts_from_scratch_at_its_own_size_unless_told() -> None:
    assert (DEFAULTS.arch, DEFAULTS.pretrained, DEFAULTS.image_size) == (
        "efficientnet-lite0", "imagenet", 128,
    )  # fmt: skip
    lean = DEFAULTS.override({"arch": "lean"})
    assert (lean.pretrained, lean.image_size, lean.faces) == ("", 256, True)
    assert DEFAULTS.override({"arch": "efficientnet-lite0"}) == DEFAULTS  # naming the default
    assert DEFAULTS.override({"arch": "efficientnet-lite1"}).image_size == 240
    with pytest.raises(TrainerError, match="--pretrained imagenet needs --arch"):
        DEFAULTS.override({"arch": "lean", "pretrained": "imagenet"})
    assert DEFAULTS.override({"exclude_kind": ""}).exclude_kind == ()


def test_train_flags_reach_the_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The command line on top of the recipe: --pretrained none trains the default network from
    scratch; --arch lean-wide alone drops the ImageNet weights it does not have."""
    from trainer import train

    seen: list[TrainConfig] = []
    monkeypatch.setattr(train, "train", lambda cfg, out, force: seen.append(cfg))
    base = ["train", str(tmp_path), "--out", str(tmp_path / "run")]
    for extra in (["--pretrained", "none"], ["--arch", "lean-wide", "--whole-image"]):
        code, output = invoke(*base, *extra)
        assert code == 0, output
    scratch, small = seen
    assert (scratch.arch, scratch.pretrained, scratch.image_size) == ("efficientnet-lite0", "", 128)
    assert (small.arch, small.pretrained, small.faces) == ("lean-wide", "", False)
    assert small.tta == "flip"  # the recipe's, until --set tta=


def test_a_config_json_missing_a_newer_field_means_that_fields_old_default() -> None:
    """Runs written before `faces`, `tta` and `pretrained` existed trained without them: the
    recipe's defaults must not be read into them."""
    old = {k: v for k, v in DEFAULTS.to_dict().items() if k not in ("faces", "tta", "pretrained")}
    cfg = TrainConfig.from_dict({**old, "arch": "lean-wide", "image_size": 128})
    assert (cfg.faces, cfg.tta, cfg.pretrained) == (False, "", "")


def test_top_help_states_the_exit_codes() -> None:
    code, output = invoke("--help")
    assert code == 0
    for text in ("0 ok", "1 a check failed", "2 the command could not run", "130 interrupted"):
        assert squeezed(text) in squeezed(output), output


def stub_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: BaseException) -> list:
    """`checks` with its work replaced by raising `error`; returns the command line."""

    def work(*args: object) -> None:
        raise error

    monkeypatch.setattr(robustness, "model_card_checks", work)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    return ["checks", str(model), str(tmp_path), "--out", str(tmp_path / "out")]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (KeyboardInterrupt(), 130, "facescan-train: interrupted"),
        (ZeroDivisionError("boom"), 2, "internal error: ZeroDivisionError: boom (rerun with"),
        (ImportError("no tf", name="tensorflow"), 2, "install facescan[train]"),
    ],
)
def test_errors_map_to_exit_codes_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: BaseException, code: int, message: str
) -> None:
    exit_code, output = invoke(*stub_checks(monkeypatch, tmp_path, error))
    assert exit_code == code and message in output and "Traceback" not in output, output


def test_debug_shows_the_traceback_and_keeps_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = stub_checks(monkeypatch, tmp_path, ZeroDivisionError("boom"))
    code, output = invoke(*args, "--debug")
    assert code == 2 and "Traceback" in output and "ZeroDivisionError: boom" in output


def test_a_missing_input_cannot_run(tmp_path: Path) -> None:
    code, output = invoke("checks", str(tmp_path / "none.onnx"), str(tmp_path), "--out", "x")
    assert code == 2 and "model not found" in output


def test_tensorflow_log_level_is_quiet_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "")  # so that teardown restores the original
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    tfenv.configure(debug=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    tfenv.configure(debug=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_version_dash_h_and_whole_command_summaries() -> None:
    from scanner.cli_options import summary
    from scanner.version import __version__

    shown = CliRunner().invoke(app, ["--version"], prog_name="facescan-train")  # as main() runs it
    assert (shown.exit_code, shown.output) == (0, f"facescan-train {__version__}\n")
    code, shown = invoke("-h")
    assert code == 0 and shown == invoke("--help")[1]
    listed = shown[shown.index("Commands:") : shown.index("Exit status")]
    for command in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        assert squeezed(summary(command)) in squeezed(listed), command.name
    assert "..." not in listed
