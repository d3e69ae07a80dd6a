"""Provenance evidence: what metadata says, how it labels a row, and hostile metadata."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import build_red_model, noise_image
from images import jpeg_bytes, png_bytes
from PIL import Image, PngImagePlugin

from scanner import Scanner
from scanner.decode import ImageError, decode
from scanner.provenance import clean, declares_ai

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
BLUE = Image.new("RGB", (16, 16), (0, 0, 255))  # the red model scores it 0


def xmp(source_type: str, extra: str = "") -> bytes:
    return (
        f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>{extra}'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"/></rdf:RDF></x:xmpmeta>'
        '<?xpacket end="w"?>'
    ).encode()


def png_with_text(image: Image.Image = BLUE, **chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return png_bytes(image, pnginfo=info)


def jpeg_with_exif(tags: dict[int, object], ifd: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    for tag, value in (ifd or {}).items():
        exif.get_ifd(0x8769)[tag] = value
    return jpeg_bytes(BLUE, exif=exif.tobytes())


def jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    """A JPEG with one extra APPn segment right after SOI."""
    plain = jpeg_bytes(BLUE)
    return plain[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + plain[2:]


def c2pa_segment(claim: bytes = b"") -> bytes:
    """The start of a C2PA manifest store in a JPEG APP11 (JUMBF) segment."""
    uuid = b"c2pa\x00\x11\x00\x10\x80\x00\x00\xaa\x00\x38\x9b\x71"
    description = b"jumd" + uuid + b"\x03c2pa\x00"
    box = struct.pack(">I", 8 + len(description)) + description + claim
    return b"JP\x02\x11\x00\x00\x00\x01" + struct.pack(">I", 8 + len(box)) + b"jumb" + box


def evidence(data: bytes) -> str:
    return decode(data).evidence


SDXL_COMMENT = b"UNICODE\0" + "cat, Steps: 30, Sampler: DPM++".encode("utf-16-be")
C2PA_CLAIM = b"digitalSourceType" + IPTC.encode() + b"trainedAlgorithmicMedia"
CASES = [
    (jpeg_bytes(BLUE), ""),
    (png_bytes(BLUE), ""),
    (jpeg_bytes(BLUE, xmp=xmp("digitalCapture")), ""),  # a camera says so: not AI
    (
        jpeg_bytes(BLUE, xmp=xmp("trainedAlgorithmicMedia")),
        "xmp:DigitalSourceType=trainedAlgorithmicMedia",
    ),
    (
        png_with_text(
            BLUE, **{"XML:com.adobe.xmp": xmp("compositeWithTrainedAlgorithmicMedia").decode()}
        ),
        "xmp:DigitalSourceType=compositeWithTrainedAlgorithmicMedia",
    ),
    (png_with_text(parameters="a face, Steps: 20, Sampler: Euler a"), "png:parameters"),
    (png_with_text(prompt="{}", workflow="{}"), "png:prompt; png:workflow"),
    (png_with_text(Software="NovelAI"), "png:Software=NovelAI"),
    (png_with_text(Comment="holiday", Software="GIMP 2.10"), ""),
    (jpeg_with_exif({0x0131: "Midjourney v6"}), "exif:Software=Midjourney v6"),
    (jpeg_with_exif({0x0131: "Adobe Photoshop 25.0"}), ""),
    (jpeg_with_exif({}, {0x9286: SDXL_COMMENT}), "exif:UserComment=parameters"),
    (jpeg_with_segment(0xEB, c2pa_segment()), "c2pa:manifest"),
    (
        jpeg_with_segment(0xEB, c2pa_segment(C2PA_CLAIM)),
        "c2pa:manifest; c2pa:DigitalSourceType=trainedAlgorithmicMedia",
    ),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_evidence_items(data: bytes, expected: str) -> None:
    assert evidence(data) == expected


def test_only_ai_items_declare_ai() -> None:
    assert not declares_ai("") and not declares_ai(None)
    assert not declares_ai("c2pa:manifest")  # cameras and editors sign too
    assert declares_ai("c2pa:manifest; c2pa:DigitalSourceType=trainedAlgorithmicMedia")
    assert declares_ai("png:parameters")


def test_values_are_cleaned_for_the_report() -> None:
    value = clean("Midjourney\n; =evil\x00" + "x" * 500)
    assert value.startswith("Midjourney") and len(value) <= 64
    assert value.isprintable() and ";" not in value and "=" not in value
    assert clean(b"\xff\xfe stable diffusion") == "?? stable diffusion"


def evidence_within_cpu_seconds(data: bytes, seconds: int = 10) -> str:
    """The evidence, found by a child process that the kernel stops after `seconds` of CPU time:
    a guard against blow-ups (an expanded entity, a quadratic search) that no machine load can
    trip, unlike a wall-clock bound. The work itself takes milliseconds."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_CPU, ({seconds}, {seconds}))\n"
        "from scanner.decode import decode\n"
        "sys.stdout.write(decode(sys.stdin.buffer.read()).evidence)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True)
    assert done.returncode == 0, f"stopped after {seconds} s of CPU: {done.stderr[-300:]!r}"
    return done.stdout.decode()


