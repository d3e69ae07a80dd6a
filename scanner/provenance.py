"""Provenance evidence: what a file's own metadata says about how it was made.

Many generators say so: IPTC `DigitalSourceType` in XMP or in a C2PA manifest, generator text
chunks in PNGs (Automatic1111 `parameters`, ComfyUI `prompt`/`workflow`, ...), an EXIF/PNG
`Software` naming a generator, Automatic1111 settings in an EXIF `UserComment`. Absence of
metadata is never evidence of anything: it is stripped by every re-encode and upload.

Everything here is cheap and bounded, because it runs on untrusted files in every decode worker:
- no XML parser ever runs (so no entity expansion, no XML bomb): XMP is searched with a regex
  whose every match is bounded, over at most `WINDOW` bytes at each end of the file;
- PNG text comes from Pillow, which caps text chunk sizes (`PngImagePlugin.MAX_TEXT_CHUNK`), and
  only keywords are looked at;
- every value copied into the report is printable ASCII and at most `MAX_VALUE` characters.

C2PA manifests are detected here, not validated: a manifest alone is neutral (cameras and
editors write them too); one that declares `trainedAlgorithmicMedia` counts as AI evidence. This
byte scan is what a row relies on without the [provenance] extra; with it, `scanner.credentials`
reads and validates every manifest found here, and its verdict replaces the `c2pa:` items
(`scanner.evidence`), so that a tampered credential is never evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from PIL import Image

# Bump when detection changes: cached evidence from an older detector is then recomputed.
VERSION = 1
WINDOW = 512 * 1024  # bytes searched at each end of the file (metadata lives near an end)
MAX_VALUE = 64
SEPARATOR = "; "
C2PA_PREFIX = "c2pa:"  # the byte scan's C2PA items
C2PA_MANIFEST = C2PA_PREFIX + "manifest"  # a manifest store is present
# Items that are reported but are not, by themselves, evidence of AI generation.
NEUTRAL = frozenset({C2PA_MANIFEST})

# IPTC NewsCodes for generative AI (https://cv.iptc.org/newscodes/digitalsourcetype/).
AI_SOURCE_TYPES = ("compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicMedia")
_SOURCE_TYPE = re.compile(
    rb"digitalsourcetype/(" + b"|".join(t.encode() for t in AI_SOURCE_TYPES) + rb")\b",
    re.IGNORECASE,
)
XMP_START, XMP_END = b"<x:xmpmeta", b"</x:xmpmeta>"
MAX_PACKETS = 4  # per window: a real file has one or two; a hostile one gets no more looks
# A C2PA manifest store is a JUMBF superbox whose description box ("jumd") has a type UUID that
# starts with the ASCII bytes "c2pa".
C2PA_MARK = b"jumdc2pa"

# PNG text keywords that generators write (Automatic1111/Forge, ComfyUI, InvokeAI, NovelAI).
PNG_GENERATOR_KEYS = frozenset(
    {"parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "dream"}
)
# Substrings of a `Software` value that name an image generator (lower case).
GENERATORS = (
    "midjourney",
    "stable diffusion",
    "dall-e",
    "dall·e",
    "novelai",
    "comfyui",
    "automatic1111",
    "invokeai",
    "dreamstudio",
    "adobe firefly",
    "leonardo.ai",
    "ideogram",
    "craiyon",
)
EXIF_SOFTWARE = 0x0131
EXIF_IFD = 0x8769
EXIF_USER_COMMENT = 0x9286


def inspect(data: bytes, image: Image.Image) -> str:
    """The evidence found in one file, as `source:key=value` items joined by "; " ("" if none).

    `data` is the file's bytes, `image` the Pillow image opened from them (loaded, so PNG text
    chunks after the pixels are known). Malformed metadata yields no item, never an exception.
    """
    items: list[str] = []
    for find in (_xmp, _c2pa, _png_text, _exif):
        try:
            items.extend(item for item in find(data, image) if item not in items)
        except Exception:  # hostile metadata must cost its evidence, never the row
            continue
    return SEPARATOR.join(items)


def declares_ai(evidence: str | None) -> bool:
    """Whether an evidence string holds at least one item that says "AI-generated"."""
    return any(item and item not in NEUTRAL for item in (evidence or "").split(SEPARATOR))


def found_manifest(evidence: str) -> bool:
    """Whether `inspect` found a C2PA manifest store (`has_c2pa_manifest` of the same bytes)."""
    return C2PA_MANIFEST in evidence.split(SEPARATOR)


def clean(value: object, limit: int = MAX_VALUE) -> str:
    """A metadata value fit for a report cell: printable ASCII, no separators, at most `limit`
    characters."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = "".join(c if c.isprintable() and c not in ";=" else " " for c in text[: limit * 4])
    return " ".join(text.split())[:limit].encode("ascii", "replace").decode()


