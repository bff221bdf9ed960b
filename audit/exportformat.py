"""Writing audit log exports: columns, CSV-injection escaping, CSV and .xlsx (SPEC §7).

Standard library plus xlsxwriter, no Django (a test proves it): the export service feeds rows
in, these writers turn them into bytes with constant memory and keep the SHA-256 of exactly
what they produced, for the manifest.

Columns: every field of SPEC §6.1 (``payload`` as its canonical JSON text, the exact bytes
that were hashed), then four read from the payload for people filtering in a spreadsheet:
``action`` (name), ``target``, ``amount`` and ``currency`` of ``action.evaluated`` events.

Escaping (SPEC §7): a text cell that begins with ``=``, ``+``, ``-``, ``@``, tab, CR or LF gets
a leading ``'`` so no spreadsheet runs it as a formula. That includes signatures (base64 may
begin with ``+``) and negative amounts. The JSON API and proof certificates carry the values
unescaped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FIELDS = (  # SPEC §6.1, in its order
    "seq",
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "session_id",
    "workflow_id",
    "run_id",
    "actor",
    "verdict",
    "result",
    "reason",
    "payload",
    "prev_hash",
    "leaf_hash",
    "signature",
    "key_id",
)
DERIVED = ("action", "target", "amount", "currency")
COLUMNS = FIELDS + DERIVED

_TRIGGERS = frozenset("=+-@\t\r\n")
XLSX_MAX_CELL = 32_767  # Excel's limit on the characters of one cell
XLSX_MAX_ROWS = 1_048_576  # rows per worksheet, the header included
TRUNCATED = " …[truncated: Excel holds 32,767 characters per cell; the CSV has it all]"


def escape(value: str) -> str:
    """SPEC §7 CSV-injection escaping of one text cell."""
    return "'" + value if value[:1] in _TRIGGERS else value


def escape_row(row: Sequence[Any]) -> list[Any]:
    # One pass, no function call per cell: this runs for every cell of a million-row export.
    return [v if v.__class__ is not str or v[:1] not in _TRIGGERS else "'" + v for v in row]


class Digest:
    """Counts and hashes the bytes written through it."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> bytes:
        self._sha.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def csv_chunks(
    batches: Iterable[Sequence[Sequence[Any]]], digest: Digest, *, header: bool = True
) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180, CRLF line ends), one chunk of bytes per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(COLUMNS)
    for batch in batches:
        writer.writerows([escape_row(row) for row in batch])
        data = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        yield digest.update(data)
    if buffer.tell():
        yield digest.update(buffer.getvalue().encode("utf-8"))


class XlsxWriter:
    """A constant-memory .xlsx (xlsxwriter ``constant_memory``: rows go to disk as written).

    Every value is written as what it is (``seq`` a number, the rest text), never parsed as
    a formula, number or URL; a log longer than one worksheet continues on the next.
    """

    def __init__(self, path: str) -> None:
        import xlsxwriter

        self.path = path
        self.book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        # A million events is more than 4 GB of sheet XML: allow ZIP64 (used only if needed).
        self.book.use_zip64()
        self.sheets = 0
        self.rows = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        self.sheet = self.book.add_worksheet(
            "events" if self.sheets == 1 else f"events {self.sheets}"
        )
        self.sheet.write_row(0, 0, COLUMNS)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            if self.row >= XLSX_MAX_ROWS:
                self._new_sheet()
            r = self.row
            write_string = self.sheet.write_string
            for c, value in enumerate(escape_row(row)):
                if value is None:
                    continue
                if value.__class__ is str:
                    if len(value) > XLSX_MAX_CELL:
                        value = value[: XLSX_MAX_CELL - len(TRUNCATED)] + TRUNCATED
                    write_string(r, c, value)
                else:
                    self.sheet.write_number(r, c, value)
            self.row += 1
            self.rows += 1

    def close(self) -> str:
        """Finish the file; returns the SHA-256 of its bytes."""
        self.book.close()
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()
