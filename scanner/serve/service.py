"""The scanning behind `POST /v1/scan`: uploads in, report rows out, on the scanner's own code.

Each image is prepared (`Prepare.from_bytes`: hash, decode, crop) in a thread pool, off the
event loop, then handed to the batcher engine, whose one thread scores images of every request
in shared batches; `Scanner.result` and `reports.base.row` make its answer, so a served row is
the JSONL row of the same file.

`Admission` bounds what the service holds, so overload is an immediate 503 with Retry-After,
never a growing backlog. Its counters change on the event loop only, so they need no lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scanner.engines.batcher import BatchingEngine
from scanner.reports.base import row
from scanner.scan import Scanner
from scanner.serve.uploads import HttpError, Upload
from scanner.work import Decoded

log = logging.getLogger("facescan.serve")
RETRY_AFTER_S = 1  # what a 503 asks the client to wait: a batch takes milliseconds


class Admission:
    """Images held (from admission to answer) and request bytes held, each under its limit."""

    def __init__(self, max_images: int, max_bytes: int) -> None:
        self.max_images, self.max_bytes = max_images, max_bytes
        self.images = self.bytes = 0

    @contextmanager
    def hold(self) -> Iterator[Held]:
        held = Held(self)
        try:
            yield held
        finally:
            self.images -= held.images
            self.bytes -= held.bytes

    def queue_full(self) -> HttpError:
        return self.refuse(f"queue full ({self.images} of --queue {self.max_images} images held)")

    def refuse(self, what: str) -> HttpError:
        return HttpError(503, f"busy: {what}; retry later", {"Retry-After": str(RETRY_AFTER_S)})


class Held:
    """One request's share of the admission, released when the request ends."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.images = self.bytes = 0

    def arrive(self) -> None:
        """Refuse at once, before reading the body, when the queue is already full."""
        a = self.admission
        if a.images >= a.max_images:
            raise a.queue_full()

    def take_bytes(self, count: int) -> None:
        a = self.admission
        if a.bytes + count > a.max_bytes:
            raise a.refuse(f"{a.bytes:,} bytes of uploads held (--max-buffered-bytes)")
        a.bytes += count
        self.bytes += count

    def take_images(self, count: int) -> None:
        a = self.admission
        if a.images + count > a.max_images:
            raise a.queue_full()
        a.images += count
        self.images += count


class ScanService:
    """One scanner (with the batcher engine), its decode pool and its admission."""

    def __init__(self, scanner: Scanner, admission: Admission, keep: Path | None = None) -> None:
        if not isinstance(scanner.engine, BatchingEngine):
            raise TypeError("the service needs a Scanner with engine='batcher'")
        self.scanner, self.engine = scanner, scanner.engine
        self.admission, self.keep = admission, keep
        self.pool = ThreadPoolExecutor(scanner.engine.workers, "decode")
        self.model = scanner.header
        self.closed = False

    async def scan(self, uploads: list[Upload]) -> list[dict[str, Any]]:
        """One report row per upload, in upload order."""
        self.engine.expect(len(uploads))  # batches formed meanwhile may wait for these
        return list(await asyncio.gather(*(self._one(u) for u in uploads)))

    async def _one(self, upload: Upload) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            decoded = await loop.run_in_executor(self.pool, self._prepare, upload)
        except BaseException:  # cancelled (the client went away): it will not be submitted
            self.engine.forget(1)
            raise
        scored = await asyncio.wrap_future(self.engine.submit(decoded, expected=True))
        return row(self.scanner.result(scored))

    def _prepare(self, upload: Upload) -> Decoded:
        if self.keep is not None:
            keep(self.keep, upload)
        return self.scanner.prepare.from_bytes(upload.name, upload.data)

    def close(self) -> None:
        """After the last request: stop decoding, score what is queued, release the model."""
        self.closed = True
        self.pool.shutdown(wait=True)
        self.scanner.close()


def keep(folder: Path, upload: Upload) -> None:
    """--keep: the upload's bytes as FOLDER/<sha256><its extension>. The name comes from the
    content, never from the client, so it cannot leave the folder; a failed write is logged and
    the image is still scanned."""
    suffix = Path(upload.name).suffix.lower()
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 6 else ".bin"
    target = folder / (hashlib.sha256(upload.data).hexdigest() + suffix)
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
    try:  # renamed into place whole: a full disk leaves no truncated image behind
        partial.write_bytes(upload.data)
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        log.warning("--keep: cannot write %s: %s", os.fspath(target), e.strerror or e)
