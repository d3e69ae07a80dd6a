"""Result cache (`--cache FILE`): a re-scan of an unchanged store reuses earlier scores.

Keyed by the sha256 of the file's bytes and a scan key (the sha256 of the ONNX model file, of
the preprocessing it runs with: face crops on or off, their settings, and of the `--c2pa-trust`
anchors), so a changed file, another model, other face settings or another trust list are a
miss, whatever the file's name or date. What is stored is the model's scores, one per face or
one for the whole image (plus the faces found, the decoded size, format, provenance evidence and
the C2PA credential as the library read it); labels are recomputed from the current threshold,
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
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scanner import provenance
from scanner.credentials import Credentials
from scanner.errors import FacescanError
from scanner.faces import DETECTION_VERSION, Face

SCHEMA_VERSION = 3  # PRAGMA user_version of a facescan cache (2: per-face results; 3: C2PA)
OLDER_SCHEMAS = (1, 2)  # caches an older facescan wrote: emptied and reused (scores are cheap)
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another scan's batch to commit
_CREATE = """
CREATE TABLE IF NOT EXISTS results (
    file_sha256 TEXT NOT NULL,
    scan_key TEXT NOT NULL,
    scores TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    evidence TEXT NOT NULL,
    faces TEXT,
    credentials TEXT,
    evidence_version INTEGER NOT NULL,
    PRIMARY KEY (file_sha256, scan_key)
) WITHOUT ROWID
"""
_SELECT = (
    "SELECT scores, width, height, format, evidence, faces, credentials FROM results "
    "WHERE file_sha256 = ? AND scan_key = ? AND evidence_version = ?"
)
_INSERT = "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class CacheError(FacescanError):
    """The cache file cannot be used (not a facescan cache, unwritable, another version)."""


@dataclass(frozen=True)
class CachedResult:
    scores: tuple[float, ...]  # one per unit (face, or the whole image)
    width: int
    height: int
    format: str
    evidence: str
    faces: tuple[Face, ...] | None = None  # every face found; None: no detection ran
    scored_faces: tuple[int, ...] = ()  # the faces that are units, in unit order
    # None: no C2PA manifest, or the scan that stored it had no library to read it with
    credentials: Credentials | None = None

    def columns(self) -> tuple[object, ...]:
        faces = credentials = None
        if self.faces is not None:
            found = [{"box": f.box, "score": f.score, "landmarks": f.landmarks} for f in self.faces]
            faces = json.dumps({"found": found, "scored": self.scored_faces})
        if self.credentials is not None:
            credentials = json.dumps(self.credentials.to_dict())
        values = (json.dumps(self.scores), self.width, self.height, self.format, self.evidence)
        return (*values, faces, credentials)

    @classmethod
    def from_columns(cls, row: tuple[Any, ...]) -> CachedResult:
        scores, width, height, fmt, evidence, faces, credentials = row
        found, scored = None, ()
        if faces is not None:
            stored = json.loads(faces)
            found = tuple(face_from_json(f) for f in stored["found"])
            scored = tuple(stored["scored"])
        read = None if credentials is None else Credentials.from_dict(json.loads(credentials))
        return cls(tuple(json.loads(scores)), width, height, fmt, evidence, found, scored, read)


def face_from_json(data: dict[str, Any]) -> Face:
    marks = tuple((float(x), float(y)) for x, y in data["landmarks"])
    x0, y0, x1, y1 = (float(v) for v in data["box"])
    return Face((x0, y0, x1, y1), float(data["score"]), marks)


def scan_key(model_sha256: str, preprocess: dict[str, Any], trust_anchors: str = "") -> str:
    """What decides a file's row besides its bytes: the model file, the preprocessing it runs
    with (face crops on or off, minimum face size, ...) and the C2PA trust anchors (PEM text,
    "" for none), which decide whether a credential is valid or untrusted. With face crops, the
    version of what the detector finds, too."""
    text = model_sha256 + "\n" + json.dumps(preprocess, sort_keys=True) + "\n" + trust_anchors
    if preprocess.get("faces"):
        text += f"\ndetection {DETECTION_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()


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
    scan_key: str

    def get(self, file_sha256: str) -> CachedResult | None:
        """The stored result for this content and model, or None (also when the cache is busy
        or unreadable: a miss only costs a decode)."""
        try:
            found = (
                _reader(self.path)
                .execute(_SELECT, (file_sha256, self.scan_key, provenance.VERSION))
                .fetchone()
            )
            return CachedResult.from_columns(found) if found else None
        except (sqlite3.Error, ValueError, KeyError, TypeError):  # busy, or a mangled row
            return None


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

    def __init__(self, path: str | os.PathLike[str], scan_key: str) -> None:
        self.path = str(Path(path).resolve())
        self.scan_key = scan_key
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            retry_while_busy(self._set_up)
        except sqlite3.Error as e:
            raise CacheError(f"cannot use {path} as a result cache: {e}") from None

    def _set_up(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION, *OLDER_SCHEMAS):
            raise CacheError(
                f"cache {self.path} has schema version {version}, this facescan writes "
                f"{SCHEMA_VERSION}: use another --cache file or delete this one"
            )
        with self._db:
            if version in OLDER_SCHEMAS:
                self._db.execute("DROP TABLE IF EXISTS results")
            self._db.execute(_CREATE)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def reader(self) -> CacheReader:
        return CacheReader(self.path, self.scan_key)

    def put(self, file_sha256: str, result: CachedResult) -> None:
        values = (file_sha256, self.scan_key, *result.columns(), provenance.VERSION)
        self._db.execute(_INSERT, values)

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        """Commit, fold the write-ahead log into the database file and close: afterwards the
        cache file alone holds every row (a CI job may cache just that file)."""
        self._db.commit()
        with contextlib.suppress(sqlite3.Error):  # another scan is busy: it checkpoints later
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
