"""The reviewed baseline (`--baseline FILE`): a moderator's decision about each flagged file.

The file is JSON a person edits and a diff reads: keys sorted, two-space indents, one entry per
file content (its sha256), so a renamed or moved file keeps its decision and a changed file
(other bytes) is new. Each entry holds `decision` (`pending`, `approved` or `confirmed-ai`),
`reviewer`, `note`, `date` and, for people only, the `paths` it was last seen at.

Each scanned row gets a `baseline` status (`Review`): the entry's decision, or `new` for a
flagged file the baseline does not hold. `scanner.policy` says which statuses fail the job.
`update` is `--update-baseline` / `facescan baseline create|update`: new flagged files are
added as `pending`, decisions already made are kept, and entries whose file was not seen are
kept and reported (a scan of the changed files sees few of them), or dropped with `--prune`.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scanner.errors import FacescanError
from scanner.results import ScanResult
from scanner.textfiles import AtomicFile, printable

FORMAT_KEY, VERSION = "facescan_baseline", 1
PENDING, APPROVED, CONFIRMED = "pending", "approved", "confirmed-ai"
DECISIONS = (PENDING, APPROVED, CONFIRMED)
NEW = "new"  # the status of a flagged file that has no entry
TEXT_FIELDS = ("reviewer", "note", "date")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_PROBLEMS_SHOWN = 5


class BaselineError(FacescanError):
    """The baseline file cannot be read, or does not say what a baseline says."""


@dataclass(frozen=True)
class Entry:
    decision: str = PENDING
    reviewer: str = ""
    note: str = ""
    date: str = ""  # YYYY-MM-DD: when it was recorded, or when the decision was made
    paths: tuple[str, ...] = ()  # where it was last seen (escaped like report paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reviewer": self.reviewer,
            "note": self.note,
            "date": self.date,
            "paths": list(self.paths),
        }


@dataclass
class Baseline:
    entries: dict[str, Entry] = field(default_factory=dict)  # by sha256

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise BaselineError(f"cannot read baseline {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise BaselineError(f"baseline {path} is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            where = f"line {e.lineno}, column {e.colno}"
            raise BaselineError(f"baseline {path} is not valid JSON ({where}: {e.msg})") from None
        return cls(parse(data, path))

    def status(self, result: ScanResult, positive_label: str) -> str | None:
        """The row's `baseline` column: the decision about its content, `new` for a flagged
        file without one, None for the rest (an unflagged file, an unreadable one)."""
        entry = self.entries.get(result.sha256 or "")
        if entry is not None:
            return entry.decision
        return NEW if result.label == positive_label else None

    def mark(self, result: ScanResult, positive_label: str) -> ScanResult:
        return replace(result, baseline=self.status(result, positive_label))

    def to_json(self) -> str:
        entries = {sha: entry.to_json() for sha, entry in self.entries.items()}
        document = {FORMAT_KEY: VERSION, "entries": entries}
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: Path) -> None:
        out = AtomicFile(path)
        try:
            out.file.write(self.to_json())
        except OSError as e:
            raise BaselineError(f"cannot write baseline {path}: {e.strerror or e}") from None
        out.commit()


def parse(data: object, path: Path) -> dict[str, Entry]:
    """The entries of a loaded document, or a BaselineError listing what is wrong with it."""
    if not isinstance(data, dict) or data.get(FORMAT_KEY) is None:
        raise BaselineError(f'{path} is not a facescan baseline (no "{FORMAT_KEY}" key)')
    if data[FORMAT_KEY] != VERSION:
        raise BaselineError(
            f"{path} is a version {data[FORMAT_KEY]} baseline; this facescan reads {VERSION}"
        )
    raw = data.get("entries", {})
    if not isinstance(raw, dict):
        raise BaselineError(f'baseline {path}: "entries" must be an object keyed by sha256')
    entries: dict[str, Entry] = {}
    problems: list[str] = []
    for key, value in raw.items():
        entry = _entry(key, value, problems)
        if entry is not None:
            entries[key.lower()] = entry
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = problems[:MAX_PROBLEMS_SHOWN] + ([f"and {more} more"] if more > 0 else [])
        raise BaselineError(f"baseline {path}: {'; '.join(shown)}")
    return entries


def _entry(key: str, value: object, problems: list[str]) -> Entry | None:
    """One entry, or None after adding what is wrong with it to `problems`."""
    name = f"entry {key[:12]!r}"
    if not SHA256.fullmatch(key.lower()):
        problems.append(f"{name}: the key must be the file's sha256 (64 hex digits)")
        return None
    if not isinstance(value, dict):
        problems.append(f"{name}: must be an object")
        return None
    decision = value.get("decision")
    if decision not in DECISIONS:
        problems.append(f"{name}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
        return None
    texts = {k: value.get(k, "") for k in TEXT_FIELDS}
    paths = value.get("paths", [])
    wrong = [k for k, v in texts.items() if not isinstance(v, str)]
    if not (isinstance(paths, list) and all(isinstance(p, str) for p in paths)):
        wrong.append("paths (a list of strings)")
    if wrong:
        problems.append(f"{name}: {', '.join(wrong)} must be text")
        return None
    return Entry(decision, paths=tuple(paths), **texts)


class Review:
    """Marks each row with its baseline status and, when the baseline is to be updated, keeps
    where each flagged or known file was seen: memory grows with the findings, not the scan."""

    def __init__(self, baseline: Baseline, positive_label: str, record: bool = False) -> None:
        self.baseline, self.positive_label = baseline, positive_label
        self.seen: dict[str, set[str]] | None = {} if record else None

    def __call__(self, result: ScanResult) -> ScanResult:
        result = self.baseline.mark(result, self.positive_label)
        if self.seen is not None and result.sha256 and result.baseline is not None:
            self.seen.setdefault(result.sha256, set()).add(printable(result.path))
        return result


@dataclass(frozen=True)
class Update:
    baseline: Baseline  # the baseline to write
    added: int  # new flagged files, now pending
    kept: int  # entries seen in this scan, decisions unchanged
    unseen: dict[str, Entry]  # entries whose file this scan did not see
    pruned: bool  # whether the unseen entries were dropped


def update(review: Review, prune: bool, today: str | None = None) -> Update:
    """The baseline after a scan that recorded (`Review(..., record=True)`): seen entries get
    their current paths, new flagged files are added as pending, unseen entries are kept (or
    dropped when `prune`)."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    seen = review.seen or {}
    old = review.baseline.entries
    entries: dict[str, Entry] = {}
    for sha, paths in seen.items():  # flagged files and known ones, nothing else
        entries[sha] = replace(old.get(sha, Entry(date=today)), paths=tuple(sorted(paths)))
    unseen = {sha: entry for sha, entry in old.items() if sha not in seen}
    if not prune:
        entries.update(unseen)
    added = len([sha for sha in entries if sha not in old])
    return Update(Baseline(entries), added, len(old) - len(unseen), unseen, prune)
