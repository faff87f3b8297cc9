"""Reading an uploaded CSV or JSONL file into rows, with a clear error for every way it can be wrong."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


class UploadError(ValueError):
    """The upload cannot be scored: ``status`` is 400 (unreadable) or 422 (readable, wrong shape, or an option the
    job cannot take); ``field``: the request's field to blame, where one is (``text_field``, ``pair_field``,
    ``truncation``)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Upload:
    rows: list[dict]
    columns: list[str]  # in file order; the CSV output keeps them first
    format: str  # "csv" or "jsonl"


def detect_format(filename: str, content_type: str, text: str) -> str:
    if filename.lower().endswith(JSONL_SUFFIXES) or content_type.split(";")[0].strip().lower() in JSONL_TYPES:
        return "jsonl"
    if filename.lower().endswith((".csv", ".tsv")) or content_type.startswith("text/csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def read_upload(data: bytes, *, filename: str = "", content_type: str = "", text_field: str = "text",
                pair_field: str | None = None) -> Upload:
    """The file's rows; it must have the ``text_field`` column, and the ``pair_field`` one when that is given."""
    try:
        text = data.decode("utf-8-sig")  # a BOM, as spreadsheet programs write it, is not part of the first column
    except UnicodeDecodeError as error:
        raise UploadError(400, f"the file is not UTF-8 text (byte {error.start})") from None
    kind = detect_format(filename, content_type, text)
    rows, columns = _read_jsonl(text) if kind == "jsonl" else _read_csv(text, filename)
    if not rows:
        raise UploadError(422, "the file has no rows")
    for field, name in (("text_field", text_field), ("pair_field", pair_field)):
        if name is not None and name not in columns:
            raise UploadError(422, f"the file has no {name!r} column (it has: {', '.join(columns) or 'none'})", field)
    return Upload(rows=rows, columns=columns, format=kind)


def _read_csv(text: str, filename: str) -> tuple[list[dict], list[str]]:
    delimiter = "\t" if filename.lower().endswith(".tsv") else ","
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as error:
        raise UploadError(400, f"the CSV cannot be read at line {reader.line_num}: {error}") from None
    return rows, list(reader.fieldnames or [])


def _read_jsonl(text: str) -> tuple[list[dict], list[str]]:
    rows, columns = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UploadError(400, f"line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise UploadError(422, f"line {number} is not a JSON object")
        rows.append(row)
        columns.update(dict.fromkeys(row))
    return rows, list(columns)
