"""C2PA credentials in scans (issue 18): images signed here (scanner/testing/c2pa_signing.py)
scanned through `Scanner` and the CLI, in JPEG, PNG and WebP. A valid AI credential labels `ai`
with reason `provenance`; a tampered one is reported, never evidence; an untrusted signer is said;
an AI edit of a real photo is evidence only; a corrupt manifest costs only the credential. The
cache carries the credential, keyed by the trust list; the Ray engine carries it; without the
library the row says the credential was not verified."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from commands import facescan, read_report, sarif_errors
from conftest import build_red_model

from scanner import Scanner, ScanResult, credentials
from scanner.errors import UsageError
from scanner.preprocess import FaceCropSpec, PreprocessSpec
from scanner.testing.c2pa_signing import (
    Pki,
    ai_generator,
    corrupt_manifest,
    editor,
    generative_fill,
    image_bytes,
    make_pki,
    require_signing,
    sign,
    swap_pixels,
)

SIGNER, OTHER = "Imaginary AI Inc", "Unknown Studio"
AI = "trainedAlgorithmicMedia"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# The red model scores noise images about 0.5: at this threshold only evidence labels them ai.
THRESHOLD = 0.99
CASES = ("generated", "tampered", "untrusted", "edited", "corrupt", "plain")
# case -> (label, reason, validation); None: no provenance object
EXPECTED = {
    "generated": ("ai", "provenance", "valid"),
    "tampered": ("real", "model", "invalid"),
    "untrusted": ("ai", "metadata", "untrusted"),  # said, not proved: as the byte scan labels it
    "edited": ("real", "model", "valid"),
    "corrupt": ("real", "model", "unreadable"),
    "plain": ("real", "model", None),
}


@pytest.fixture(scope="module")
def pki() -> Pki:
    require_signing()
    return make_pki(SIGNER)


@pytest.fixture(scope="module")
def trust_file(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "trusted.pem"
    path.write_text(pki.ca_pem)
    return path


@pytest.fixture(scope="module")
def other_trust_file(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Path:
    path = tmp_path_factory.mktemp("trust") / "other.pem"
    path.write_text(make_pki(OTHER, "Another Root CA").ca_pem)
    return path


def signed_case(case: str, fmt: str, pki: Pki, stranger: Pki) -> bytes:
    generated = sign(image_bytes(fmt), fmt, ai_generator(), pki)
    if case == "generated":
        return generated
    if case == "tampered":  # the pixels replaced after signing
        return swap_pixels(generated, fmt, image_bytes(fmt, seed=1))
    if case == "untrusted":  # a signer whose root is on no trust list given
        return sign(image_bytes(fmt, seed=4), fmt, ai_generator(), stranger)
    if case == "edited":  # generative fill on an unsigned photo, its ingredient
        fill = editor(generative_fill())
        return sign(image_bytes(fmt, seed=3), fmt, fill, pki, image_bytes("JPEG", seed=2))
    if case == "corrupt":
        return corrupt_manifest(generated, fmt)
    return image_bytes(fmt, seed=5)


@pytest.fixture(scope="module")
def pile(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case in every format: `generated.jpg`, `tampered.png`, ..."""
    root = tmp_path_factory.mktemp("signed")
    stranger = make_pki(OTHER, "Stranger Root CA")
    for fmt, ext in EXTENSIONS.items():
        for case in CASES:
            (root / f"{case}.{ext}").write_bytes(signed_case(case, fmt, pki, stranger))
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_red_model(tmp_path_factory.mktemp("model") / "red.onnx")


def scan(model: Path, pile: Path, **options: Any) -> dict[str, ScanResult]:
    options = {"provider": "cpu", "workers": 1, "threshold": THRESHOLD, **options}
    with Scanner(model, **options) as scanner:
        return {Path(r.path).name: r for r in scanner.scan([pile])}


def case_of(name: str) -> str:
    return name.split(".")[0]


def validation(row: ScanResult) -> str | None:
    return None if row.provenance is None else row.provenance["validation"]