def has_c2pa_manifest(data: bytes) -> bool:
    """Whether the bytes hold the start of a C2PA manifest store where metadata lives (one
    bounded `find` per window): the cheap test before anything parses a manifest."""
    return next(_c2pa_stores(data), None) is not None


def _windows(data: bytes) -> list[bytes]:
    if len(data) <= 2 * WINDOW:
        return [data]
    return [data[:WINDOW], data[-WINDOW:]]


def _xmp(data: bytes, image: Image.Image) -> Iterator[str]:
    # Pillow hands over the XMP it found (JPEG APP1, WebP, PNG iTXt); the windows catch the rest.
    packets = [image.info.get(key) for key in ("xmp", "XML:com.adobe.xmp")]
    blobs = [p.encode("utf-8", "replace") if isinstance(p, str) else p for p in packets if p]
    for window in _windows(data):
        blobs.extend(window[start:end] for start, end in _packets(window))
    for blob in blobs:
        if isinstance(blob, bytes) and (match := _SOURCE_TYPE.search(blob[: 2 * WINDOW])):
            yield "xmp:DigitalSourceType=" + _canonical(match.group(1))


def _packets(window: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the XMP packets in a window; plain `find`s, so linear time whatever the
    bytes (a lazy regex would rescan the window once per stray start tag)."""
    end = 0
    for _ in range(MAX_PACKETS):
        start = window.find(XMP_START, end)
        end = window.find(XMP_END, start + 1) if start >= 0 else -1
        if end < 0:
            return
        end += len(XMP_END)
        yield start, end


def _c2pa_stores(data: bytes) -> Iterator[bytes]:
    """Each window's bytes from its first C2PA manifest store marker on."""
    for window in _windows(data):
        found = window.find(C2PA_MARK)
        if found >= 0:
            yield window[found:]


def _c2pa(data: bytes, image: Image.Image) -> Iterator[str]:
    for manifest in _c2pa_stores(data):
        yield C2PA_MANIFEST
        # The manifest's c2pa.actions assertion names the digital source type, in CBOR text;
        # XMP packets are cut out so that their claim is not counted twice.
        for start, end in reversed(list(_packets(manifest))):
            manifest = manifest[:start] + manifest[end:]
        if match := _SOURCE_TYPE.search(manifest):
            yield C2PA_PREFIX + "DigitalSourceType=" + _canonical(match.group(1))


def _png_text(data: bytes, image: Image.Image) -> Iterator[str]:
    if image.format != "PNG":
        return
    text = getattr(image, "text", None) or {}
    for key in sorted(text):
        if key.lower() in PNG_GENERATOR_KEYS:
            yield "png:" + clean(key)
        elif key.lower() == "software" and _names_generator(text[key]):
            yield "png:Software=" + clean(text[key])


def _exif(data: bytes, image: Image.Image) -> Iterator[str]:
    exif = image.getexif()
    software = exif.get(EXIF_SOFTWARE)
    if software is not None and _names_generator(software):
        yield "exif:Software=" + clean(software)
    comment = _text(exif.get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT, ""))
    if "Steps: " in comment and "Sampler: " in comment:  # Automatic1111's settings, JPEG/WebP
        yield "exif:UserComment=parameters"


def _text(value: object) -> str:
    """A bounded text view of a metadata value (EXIF UserComment: 8-byte charset + text)."""
    if not isinstance(value, bytes):
        return str(value)[:8192]
    if value[:8] == b"UNICODE\0":
        body = value[8 : 8 + 8192]
        return body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", "ignore")
    return value[:8192].decode("utf-8", "ignore")  # an "ASCII\0\0\0" prefix does no harm


def _names_generator(value: object) -> bool:
    text = _text(value).lower()
    return any(name in text for name in GENERATORS)


def _canonical(source_type: bytes) -> str:
    lowered = source_type.decode("ascii").lower()
    return next(t for t in AI_SOURCE_TYPES if t.lower() == lowered)
