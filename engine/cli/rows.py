"""``sop start PROCEDURE --each FILE``: one instance per row of a file, in one transaction.

Presentation only: read the rows (JSON lines, or CSV whose columns are start-form fields),
call ``engine.runtime.bulk.start_many`` and print one summary line (or JSON). Every
refusal names the file and the line: a malformed line or header before anything is
started, each refused row (the engine's row number mapped back to its line) after.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import click

from engine.cli.context import Context
from engine.cli.output import emit
from engine.errors import InputError, RowsInvalid
from engine.spec.forms import FormSpec

SHOWN_ROWS = 20  # refused rows printed one per line; the count of the rest follows


@dataclass(frozen=True)
class Rows:
    """The rows of a file and the line each starts on (for messages)."""

    path: Path
    values: list[dict[str, Any]]
    lines: list[int]


def read_rows(path: Path, form: Optional[FormSpec]) -> Rows:
    """The file's rows: ``.jsonl`` (one JSON object a line) or ``.csv`` (a header of field names).

    CSV cells are text, as typed in a spreadsheet; an empty cell is a field not given.
    The form checks CSV headers up front: a misspelt column would refuse every row.
    """
    kind = path.suffix.lower()
    if kind not in (".jsonl", ".ndjson", ".csv"):
        raise InputError("--each", f"{path}: expected a .jsonl or .csv file")
    text = _text(path)
    rows = _jsonl(path, text) if kind != ".csv" else _csv(path, text, form)
    if not rows.values:
        raise InputError("--each", f"{path}: no rows")
    return rows


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError("--each", f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}", "not UTF-8 text; save the file as UTF-8 (in Excel: CSV UTF-8)") from None


def _jsonl(path: Path, text: str) -> Rows:
    values, lines = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}", f"not valid JSON at column {e.colno}: {e.msg}") from None
        if not isinstance(value, dict):
            raise InputError(f"{path}:{n}", "must be a JSON object like {\"field\": \"value\"}")
        values.append(value)
        lines.append(n)
    return Rows(path, values, lines)


def _csv(path: Path, text: str, form: Optional[FormSpec]) -> Rows:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    _check_header(path, header, form)
    values, lines = [], []
    first = reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            if len(cells) > len(header):
                raise InputError(f"{path}:{first}", f"{len(cells)} cells but {len(header)} columns")
            values.append({h: c.strip() for h, c in zip(header, cells) if c.strip()})
            lines.append(first)
        first = reader.line_num + 1
    return Rows(path, values, lines)


def _check_header(path: Path, header: list[str], form: Optional[FormSpec]) -> None:
    where = f"{path}:1"
    if not any(header):
        raise InputError(where, "no header; the first line names the start form's fields")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if "" in header or repeated:
        raise InputError(where, f"column names must be given once each (repeated or empty: {repeated or ['']})")
    if form is None:
        return
    unknown = [h for h in header if h not in form.fields]
    if unknown:
        raise InputError(where, f"unknown column(s) {', '.join(unknown)}; the start form {form.id} has "
                                f"{', '.join(form.fields)}")
    missing = [k for k, f in form.fields.items()
               if f.required and f.required_if is None and f.default is None and k not in header]
    if missing:
        raise InputError(where, f"no column for required field(s) {', '.join(missing)} of the start form {form.id}")


def start_each(ctx: Context, procedure: str, staff: str, path: Path, key: Optional[str],
               at: Optional[datetime]) -> None:
    """Start one instance per row of ``path``; print the summary, or each refused row's line."""
    from engine.runtime.bulk import keys_from_template, start_many

    engine = ctx.engine
    proc = engine.library.get(procedure)
    form = proc.form(proc.spec.start.form)
    rows = read_rows(path, form)
    try:
        keys = keys_from_template(key, rows.values, form) if key else None
        result = start_many(engine, procedure, staff, rows.values, at, keys)
    except RowsInvalid as e:
        _refused(rows, e)
        sys.exit(1)
    started = result.started
    summary = {"procedure": procedure, "rows": len(rows.values), "started": len(started),
               "already_present": len(result.existing), "first_id": started[0].id if started else None,
               "last_id": started[-1].id if started else None, "ids": [i.id for i in result.instances]}
    ids = f" (#{summary['first_id']} … #{summary['last_id']})" if started else ""
    emit(ctx, summary, lambda: click.echo(f"{procedure} {proc.spec.title}: {len(started):,} started{ids}, "
                                          f"{len(result.existing):,} already present"))


def _refused(rows: Rows, e: RowsInvalid) -> None:
    """One line per refused row, ``file:line: why``, after the count (nothing was started)."""
    click.echo(f"error: {rows.path}: {len(e.rows):,} of {e.total:,} rows refused, nothing started", err=True)
    reasons = e.reasons()
    for n, why in reasons[:SHOWN_ROWS]:
        click.echo(f"{rows.path}:{rows.lines[n - 1]}: {why}", err=True)
    if len(reasons) > SHOWN_ROWS:
        click.echo(f"… and {len(reasons) - SHOWN_ROWS:,} more refused rows", err=True)