def test_each_case_is_labelled_and_reported(model: Path, pile: Path, trust_file: Path) -> None:
    rows = scan(model, pile, c2pa_trust=[trust_file])
    assert len(rows) == len(CASES) * len(EXTENSIONS)
    for name, row in rows.items():
        label, reason, expected_validation = EXPECTED[case_of(name)]
        assert row.status == "ok" and row.score is not None, name  # every file is scored
        assert (row.label, row.reason) == (label, reason), name
        assert validation(row) == expected_validation, name
        if row.provenance is not None:  # the summary is the evidence, the byte scan's c2pa
            assert row.provenance["summary"] in (row.evidence or "").split("; "), name
            assert "c2pa:" not in (row.evidence or ""), name  # items no longer count
    for ext in EXTENSIONS.values():
        generated = rows[f"generated.{ext}"].provenance
        assert generated is not None
        assert (generated["signer"], generated["claim_generator"]) == (
            SIGNER,
            "Imaginary Diffusion 1.0",
        )
        assert generated["actions"] == ({"action": "created", "source_type": AI},)
        assert generated["summary"] == f"C2PA: created by trained model, signed by {SIGNER}, valid"
        tampered = rows[f"tampered.{ext}"]
        assert tampered.evidence and tampered.evidence.startswith("C2PA: INVALID credential")
        assert (
            tampered.provenance
            and "assertion.dataHash.mismatch" in tampered.provenance["status_codes"]
        )
        untrusted = rows[f"untrusted.{ext}"].provenance
        assert untrusted and untrusted["summary"].endswith(f"signed by {OTHER}, untrusted signer")
        edited = rows[f"edited.{ext}"].provenance
        assert edited and edited["ai_edit_of_real_ingredient"] is True
        assert [i["title"] for i in edited["ingredients"]] == ["original.jpg"]
        assert edited["summary"].startswith("C2PA: AI edit (compositeWithTrainedAlgorithmicMedia)")
        corrupt = rows[f"corrupt.{ext}"]
        assert corrupt.provenance and "CBOR" in corrupt.provenance["reason"]
        assert corrupt.evidence == f"C2PA: unreadable credential ({corrupt.provenance['reason']})"
        assert (rows[f"plain.{ext}"].evidence, rows[f"plain.{ext}"].provenance) == ("", None)


def test_ignore_metadata_labels_by_score_and_still_reports(
    model: Path, pile: Path, trust_file: Path
) -> None:
    rows = scan(model, pile, c2pa_trust=[trust_file], use_metadata=False)
    assert {(r.label, r.reason) for r in rows.values()} == {("real", "model")}
    assert validation(rows["generated.png"]) == "valid"


def provenance_of(rows: dict[str, ScanResult]) -> dict[str, Any]:
    return {name: row.provenance for name, row in rows.items()}


def test_cache_carries_the_credential_keyed_by_the_trust_list(
    tmp_path: Path, model: Path, pile: Path, trust_file: Path, other_trust_file: Path
) -> None:
    cache = tmp_path / "cache.db"
    first = scan(model, pile, cache=cache, c2pa_trust=[trust_file])
    again = scan(model, pile, cache=cache, c2pa_trust=[trust_file], workers=2)
    assert not any(r.cached for r in first.values()) and all(r.cached for r in again.values())
    assert [dataclasses.replace(r, cached=False) for r in again.values()] == list(first.values())
    other = scan(model, pile, cache=cache, c2pa_trust=[other_trust_file])
    assert not any(r.cached for r in other.values())  # another trust list: a miss
    assert validation(other["generated.jpg"]) == "untrusted"
    assert not any(r.cached for r in scan(model, pile, cache=cache).values())  # none: a miss


