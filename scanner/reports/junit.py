"""JUnit XML (`--format junit`, `.xml`): the test report GitLab, Jenkins and most CI systems show.

The common Jenkins/GitLab dialect: `<testsuites>` holding one `<testsuite name="facescan">`,
one `<testcase>` per file (name and `file` are its path), with `<failure>` for a flagged file,
`<error>` for an unreadable one and `<skipped>` for a flagged file pending review in the
`--baseline`; an approved one passes and says so in `<system-out>`. A C2PA credential that fails
validation (tampered) is said in `<system-out>` too, not counted as a failure: what fails is
the exit status's business (`--fail-on`), and a tampered credential alone does not. Counts and
time are attributes of both suite elements. A scan that stopped before the end (Ctrl-C,
SIGTERM, a crash) adds one more test case, an `<error>` named `scan interrupted` (terminated,
failed): a CI system shows it where it would ignore the suite's `state` property.

The counts come first in the file but are known only at the end, so test cases are streamed to
a temporary file and the report is assembled, atomically, when the scan ends: memory holds one
row at a time. File names can hold anything, and XML 1.0 cannot carry control characters even
escaped: text goes through the reports' reversible `printable` escaping (control characters and
the two non-characters U+FFFE/U+FFFF as `\\xNN` bytes), then XML escaping.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections import Counter
from html import escape  # xml.sax.saxutils imports urllib.request: 28 ms of every start-up
from pathlib import Path
from typing import IO, Any

from scanner.reports.base import AtomicFile, ReportFormat, cannot_write, printable
from scanner.reports.findings import invalid_credential, message, verdict
from scanner.reports.partial import INCOMPLETE, stopped
from scanner.results import ScanResult

SUITE = "facescan"
# Characters XML 1.0 forbids that `printable` leaves alone (it handles the C0 controls).
_NOT_XML = re.compile("[\ufffe\uffff]")
# verdict -> (element, what it counts as in the suite's attributes)
ELEMENTS = {"flagged": "failure", "error": "error", "pending": "skipped"}


def xml_text(text: str) -> str:
    """Text XML 1.0 can carry, reversibly (`reports.base.unescape_path` undoes it)."""
    text = printable(text, control=True)
    return _NOT_XML.sub(lambda m: "".join(f"\\x{b:02x}" for b in m.group().encode()), text)


def quoted(text: str) -> str:
    """An XML attribute value: in double quotes, with & < > " ' escaped."""
    return f'"{escape(text)}"'


def attr(text: str) -> str:
    return quoted(xml_text(text))


class JunitReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        self._out = AtomicFile(path)
        self._model = model
        self._positive = model["labels"][1]
        # Deleted when closed (at the end of close) or when collected, whatever happens.
        self._cases: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8", dir=self._out.tmp.parent, prefix=".junit-cases."
        )
        self._counts: Counter[str] = Counter()
        self._started = time.strftime("%Y-%m-%dT%H:%M:%S")

    def write(self, result: ScanResult) -> None:
        kind = verdict(result, self._positive)
        self._counts["tests"] += 1
        element = ELEMENTS.get(kind)
        if element:
            self._counts[element] += 1
        path = attr(result.path)
        case = f"    <testcase classname={quoted(SUITE)} name={path} file={path}"
        children = []
        if element is not None:
            text = attr(self._message(result))
            children.append(f"<{element} type={quoted(kind)} message={text}/>")
        # An approved file passes and the report says why; a tampered credential is noted.
        notes = [self._message(result)] if kind == "approved" else []
        if tampered := invalid_credential(result):
            notes.append(tampered)
        if notes:
            children.append(f"<system-out>{escape(xml_text(' | '.join(notes)))}</system-out>")
        inner = "".join(f"\n      {child}" for child in children)
        case += f">{inner}\n    </testcase>\n" if children else "/>\n"
        self._write(self._cases, case)

    def _message(self, result: ScanResult) -> str:
        return message(result, self._model)

    def close(self, summary: dict[str, Any]) -> None:
        if not summary["complete"]:
            self._stopped(summary)
        counts = (
            f'tests="{self._counts["tests"]}" failures="{self._counts["failure"]}" '
            f'errors="{self._counts["error"]}" skipped="{self._counts["skipped"]}" '
            f'time="{float(summary["seconds"]):.3f}"'
        )
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<testsuites name={quoted(SUITE)} {counts}>\n"
            f"  <testsuite name={quoted(SUITE)} {counts} timestamp={quoted(self._started)}>"
            f"\n{self._properties(summary)}"
        )
        self._out.write(head)
        self._cases.seek(0)
        try:
            shutil.copyfileobj(self._cases, self._out.file)
        except OSError as e:
            raise cannot_write(self._out.target, e) from None
        self._cases.close()
        self._out.write("  </testsuite>\n</testsuites>\n")
        self._out.commit()

    def _stopped(self, summary: dict[str, Any]) -> None:
        """A partial report's last test case: an error CI systems show (the state property
        alone, GitLab ignores)."""
        self._counts["tests"] += 1
        self._counts["error"] += 1
        state, text = summary["state"], attr(stopped(summary))
        self._write(
            self._cases,
            f"    <testcase classname={quoted(SUITE)} name={quoted(f'scan {state}')}>\n"
            f"      <error type={quoted(INCOMPLETE)} message={text}/>\n    </testcase>\n",
        )

    def _properties(self, summary: dict[str, Any]) -> str:
        """The run's settings and whether it completed, as suite properties (a threshold is
        unknown, None, when the scan stopped before its model loaded: no property then)."""
        names = ("model", "provider", "threshold", "state")
        values = {k: summary[k] for k in names if summary[k] is not None}
        lines = "".join(
            f"      <property name={quoted(k)} value={attr(str(v))}/>\n" for k, v in values.items()
        )
        return f"    <properties>\n{lines}    </properties>\n"

    def _write(self, file: IO[str], text: str) -> None:
        try:
            file.write(text)
        except OSError as e:  # the cases' spool: a full disk is the report's failure too
            raise cannot_write(self._out.target, e) from None


FORMATS = [
    ReportFormat(
        "junit", (".xml",), "JUnit XML, one test case per file (GitLab, Jenkins)", JunitReport
    )
]