def test_xml_bomb_is_not_expanded() -> None:
    lol = '<!DOCTYPE x [<!ENTITY a "trainedAlgorithmicMedia">' + "".join(
        f'<!ENTITY {c} "&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    data = jpeg_bytes(BLUE, xmp=lol.encode() + b"<x:xmpmeta>&i;</x:xmpmeta>")
    # An entity reference is not a declaration: nothing expands (expanded: 10^9 copies).
    assert evidence_within_cpu_seconds(data) == ""


def test_stray_xmp_tags_cost_linear_time() -> None:
    data = png_bytes(BLUE) + b"<x:xmpmeta " * 100_000  # trailing junk after IEND
    # A search that rescanned the window per stray start tag would be 10^5 x 512 KB.
    assert evidence_within_cpu_seconds(data) == ""


def test_oversized_text_chunk_is_safe() -> None:
    big = png_with_text(noise_image(32), parameters="Steps: 1, " * 400_000)  # 4 MB chunk
    assert evidence(big) == "png:parameters"  # only the keyword is looked at


def test_compressed_text_bomb_is_safe() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    bomb = chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"\0" * 20_000_000, 9))
    plain = png_bytes(BLUE)
    data = plain[:33] + bomb + plain[33:]  # after the signature and IHDR
    # Pillow stops inflating at MAX_TEXT_CHUNK and refuses the file: an error row, not a crash.
    with pytest.raises(ImageError, match="too large"):
        decode(data)


def test_corrupt_exif_costs_only_the_evidence() -> None:
    data = jpeg_with_segment(0xE1, b"Exif\0\0MM\0\x2a\xff\xff\xff\xff garbage")
    assert decode(data).evidence == ""


@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    folder = tmp_path / "pile"
    folder.mkdir()
    (folder / "generated.png").write_bytes(png_with_text(parameters="Steps: 20, Sampler: Euler"))
    (folder / "plain.png").write_bytes(png_bytes(BLUE))
    return folder


def test_metadata_labels_ai_even_when_the_model_scores_low(tmp_path: Path, tagged: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    for use_metadata, label, reason in ((True, "ai", "metadata"), (False, "real", "model")):
        scanner = Scanner(model, provider="cpu", workers=1, use_metadata=use_metadata)
        rows = {Path(r.path).name: r for r in scanner.scan([tagged])}
        generated = rows["generated.png"]
        assert (generated.label, generated.reason, generated.score) == (label, reason, 0.0)
        assert generated.evidence == "png:parameters"  # reported either way
        assert (rows["plain.png"].label, rows["plain.png"].evidence) == ("real", "")


def test_cli_ignore_metadata(tmp_path: Path, tagged: Path) -> None:
    from test_cli import facescan, read_report

    model = build_red_model(tmp_path / "red.onnx")
    for flags, code in (((), 1), (("--ignore-metadata",), 0)):
        done = facescan(tagged, "--model", model, "--out", tmp_path / "r.csv", "-q", *flags)
        assert done.returncode == code, done.stderr
    rows = read_report(tmp_path / "r.csv")
    assert [r["evidence"] for r in rows] == ["png:parameters", ""]


def test_stored_image_is_untouched_by_inspection() -> None:
    # Reading the metadata must not change the pixels the model sees.
    data = png_with_text(noise_image(20), parameters="x")
    assert decode(data).image.tobytes() == Image.open(io.BytesIO(data)).convert("RGB").tobytes()
