"""What a person sees in the terminal: the progress bar and summary on stderr, the flagged files
on stdout (a table on a terminal, tab-separated lines when piped). Nothing here scans."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from scanner.baseline import NEW
from scanner.results import ScanResult
from scanner.textfiles import printable
from scanner.threads import signals_to_main_thread

if TYPE_CHECKING:
    from scanner.baseline import Update

err = Console(stderr=True, highlight=False, soft_wrap=True)
MAX_ERRORS_SHOWN = 20


def fail(message: str) -> None:
    """An error line: printed even with --quiet."""
    err.print(f"facescan: {message}", markup=False)


def warn(message: str) -> None:
    err.print(f"facescan: warning: {message}", markup=False)


class Tally:
    """Counts for the summary. Keeps error rows, and flagged rows only when they are printed
    (no --out): a report file already holds them, and memory must not grow with the scan."""

    def __init__(self, positive_label: str, keep_flagged: bool, baseline: bool = False) -> None:
        self.positive_label, self.keep_flagged = positive_label, keep_flagged
        self.files = self.scored = self.flagged_count = 0
        self.baseline = baseline
        # Flagged rows by their --baseline status (all "new" without one): what --fail-on reads.
        self.flagged_by_baseline: Counter[str] = Counter()
        self.flagged: list[ScanResult] = []
        self.errors: list[ScanResult] = []
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.state = "running"  # then complete | interrupted | terminated | failed

    def add(self, result: ScanResult) -> None:
        self.files += 1
        if result.status == "error":
            self.errors.append(result)
            return
        self.scored += 1
        if result.label == self.positive_label:
            self.flagged_count += 1
            self.flagged_by_baseline[result.baseline or NEW] += 1
            if self.keep_flagged:
                self.flagged.append(result)

    def finish(self, state: str) -> None:
        self.state = state
        self.seconds = time.perf_counter() - self.started

    def summary(self, model: dict[str, Any]) -> dict[str, Any]:
        return {
            "files": self.files,
            "flagged": self.flagged_count,
            "real": self.scored - self.flagged_count,
            "errors": len(self.errors),
            "error_files": [printable(r.path) for r in self.errors],
            "seconds": round(self.seconds, 3),
            # Images scored per second: error rows cost next to nothing and would inflate it.
            "images_per_second": round(self.scored / self.seconds, 1) if self.seconds else None,
            "state": self.state,
            "complete": self.state == "complete",
            "interrupted": self.state != "complete",  # kept for readers of older reports
            **self._baseline_counts(),
            **model,
        }

    def _baseline_counts(self) -> dict[str, Any]:
        """With --baseline: flagged files by their decision (new when not in it)."""
        return {"baseline": dict(sorted(self.flagged_by_baseline.items()))} if self.baseline else {}


class Progress:
    """A rich progress bar on stderr when it is a terminal; the total is counted by a second,
    background walk (`count`), so scanning starts at once."""

    def __init__(self, count: Callable[[], Iterable[object]] | None, enabled: bool) -> None:
        """`count` None: the total cannot be known in advance (a list read from stdin)."""
        self.count, self.enabled = count, enabled and err.is_terminal

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.task = self.bar.add_task("scan", total=None, rate="")
        with signals_to_main_thread():  # the bar's refresh thread and the counting walk
            self.bar.start()
            if self.count is not None:
                threading.Thread(target=self._count, args=(self.count,), daemon=True).start()
        started = time.perf_counter()

        def advance() -> None:
            self.bar.advance(self.task)
            done = self.bar.tasks[0].completed
            self.bar.update(self.task, rate=f"{done / (time.perf_counter() - started):.0f} img/s")

        return advance

    def _count(self, count: Callable[[], Iterable[object]]) -> None:
        total = 0
        for total, _ in enumerate(count(), start=1):
            if total % 1000 == 0:
                self.bar.update(self.task, total=total)
        self.bar.update(self.task, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


def print_summary(tally: Tally, summary: dict[str, Any], out: Path | None) -> None:
    rate = f"{summary['images_per_second']} img/s" if summary["images_per_second"] else "-"
    labels = summary["labels"]
    err.print(
        f"facescan {tally.state}: {summary['files']} files, [bold]{summary['flagged']} flagged"
        f"[/bold] {labels[1]}, {summary['real']} {labels[0]}, {summary['errors']} errors in "
        f"{summary['seconds']:.1f} s ({rate})"
    )
    err.print(
        f"model {summary['model']} | provider {summary['provider']} | "
        f"threshold {summary['threshold']:.3f}" + (f" | report {out}" if out else ""),
        markup=False,
    )
    if "baseline" in summary:
        by_status = ", ".join(f"{n} {status}" for status, n in summary["baseline"].items())
        err.print(f"flagged files by baseline decision: {by_status or 'none'}", markup=False)
    for path, r in zip(summary["error_files"][:MAX_ERRORS_SHOWN], tally.errors, strict=False):
        err.print(f"  error: {path}: {r.error}", markup=False)
    if len(tally.errors) > MAX_ERRORS_SHOWN:
        more = len(tally.errors) - MAX_ERRORS_SHOWN
        err.print(f"  ... and {more} more errors (see the report)", markup=False)


def print_baseline_update(path: Path | None, updated: Update) -> None:
    """What --update-baseline wrote, and the entries this scan did not see (never dropped
    without saying so)."""
    err.print(
        f"baseline {path}: {updated.added} new findings recorded as pending, "
        f"{updated.kept} entries seen again (decisions kept)",
        markup=False,
    )
    if not updated.unseen:
        return
    fate = "dropped (--prune-baseline)" if updated.pruned else "kept (--prune-baseline drops them)"
    err.print(f"  {len(updated.unseen)} entries not seen in this scan, {fate}:", markup=False)
    for sha, entry in list(updated.unseen.items())[:MAX_ERRORS_SHOWN]:
        where = ", ".join(entry.paths) or "no path recorded"
        err.print(f"  {entry.decision} {sha[:12]} {where}", markup=False)
    if len(updated.unseen) > MAX_ERRORS_SHOWN:
        err.print(f"  ... and {len(updated.unseen) - MAX_ERRORS_SHOWN} more", markup=False)


def print_flagged(flagged: list[ScanResult]) -> None:
    """A table on a terminal; `score<TAB>label<TAB>path` lines when piped (paths never cut;
    tabs, newlines and other control characters in a path written as reversible \\xNN)."""
    from rich.table import Table
    from rich.text import Text

    rows = [(f"{r.score:.3f}", r.label or "", printable(r.path, control=True)) for r in flagged]
    rows.sort(key=lambda row: row[0], reverse=True)
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        try:
            for row in rows:
                sys.stdout.write("\t".join(row) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped (`| head`): the exit status still stands
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if rows:
        table = Table("score", "label", title=f"{len(rows)} flagged", title_justify="left")
        table.add_column("path", overflow="fold")
        for row in rows:
            table.add_row(*map(Text, row))  # Text: a path is never read as markup
        out.print(table)
