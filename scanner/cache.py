"""Result cache (`--cache FILE`): a re-scan of an unchanged store reuses earlier scores.

Keyed by (sha256 of the file's bytes, sha256 of the ONNX model file), so a changed file or another
model is a miss, whatever the file's name or date. What is stored is the model's score (plus the
decoded size, format and provenance evidence); the label is recomputed from the current threshold,
so changing `--threshold` relabels without rescoring. Error rows are never cached: a file that
could not be read may be readable next time.

Concurrency: SQLite in WAL mode. Decode workers look up hits through their own read-only
connections before decoding (a hit costs a read and a hash, no decode, no inference); only the
main process writes, one transaction per inference batch, so a scan killed halfway keeps every
batch it finished and the next run with the same cache does the rest. Two scans sharing a file
take turns for the write lock (`busy_timeout`) and never corrupt it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from scanner import provenance
from scanner.errors import FacescanError

SCHEMA_VERSION = 1  # PRAGMA user_version of a facescan cache
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another scan's batch to commit
_CREATE = """
CREATE TABLE IF NOT EXISTS results (
    file_sha256 TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    score REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    evidence TEXT NOT NULL,
    evidence_version INTEGER NOT NULL,
    PRIMARY KEY (file_sha256, model_sha256)
) WITHOUT ROWID
"""
_SELECT = (
    "SELECT score, width, height, format, evidence FROM results "
    "WHERE file_sha256 = ? AND model_sha256 = ? AND evidence_version = ?"
)
_INSERT = "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class CacheError(FacescanError):
    """The cache file cannot be used (not a facescan cache, unwritable, another version)."""


@dataclass(frozen=True)
class CachedResult:
    score: float
    width: int
    height: int
    format: str
    evidence: str


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheReader:
    """The lookup side, small enough to send to every decode worker with each task."""

    path: str
    model_sha256: str

    def get(self, file_sha256: str) -> CachedResult | None:
        """The stored result for this content and model, or None (also when the cache is busy
        or unreadable: a miss only costs a decode)."""
        try:
            found = (
                _reader(self.path)
                .execute(_SELECT, (file_sha256, self.model_sha256, provenance.VERSION))
                .fetchone()
            )
        except sqlite3.Error:
            return None
        return CachedResult(*found) if found else None


@functools.lru_cache(maxsize=4)
def _reader(path: str) -> sqlite3.Connection:
    """One read-only connection per process and cache file (workers are long-lived)."""
    connection = sqlite3.connect(
        f"file:{quote(path)}?mode=ro", uri=True, timeout=5.0, check_same_thread=False
    )
    return connection


def retry_while_busy(action: Callable[[], None], seconds: float = BUSY_TIMEOUT_S) -> None:
    """Run `action`, again after a short pause while SQLite says the database is locked.
    Switching a new file to WAL mode answers "locked" at once, without waiting for the busy
    timeout, when another scan is creating the same cache file at that moment."""
    deadline = time.monotonic() + seconds
    pause = 0.005
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class ResultCache:
    """The writer, in the main process: `put` results, `commit` once per batch."""

    def __init__(self, path: str | os.PathLike[str], model_sha256: str) -> None:
        self.path = str(Path(path).resolve())
        self.model_sha256 = model_sha256
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            retry_while_busy(self._set_up)
        except sqlite3.Error as e:
            raise CacheError(f"cannot use {path} as a result cache: {e}") from None

    def _set_up(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise CacheError(
                f"cache {self.path} has schema version {version}, this facescan writes "
                f"{SCHEMA_VERSION}: use another --cache file or delete this one"
            )
        with self._db:
            self._db.execute(_CREATE)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def reader(self) -> CacheReader:
        return CacheReader(self.path, self.model_sha256)

    def put(self, file_sha256: str, result: CachedResult) -> None:
        values = (result.score, result.width, result.height, result.format, result.evidence)
        self._db.execute(_INSERT, (file_sha256, self.model_sha256, *values, provenance.VERSION))

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        """Commit, fold the write-ahead log into the database file and close: afterwards the
        cache file alone holds every row (a CI job may cache just that file)."""
        self._db.commit()
        with contextlib.suppress(sqlite3.Error):  # another scan is busy: it checkpoints later
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
