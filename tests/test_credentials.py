"""C2PA Content Credentials read and verified with c2pa-python, on images signed here with a
throwaway certificate chain: AI generator, camera, editor; tampered, untrusted, corrupt."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scanner import credentials
from scanner.credentials import Action, Credentials, Ingredient, TrustSettings, read_credentials
from scanner.decode import decode
from scanner.testing.c2pa_signing import (
    MIME,
    Pki,
    ai_generator,
    camera,
    corrupt_manifest,
    created,
    editor,
    generative_fill,
    image_bytes,
    make_pki,
    manifest,
    require_signing,
    sign,
    swap_pixels,
    with_jpeg_comment,
)

FORMATS = ("JPEG", "PNG", "WEBP")
SIGNER = "Imaginary AI Inc"


@pytest.fixture(scope="module")
def pki() -> Pki:
    require_signing()
    return make_pki(SIGNER)


@pytest.fixture(scope="module")
def trust(pki: Pki) -> TrustSettings:
    return TrustSettings(pki.ca_pem)


@pytest.fixture(scope="module")
def generated(pki: Pki) -> dict[str, bytes]:
    """An AI generator's output in each format."""
    return {fmt: sign(image_bytes(fmt), fmt, ai_generator(), pki) for fmt in FORMATS}


def read(data: bytes, fmt: str, trust: TrustSettings | None) -> Credentials:
    found = read_credentials(data, MIME[fmt], trust)
    assert found is not None
    return found


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_signed_images_have_credentials(fmt: str, generated: dict[str, bytes]) -> None:
    assert read_credentials(image_bytes(fmt), MIME[fmt], None) is None
    assert read_credentials(generated[fmt], MIME[fmt], None) is not None


def test_without_the_extra_the_caller_is_told_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(credentials, "_load_library", lambda: None)
    assert not credentials.available()
    assert read_credentials(image_bytes("JPEG"), "image/jpeg") is None  # nothing to verify
    marked = with_jpeg_comment(image_bytes("JPEG"), b"jumdc2pa")
    with pytest.raises(ImportError, match=r"facescan\[provenance\]"):
        read_credentials(marked, "image/jpeg")
    assert "install facescan[provenance]" in credentials.NOT_VERIFIED


@pytest.mark.parametrize("fmt", FORMATS)
def test_trusted_ai_generator_proves_ai_creation(
    fmt: str, generated: dict[str, bytes], trust: TrustSettings
) -> None:
    found = read(generated[fmt], fmt, trust)
    assert (found.validation, found.status_codes) == ("valid", ())
    assert found.declares_ai_creation and found.proves_ai_creation
    assert not found.ai_edit_of_real_ingredient
    assert found.actions == (Action("created", "trainedAlgorithmicMedia"),)
    assert (found.signer, found.signer_name) == (SIGNER, "Test Signer")
    assert found.claim_generator == "Imaginary Diffusion 1.0"
    assert found.summary() == f"C2PA: created by trained model, signed by {SIGNER}, valid"
    row = json.loads(json.dumps(found.to_dict()))
    assert row["validation"] == "valid" and row["declares_ai_creation"] is True
    assert row["actions"] == [{"action": "created", "source_type": "trainedAlgorithmicMedia"}]


@pytest.mark.parametrize("trust_list", ["none", "another CA"])
def test_signer_off_the_trust_list_is_untrusted(
    trust_list: str, generated: dict[str, bytes]
) -> None:
    trust = None if trust_list == "none" else TrustSettings(make_pki("Other", "Other CA").ca_pem)
    found = read(generated["JPEG"], "JPEG", trust)
    assert found.validation == "untrusted" and found.intact
    assert found.status_codes == ("signingCredential.untrusted",)
    assert found.declares_ai_creation and not found.proves_ai_creation  # said, not proved
    assert found.summary().endswith(f"signed by {SIGNER}, untrusted signer")


@pytest.mark.parametrize("fmt", FORMATS)
def test_pixels_changed_after_signing_are_invalid(
    fmt: str, generated: dict[str, bytes], trust: TrustSettings
) -> None:
    tampered = swap_pixels(generated[fmt], fmt, image_bytes(fmt, seed=1))
    found = read(tampered, fmt, trust)
    assert found.validation == "invalid" and "assertion.dataHash.mismatch" in found.status_codes
    assert not found.intact and not found.proves_ai_creation
    assert found.summary().startswith("C2PA: INVALID credential (assertion.dataHash.mismatch)")
    assert "not evidence" in found.summary()
    assert decode(tampered).width == 64  # the picture itself still decodes: it gets scored


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_manifest_is_unreadable_with_the_reason(
    fmt: str, generated: dict[str, bytes], trust: TrustSettings
) -> None:
    corrupt = corrupt_manifest(generated[fmt], fmt)
    found = read(corrupt, fmt, trust)
    assert found.validation == "unreadable" and not found.intact
    assert "CBOR" in found.reason
    assert found.summary() == f"C2PA: unreadable credential ({found.reason})"
    assert decode(corrupt).width == 64  # costs the credential only


def test_camera_capture(pki: Pki, trust: TrustSettings) -> None:
    found = read(sign(image_bytes("JPEG"), "JPEG", camera(), pki), "JPEG", trust)
    assert (found.validation, found.origin) == ("valid", "digitalCapture")
    assert not found.declares_ai_creation and not found.ai_edit_of_real_ingredient
    assert found.summary() == f"C2PA: captured by camera, signed by {SIGNER}, valid"


