"""HEIC/AVIF: scanned with the [heic] extra (AVIF by Pillow itself), clear error rows without."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import build_red_model
from PIL import Image

from scanner import Scanner, ScanResult, decode
from scanner.walk import is_image_name

RED = Image.new("RGB", (64, 48), (255, 0, 0))


def heic_bytes() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif", reason="needs the [heic] extra")
    buffer = io.BytesIO()
    pillow_heif.from_pillow(RED).save(buffer, quality=90)
    return buffer.getvalue()


def avif_bytes() -> bytes:
    if not decode.AVIF_SUPPORT:
        pytest.skip("this Pillow has no AVIF codec")
    buffer = io.BytesIO()
    RED.save(buffer, "AVIF", quality=90)
    return buffer.getvalue()


def scan_one(tmp_path: Path, name: str, data: bytes) -> ScanResult:
    (tmp_path / name).write_bytes(data)
    scanner = Scanner(build_red_model(tmp_path / "red.onnx"), provider="cpu", workers=1)
    (result,) = scanner.scan([tmp_path / name])
    return result


@pytest.mark.parametrize(
    ("name", "make", "fmt"), [("p.heic", heic_bytes, "HEIF"), ("p.avif", avif_bytes, "AVIF")]
)
def test_scanned_when_a_decoder_is_installed(
    tmp_path: Path, name: str, make: Callable[[], bytes], fmt: str
) -> None:
    r = scan_one(tmp_path, name, make())
    assert (r.status, r.format, r.width, r.height) == ("ok", fmt, 64, 48)
    assert r.label == "ai" and r.score is not None and r.score > 0.9


def test_heic_without_the_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = heic_bytes()
    monkeypatch.setattr(decode, "HEIF_SUPPORT", False)
    result = scan_one(tmp_path, "phone.heic", data)
    assert (result.status, result.error) == (
        "error",
        "HEIC/HEIF image: install facescan[heic] to scan it",
    )


def test_avif_without_a_codec_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = avif_bytes()
    monkeypatch.setattr(decode, "AVIF_SUPPORT", False)
    with pytest.raises(decode.ImageError, match="AVIF image: .*Pillow"):
        decode.decode(data)


def test_heif_brands_are_recognised_without_a_decoder() -> None:
    box = b"\x00\x00\x00\x18ftyp"
    assert decode.describe_content(box + b"heic\x00\x00\x00\x00mif1heic") == "HEIC/HEIF"
    assert decode.describe_content(box + b"mif1\x00\x00\x00\x00mif1avif") == "AVIF"
    assert decode.describe_content(box + b"avif\x00\x00\x00\x00") == "AVIF"
    assert all(is_image_name(n) for n in ("a.HEIC", "b.heif", "c.avif"))
