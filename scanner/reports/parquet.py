"""`--out DIR.parquet`: the report as a folder of Parquet part files, for reports too big for one.

Rows arrive at the driver in walk order (whichever engine scanned them: the exit status and the
summary need every row anyway) and are written in parts of `ROWS_PER_PART` rows, part-00000,
part-00001, ... so reading the folder's parts in name order gives walk order; `_summary.json` is
written last. Every part has the same schema (the report's columns; null where empty), so
`pyarrow.dataset`, pandas, Spark, DuckDB or `ray.data.read_parquet` read the folder as one table.
Needs pyarrow, which the [ray] extra installs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.reports.base import FIELDS, ReportError, ReportFormat, cannot_write, row
from scanner.results import ScanResult

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_PART = 100_000  # about 10 MB of report per part: one part in memory at a time
INTEGER_FIELDS = ("width", "height")


class ParquetReport:
    def __init__(self, path: Path, model: dict[str, Any]) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ReportError("Parquet reports need pyarrow: pip install 'facescan[ray]'") from None
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ReportError(f"{path} exists: a Parquet report needs a new or empty folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise cannot_write(path, e) from None
        self._folder = path
        self._rows: list[dict[str, Any]] = []
        self._parts = 0

    def write(self, result: ScanResult) -> None:
        self._rows.append(row(result))
        if len(self._rows) >= ROWS_PER_PART:
            self._flush()

    def close(self, summary: dict[str, Any]) -> None:
        if self._rows or not self._parts:  # an empty scan still leaves a readable table
            self._flush()
        summary_path = self._folder / "_summary.json"  # "_" files are skipped by Parquet readers
        try:
            summary_path.write_text(json.dumps(summary, ensure_ascii=False) + "\n", "utf-8")
        except OSError as e:
            raise cannot_write(self._folder, e) from None

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema()
        columns = {f: [r.get(f) for r in self._rows] for f in schema.names}
        table = pa.table(columns, schema=schema)
        try:
            pq.write_table(table, self._folder / f"part-{self._parts:05d}.parquet")
        except OSError as e:
            raise cannot_write(self._folder, e) from None
        self._parts += 1
        self._rows = []


def _schema() -> pa.Schema:
    """The report's columns, typed the same in every part whatever values it happens to hold."""
    import pyarrow as pa

    face = pa.struct(
        [
            ("box", pa.list_(pa.float64())),
            ("detection", pa.float64()),
            ("score", pa.float64()),
            ("label", pa.string()),
        ]
    )

    def kind(name: str) -> pa.DataType:
        if name == "score":
            return pa.float64()
        if name == "cached":
            return pa.bool_()
        if name == "faces":
            return pa.list_(face)
        if name == "provenance":
            return _provenance()
        return pa.int64() if name in INTEGER_FIELDS else pa.string()

    return pa.schema([(name, kind(name)) for name in FIELDS])


def _provenance() -> pa.DataType:
    """The `provenance` object (`scanner.credentials.Credentials.to_dict` and its summary; null
    fields where a row without the library has only validation and summary)."""
    import pyarrow as pa

    text = pa.string()
    action = pa.struct([("action", text), ("source_type", text)])
    ingredient = pa.struct([("title", text), ("relationship", text), ("source_type", text)])
    return pa.struct(
        [
            *((name, text) for name in ("validation", "summary", "reason")),
            ("status_codes", pa.list_(text)),
            *((name, text) for name in ("claim_generator", "signer", "signer_name")),
            ("signing_time", text),
            ("actions", pa.list_(action)),
            ("ingredients", pa.list_(ingredient)),
            ("origin", text),
            ("ai_edit_of_real_ingredient", pa.bool_()),
            ("declares_ai_creation", pa.bool_()),
        ]
    )


FORMATS = [
    ReportFormat(
        "parquet", (".parquet",), "a folder of Parquet parts (needs pyarrow)", ParquetReport
    )
]
