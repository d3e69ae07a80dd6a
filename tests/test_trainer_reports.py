"""Where `facescan-train evaluate` and `audit` write their reports: a folder named after the
model, never beside an .onnx file (the shipped ones sit in the installed package), and never
over an earlier report unless told (no TensorFlow needed: the models are tiny ONNX files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import build_red_model
from test_audit import make_audit_set
from typer.testing import CliRunner

from scanner.preprocess import PreprocessSpec

pytest.importorskip("matplotlib", reason="the trainer needs its [train] extra: facescan[train]")
pytest.importorskip("onnx", reason="the tiny test models need onnx: pip install facescan[dev]")

from trainer.cli import app  # noqa: E402


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """models/{a,b}.onnx (two thresholds, so two different reports) in the working folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name, threshold in (("a", 0.8), ("b", 0.5)):
        spec = PreprocessSpec(input_size=16)
        build_red_model(tmp_path / "models" / f"{name}.onnx", spec, threshold=threshold)
    return tmp_path / "models"


def test_two_models_evaluated_on_one_folder_get_two_reports(models: Path, tmp_path: Path) -> None:
    data = make_audit_set(tmp_path / "data")
    for name in ("a", "b"):
        code, output = cli("evaluate", models / f"{name}.onnx", data)
        assert code == 0, output
        assert f"report written to runs/eval-{name}-test" in output
    thresholds = {
        name: json.loads((tmp_path / "runs" / f"eval-{name}-test" / "metrics.json").read_text())
        for name in ("a", "b")
    }
    assert thresholds["a"]["test"]["threshold"] == pytest.approx(0.8)
    assert thresholds["b"]["test"]["threshold"] == pytest.approx(0.5)
    assert sorted(p.name for p in models.iterdir()) == ["a.onnx", "b.onnx"]  # nothing beside


def test_an_audit_of_a_model_in_models_writes_nothing_there(models: Path, tmp_path: Path) -> None:
    data = make_audit_set(tmp_path / "data")
    code, output = cli("audit", models / "a.onnx", data)
    assert code == 0, output
    assert (tmp_path / "runs" / "audit-a-test" / "audit.json").is_file()
    assert sorted(p.name for p in models.iterdir()) == ["a.onnx", "b.onnx"]


@pytest.mark.parametrize("command", ["evaluate", "audit"])
def test_an_existing_report_is_not_replaced_without_force(
    models: Path, tmp_path: Path, command: str
) -> None:
    data = make_audit_set(tmp_path / "data")
    kind = "eval" if command == "evaluate" else "audit"
    earlier = tmp_path / "runs" / f"{kind}-a-test"
    earlier.mkdir(parents=True)
    (earlier / "notes.txt").write_text("mine")
    code, output = cli(command, models / "a.onnx", data)
    assert code == 2, output
    assert (
        f"report folder runs/{kind}-a-test exists and is not empty (pass --force to reuse it, or "
        "--out for another folder)"
    ) in output
    assert [p.name for p in earlier.iterdir()] == ["notes.txt"]
    code, output = cli(command, models / "a.onnx", data, "--out", earlier)  # named: the same
    assert code == 2 and "exists and is not empty" in output, output
    code, output = cli(command, models / "a.onnx", data, "--force")
    assert code == 0, output
    assert len(list(earlier.iterdir())) > 1