@pytest.mark.parametrize("signed_parent", [True, False])
def test_ai_edit_of_a_photo_is_edit_evidence_not_creation(
    signed_parent: bool, pki: Pki, trust: TrustSettings
) -> None:
    photo = image_bytes("JPEG", seed=2)
    parent = sign(photo, "JPEG", camera(), pki) if signed_parent else photo
    edited = sign(image_bytes("JPEG", seed=3), "JPEG", editor(generative_fill()), pki, parent)
    found = read(edited, "JPEG", trust)
    assert found.validation == "valid"
    assert found.ai_edit_of_real_ingredient and not found.declares_ai_creation
    assert not found.proves_ai_creation
    origin = "digitalCapture" if signed_parent else ""
    assert found.ingredients == (Ingredient("original.jpg", "parentOf", origin),)
    assert found.summary() == (
        "C2PA: AI edit (compositeWithTrainedAlgorithmicMedia) of original.jpg, "
        f"signed by {SIGNER}, valid"
    )


def test_plain_edit_of_an_ai_image_stays_ai(
    pki: Pki, generated: dict[str, bytes], trust: TrustSettings
) -> None:
    crop = {"action": "c2pa.cropped"}
    cropped = sign(image_bytes("JPEG", seed=4), "JPEG", editor(crop), pki, generated["JPEG"])
    found = read(cropped, "JPEG", trust)
    assert found.actions == (Action("opened"), Action("cropped"))  # the editor did no AI...
    assert found.origin == "trainedAlgorithmicMedia"  # ...but its parent was generated
    assert found.proves_ai_creation and not found.ai_edit_of_real_ingredient


def test_manifest_text_is_cleaned_for_reports(pki: Pki) -> None:
    hostile = manifest("Evil; gen=1\n<b>" + "x" * 300, created("trainedAlgorithmicMedia"))
    found = read(sign(image_bytes("PNG"), "PNG", hostile, pki), "PNG", None)
    assert found.claim_generator.startswith("Evil gen 1 <b>") and len(found.claim_generator) <= 64
    assert ";" not in found.summary() and "\n" not in found.summary()


def test_hostile_manifest_bytes_cost_only_the_credential(
    generated: dict[str, bytes], trust: TrustSettings
) -> None:
    signed = generated["JPEG"]
    store = signed.index(b"jumdc2pa")
    outcomes = set()
    for at in range(store - 40, store + 2500, 7):  # headers, claim, signature, certificates
        damaged = signed[:at] + bytes([signed[at] ^ 0x5A]) + signed[at + 1 :]
        found = read_credentials(damaged, "image/jpeg", trust)  # must not raise
        assert found is None or found.validation != "unreadable" or found.reason
        outcomes.add(found.validation if found else None)
    assert {"unreadable", "invalid"} <= outcomes


@pytest.fixture
def manifest_server() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP server that records each request (before it answers 404)."""
    server = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                requests.append(connection.recv(1024))
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/manifest.c2pa", requests
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (close alone may not)
    server.close()
    thread.join()


def test_remote_manifest_is_never_fetched(
    pki: Pki, manifest_server: tuple[str, list[bytes]]
) -> None:
    url, requests = manifest_server
    remote = sign(image_bytes("JPEG"), "JPEG", ai_generator(), pki, remote_url=url)
    assert read_credentials(remote, "image/jpeg") is None  # no embedded manifest: not looked at
    # A store marker planted in a comment gets the library called on a file naming a URL.
    planted = with_jpeg_comment(remote, b"jumdc2pa")
    found = read(planted, "JPEG", None)
    assert found.validation == "unreadable" and "remote" in found.reason.lower()
    assert requests == []  # a fetch would have been answered (and recorded) before the read


def test_threads_share_the_library(
    pki: Pki, generated: dict[str, bytes], trust: TrustSettings
) -> None:
    files = [
        generated["JPEG"],
        swap_pixels(generated["PNG"], "PNG", image_bytes("PNG", seed=1)),
        corrupt_manifest(generated["WEBP"], "WEBP"),
        sign(image_bytes("JPEG"), "JPEG", camera(), pki),
        image_bytes("JPEG"),
    ] * 8
    mimes = ["image/jpeg", "image/png", "image/webp", "image/jpeg", "image/jpeg"] * 8
    alone = [read_credentials(data, mime, trust) for data, mime in zip(files, mimes, strict=True)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(read_credentials, files, mimes, [trust] * len(files)))
    assert together == alone
    assert [c.validation if c else None for c in alone[:5]] == [
        "valid",
        "invalid",
        "unreadable",
        "valid",
        None,
    ]


def _validation_in_child(data: bytes, trust: TrustSettings) -> str:
    found = read_credentials(data, "image/jpeg", trust)
    return f"{found.validation} {found.reason}".strip() if found else "none"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_reads_too(generated: dict[str, bytes], trust: TrustSettings) -> None:
    assert read(generated["JPEG"], "JPEG", trust).validation == "valid"  # parent's Context made
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_validation_in_child, (generated["JPEG"], trust)) == "valid"


def test_trust_files_are_checked_up_front(tmp_path: Path, pki: Pki) -> None:
    good, text, broken = tmp_path / "ca.pem", tmp_path / "notes.txt", tmp_path / "broken.pem"
    good.write_text(pki.ca_pem)
    text.write_text("just some notes\n")
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    assert TrustSettings.from_files(good) == TrustSettings(pki.ca_pem)
    with pytest.raises(ValueError, match="cannot read trust list"):
        TrustSettings.from_files(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="not a PEM certificate file"):
        TrustSettings.from_files(good, text)
    with pytest.raises(ValueError, match="broken.pem: not a usable trust list"):
        TrustSettings.from_files(broken)


def test_mime_type_for_decoded_formats() -> None:
    assert credentials.mime_type("MPO") == "image/jpeg"  # phone JPEGs open as MPO
    assert credentials.mime_type("WEBP") == "image/webp"
    assert credentials.mime_type("BMP") == ""  # the library guesses from the bytes