def without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if c2pa-python were not installed (`credentials.available()` is False)."""
    monkeypatch.setattr(credentials, "_load_library", lambda: None)


def test_without_the_library_the_row_says_not_verified(
    monkeypatch: pytest.MonkeyPatch, model: Path, pile: Path
) -> None:
    without_library(monkeypatch)
    rows = scan(model, pile)
    unverified = {"validation": "unverified", "summary": credentials.NOT_VERIFIED}
    for name, row in rows.items():
        signed = case_of(name) != "plain"
        assert row.provenance == (unverified if signed else None), name
        if signed:
            assert row.evidence and row.evidence.split("; ")[0] == "c2pa:manifest"
            assert row.evidence.endswith(credentials.NOT_VERIFIED)
    # The byte scan, as before: every manifest that names AI labels the file, even a tampered
    # one (it cannot tell), but not a corrupt one whose claim it cannot find.
    assert (rows["generated.webp"].label, rows["generated.webp"].reason) == ("ai", "metadata")
    assert rows["tampered.jpg"].label == "ai"


def test_a_cache_written_without_the_library_is_verified_later(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: Path, pile: Path, trust_file: Path
) -> None:
    cache = tmp_path / "cache.db"
    with monkeypatch.context() as patch:
        without_library(patch)
        before = scan(model, pile, cache=cache)
    after = scan(model, pile, cache=cache)
    assert all(r.cached for r in after.values())
    assert validation(before["generated.jpg"]) == "unverified"
    assert validation(after["generated.jpg"]) == "untrusted"
    assert after["tampered.jpg"].label == "real"  # no longer labelled by the byte scan


def test_a_trust_list_needs_the_library(
    monkeypatch: pytest.MonkeyPatch, model: Path, trust_file: Path
) -> None:
    without_library(monkeypatch)
    with pytest.raises(UsageError, match=r"--c2pa-trust needs c2pa-python.*facescan\[provenance\]"):
        Scanner(model, provider="cpu", c2pa_trust=[trust_file])


def test_face_crops_read_the_credential_too(tmp_path: Path, pile: Path, trust_file: Path) -> None:
    faces = PreprocessSpec(input_size=32, faces=FaceCropSpec(output_size=32))
    face_model = build_red_model(tmp_path / "faces.onnx", faces)
    rows = scan(face_model, pile, c2pa_trust=[trust_file])
    assert rows["generated.jpg"].faces == ()  # the face path ran (and found no face in noise)
    assert (rows["generated.jpg"].label, rows["generated.jpg"].reason) == ("ai", "provenance")
    assert validation(rows["tampered.png"]) == "invalid"


def test_the_ray_engine_carries_the_credential(
    ray_cluster: str, model: Path, pile: Path, trust_file: Path
) -> None:
    local = scan(model, pile, c2pa_trust=[trust_file])
    ray = scan(model, pile, c2pa_trust=[trust_file], engine="ray", workers=None)
    assert list(ray) == list(local)
    for name, row in ray.items():
        assert (row.label, row.reason, row.provenance, row.evidence) == (
            local[name].label,
            local[name].reason,
            local[name].provenance,
            local[name].evidence,
        ), name


def scan_cli(pile: Path, model: Path, out: Path, *options: object) -> None:
    """The CLI's scan of the pile into `out`: exit 1, the valid AI credentials being flagged."""
    done = facescan(pile, "--model", model, "--threshold", THRESHOLD, "--out", out, *options)
    assert done.returncode == 1, done.stderr


def test_cli_reports_the_credential(
    tmp_path: Path, model: Path, pile: Path, trust_file: Path
) -> None:
    scan_cli(pile, model, tmp_path / "r.jsonl", "--c2pa-trust", trust_file)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    rows = {Path(row["path"]).name: row for row in map(json.loads, lines)}
    generated = rows["generated.webp"]
    assert (generated["label"], generated["reason"]) == ("ai", "provenance")
    assert generated["provenance"] == {
        "validation": "valid",
        "reason": "",
        "status_codes": [],
        "claim_generator": "Imaginary Diffusion 1.0",
        "signer": SIGNER,
        "signer_name": "Test Signer",
        "signing_time": "",  # no time-stamp authority signed here
        "actions": [{"action": "created", "source_type": AI}],
        "ingredients": [],
        "origin": AI,
        "ai_edit_of_real_ingredient": False,
        "declares_ai_creation": True,
        "summary": f"C2PA: created by trained model, signed by {SIGNER}, valid",
    }
    assert rows["plain.jpg"]["provenance"] is None
    scan_cli(pile, model, tmp_path / "r.csv", "--c2pa-trust", trust_file)
    for row in read_report(tmp_path / "r.csv"):
        name = Path(row["path"]).name
        label, reason, expected_validation = EXPECTED[case_of(name)]
        assert (row["label"], row["reason"]) == (label, reason), name
        assert row["provenance"] == (expected_validation or ""), name
        assert row["evidence"] == ((rows[name]["provenance"] or {}).get("summary") or ""), name


