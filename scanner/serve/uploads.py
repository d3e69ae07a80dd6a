"""A `POST /v1/scan` body into the images it carries, in memory, or the HTTP error that says why
not: 415 for a media type that cannot carry images, 413 past the size or file-count limit,
400 for a malformed body.

Two ways in: `multipart/form-data`, where every part with a file name is an image (other form
fields are ignored), or one image as the whole body (`image/*` or `application/octet-stream`,
named by `?name=`). Multipart bodies are parsed as they arrive with python-multipart's
low-level parser, keeping parts in memory: Starlette's form parser spools files over 1 MB to
disk, and an upload must never touch the disk unless `--keep` asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

MULTIPART = "multipart/form-data"
# python-multipart logs each parse error as a bare warning, then raises it: MalformedBody says it
# once, with the request.
logging.getLogger("python_multipart").setLevel(logging.ERROR)
RAW_TYPES = ("image/", "application/octet-stream")
DEFAULT_NAME = "upload"  # a raw body's row path without ?name=


class HttpError(Exception):
    """A request the service refuses; the app answers `{"error": message}` with `status`."""

    logged = False  # whether the app also logs the refusal, with the request it came from

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class MalformedBody(HttpError):
    """A multipart body that does not parse: a broken client an operator may want to find, so
    it is logged (python-multipart's own warning, which names no request, is not)."""

    logged = True


@dataclass(frozen=True)
class Upload:
    name: str  # the file name the client gave: the row's `path`
    data: bytes


@dataclass(frozen=True)
class BodyLimits:
    max_request_bytes: int
    max_files: int


async def read_uploads(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    name: str | None,
    limits: BodyLimits,
    hold: Callable[[int], None],
) -> list[Upload]:
    """The images of one request. `hold(n)` is called for every n bytes read, before they are
    kept (it raises HttpError 503 when the service holds too much already)."""
    media, params = parse_options_header(content_type or "")
    media_type = media.decode("latin-1")
    reader: FormReader | RawReader
    if media_type == MULTIPART:
        boundary = params.get(b"boundary")
        if not boundary:
            raise HttpError(400, "multipart/form-data without a boundary parameter")
        reader = FormReader(boundary, limits.max_files)
    elif media_type.startswith(RAW_TYPES):
        reader = RawReader(name or DEFAULT_NAME)
    else:
        raise HttpError(
            415,
            f"unsupported media type {media_type or '(none)'!r}: send multipart/form-data "
            "(one part per image) or one image as image/* or application/octet-stream",
        )
    check_length(content_length, limits.max_request_bytes)
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limits.max_request_bytes:
            raise too_large(limits.max_request_bytes)
        hold(len(chunk))
        reader.write(chunk)
    return reader.finish()


def check_length(declared: str | None, limit: int) -> None:
    """Refuse a body that says it is too large before reading any of it."""
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise HttpError(400, f"invalid Content-Length {declared!r}") from None
    if length > limit:
        raise too_large(limit)


def too_large(limit: int) -> HttpError:
    return HttpError(413, f"request body larger than {limit:,} bytes (--max-request-bytes)")


def text(raw: bytes) -> str:
    """A header value's bytes as text; bytes that are not UTF-8 survive for `printable`."""
    return raw.decode("utf-8", "surrogateescape")


class RawReader:
    """The whole body is one image."""

    def __init__(self, name: str) -> None:
        self.name, self.chunks = name, list[bytes]()

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> list[Upload]:
        data = b"".join(self.chunks)
        if not data:
            raise HttpError(400, "empty request body: send an image")
        return [Upload(self.name, data)]


class FormReader:
    """multipart/form-data: each part with a filename is one image."""

    def __init__(self, boundary: bytes, max_files: int) -> None:
        self.max_files = max_files
        self.uploads: list[Upload] = []
        self.headers: dict[bytes, bytes] = {}
        self.field = self.value = b""
        self.data: list[bytes] = []
        self.ended = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda b, s, e: self._add("field", b[s:e]),
                "on_header_value": lambda b, s, e: self._add("value", b[s:e]),
                "on_header_end": self._header_end,
                "on_part_data": lambda b, s, e: self.data.append(b[s:e]),
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise MalformedBody(400, f"malformed multipart body: {e}") from None

    def finish(self) -> list[Upload]:
        if not self.ended:
            raise HttpError(400, "malformed multipart body: it ends before its closing boundary")
        if not self.uploads:
            raise HttpError(
                400, "no image in the request: send each image as a multipart part with a filename"
            )
        return self.uploads

    def _begin(self) -> None:
        self.headers, self.data = {}, []

    def _add(self, which: str, piece: bytes) -> None:
        setattr(self, which, getattr(self, which) + piece)

    def _header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field = self.value = b""

    def _part_end(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"filename")
        if name is None or not (name or any(self.data)):
            return  # a plain form field, or a browser's file input left empty
        if len(self.uploads) >= self.max_files:
            raise HttpError(413, f"more than {self.max_files} images in one request (--max-files)")
        self.uploads.append(Upload(text(name), b"".join(self.data)))
        self.data = []

    def _end(self) -> None:
        self.ended = True
