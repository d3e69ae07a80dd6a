"""Sign test images with C2PA Content Credentials, as an AI generator, a camera or an editor
would, with a throwaway certificate chain; and damage them afterwards (tests and
bench/provenance_bench.py).

c2pa-python, cryptography and pytest are imported inside the functions, so that a test module can
import this one and still skip cleanly where they are missing (`require_signing`).
"""

from __future__ import annotations

import datetime
import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PARENT = "parent"  # the label that ties an editor's c2pa.opened action to its ingredient


def require_signing() -> None:
    import pytest

    pytest.importorskip("c2pa", reason="needs c2pa-python: pip install 'facescan[provenance]'")
    pytest.importorskip("cryptography", reason="signing test images needs cryptography ([dev])")


@dataclass(frozen=True)
class Pki:
    """A root CA and one signing certificate it issued (PEM)."""

    ca_pem: str
    chain_pem: str  # signing certificate, then the CA
    key_pem: str


def make_pki(organisation: str = "Imaginary AI Inc", root: str = "Test Root CA") -> Pki:
    """ES256 keys. C2PA wants a signing certificate that is not a CA, has the digitalSignature
    key usage and a C2PA-accepted extended key usage (emailProtection here), and that chains to
    a CA (a self-signed signing certificate is refused)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str, org: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            ]
        )

    def usage(signing: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=signing,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not signing,
            crl_sign=not signing,
            encipher_only=False,
            decipher_only=False,
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = name(root, "Test Trust Services")

    def certificate(subject: x509.Name, public_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage(signing=not ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    ca = certificate(ca_name, ca_key.public_key(), ca=True)
    leaf = certificate(name("Test Signer", organisation), key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    ca_pem = ca.public_bytes(pem).decode()
    return Pki(ca_pem, leaf.public_bytes(pem).decode() + ca_pem, key_pem)


def image_bytes(fmt: str, seed: int = 0, size: int = 64) -> bytes:
    """A noise image (so that other pixels really are other bytes), in JPEG, PNG or WEBP."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def manifest(generator: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": list(actions)}}],
    }


def created(source_type: str) -> dict[str, Any]:
    return {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}


def ai_generator() -> dict[str, Any]:
    """What an image model writes: created, by a trained model."""
    return manifest("Imaginary Diffusion", created("trainedAlgorithmicMedia"))


def camera() -> dict[str, Any]:
    return manifest("Imaginary Camera", created("digitalCapture"))


def editor(*edits: dict[str, Any]) -> dict[str, Any]:
    """An editor that opened a parent image (`sign(..., parent=...)`) and then edited it."""
    opened = {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT]}}
    return manifest("Imaginary Editor", opened, *edits)


def generative_fill() -> dict[str, Any]:
    """An AI edit of part of the image, as IPTC and C2PA spell it."""
    return {
        "action": "c2pa.edited",
        "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia",
        "description": "Generative fill",
    }


def sign(
    source: bytes,
    fmt: str,
    definition: dict[str, Any],
    pki: Pki,
    parent: bytes | None = None,
    remote_url: str | None = None,
) -> bytes:
    """`source` with a C2PA manifest signed by `pki`. `parent`: a JPEG the editor opened
    (an ingredient, with its own credential if it has one). `remote_url`: the manifest is not
    embedded, the file only names this URL."""
    import c2pa

    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    with c2pa.Builder(definition, context=context) as builder:
        if parent is not None:
            ingredient = {"title": "original.jpg", "relationship": "parentOf", "label": PARENT}
            builder.add_ingredient(ingredient, "image/jpeg", io.BytesIO(parent))
        if remote_url:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        chain, key = pki.chain_pem.encode(), pki.key_pem.encode()
        info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None)
        with c2pa.Signer.from_info(info) as signer:
            signed = io.BytesIO()
            builder.sign(signer, MIME[fmt], io.BytesIO(source), signed)
    return signed.getvalue()


def swap_pixels(signed: bytes, fmt: str, other: bytes) -> bytes:
    """The signed file with its compressed pixels replaced by those of `other` (same format,
    size and encoder settings): a picture that still decodes, under credentials made for
    another one."""
    if fmt == "JPEG":  # everything from the start of scan on (same quantisation and Huffman)
        return signed[: _jpeg_scan_start(signed)] + other[_jpeg_scan_start(other) :]
    kind = b"IDAT" if fmt == "PNG" else b"VP8 "
    (pixels,) = [body for name, body in _chunks(other, fmt) if name == kind]
    return _join(fmt, [(n, pixels if n == kind else b) for n, b in _chunks(signed, fmt)])


def corrupt_manifest(signed: bytes, fmt: str) -> bytes:
    """The signed file with the claim's CBOR broken inside the manifest store (the container
    stays well formed: PNG chunk checksums are recomputed)."""
    claim = signed.index(b"cbor", signed.index(b"c2pa.claim")) + 4
    damaged = signed[:claim] + b"\xff" * 4 + signed[claim + 4 :]
    return _join(fmt, list(_chunks(damaged, fmt))) if fmt == "PNG" else damaged


def with_jpeg_comment(data: bytes, text: bytes) -> bytes:
    """A JPEG with a COM segment right after SOI."""
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the SOS marker, found by walking the segments (a manifest's bytes may hold
    0xFFDA anywhere)."""
    at = 2
    while data[at + 1] != 0xDA:
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return at


def _chunks(data: bytes, fmt: str) -> list[tuple[bytes, bytes]]:
    """(name, body) of the PNG chunks or the RIFF (WebP) chunks."""
    png = fmt == "PNG"
    at, found = (8 if png else 12), []
    while at < len(data):
        if png:
            (size,), name = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        else:
            name, (size,) = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])
        found.append((name, data[at + 8 : at + 8 + size]))
        at += 8 + size + (4 if png else size % 2)
    return found


def _join(fmt: str, chunks: list[tuple[bytes, bytes]]) -> bytes:
    if fmt == "PNG":
        body = b"".join(
            struct.pack(">I", len(b)) + n + b + struct.pack(">I", zlib.crc32(n + b))
            for n, b in chunks
        )
        return b"\x89PNG\r\n\x1a\n" + body
    body = b"".join(n + struct.pack("<I", len(b)) + b + b"\0" * (len(b) % 2) for n, b in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