def test_ci_reports_show_a_tampered_credential(
    tmp_path: Path, model: Path, pile: Path, trust_file: Path
) -> None:
    pytest.importorskip("jsonschema", reason="jsonschema is not installed ([dev])")
    scan_cli(pile, model, tmp_path / "r.sarif", "--c2pa-trust", trust_file)
    document = json.loads((tmp_path / "r.sarif").read_text())
    assert sarif_errors(document) == []
    (run,) = document["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    found: dict[str, dict[str, str]] = {}  # rule -> file name -> message
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        found.setdefault(result["ruleId"], {})[Path(uri).name] = result["message"]["text"]
    names = {case: sorted(f"{case}.{ext}" for ext in EXTENSIONS.values()) for case in CASES}
    invalid = found["invalid-content-credential"]
    assert sorted(invalid) == names["tampered"]
    assert all("assertion.dataHash.mismatch" in text for text in invalid.values())
    assert sorted(found["ai-generated-face"]) == sorted(names["generated"] + names["untrusted"])
    proved = found["ai-generated-face"]["generated.png"]
    assert proved.startswith("flagged ai: its valid C2PA credential declares AI creation")

    scan_cli(pile, model, tmp_path / "r.xml", "--c2pa-trust", trust_file)
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.get("failures") == "6"  # a tampered credential is a note, not a failure
    for case in root.iter("testcase"):
        note = case.findtext("system-out") or ""
        tampered = Path(case.get("name", "")).name.startswith("tampered.")
        assert ("C2PA credential fails validation" in note) == tampered, case.get("name")


def test_a_bad_trust_list_stops_the_scan(tmp_path: Path, model: Path, pile: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not certificates\n")
    for trust, message in ((notes, "not a PEM certificate file"), (tmp_path / "no.pem", "cannot")):
        done = facescan(pile, "--model", model, "--c2pa-trust", trust, "--out", tmp_path / "r.csv")
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert str(trust) in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "r.csv").exists()  # refused before the scan


def facescan_without_library(*args: object) -> subprocess.CompletedProcess[str]:
    """`facescan` in a process where c2pa-python cannot be imported."""
    code = "import sys; sys.modules['c2pa'] = None; from scanner.cli import main; main()"
    command = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_cli_without_the_library(tmp_path: Path, model: Path, pile: Path, trust_file: Path) -> None:
    out = tmp_path / "r.csv"
    done = facescan_without_library(pile, "--model", model, "--threshold", THRESHOLD, "-o", out)
    assert done.returncode == 1, done.stderr
    for row in read_report(out):
        signed = not Path(row["path"]).name.startswith("plain.")
        assert row["provenance"] == ("unverified" if signed else ""), row["path"]
        assert row["evidence"].endswith(credentials.NOT_VERIFIED) == signed, row["path"]
    refused = facescan_without_library(pile, "--model", model, "--c2pa-trust", trust_file)
    assert refused.returncode == 2 and "install facescan[provenance]" in refused.stderr


def test_parquet_holds_the_credential(
    tmp_path: Path, model: Path, pile: Path, trust_file: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet reports need pyarrow")
    scan_cli(pile, model, tmp_path / "r.jsonl", "--c2pa-trust", trust_file)
    scan_cli(pile, model, tmp_path / "r.parquet", "--c2pa-trust", trust_file)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    expected = {row["path"]: row["provenance"] for row in map(json.loads, lines)}
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert {row["path"]: row["provenance"] for row in table} == expected
