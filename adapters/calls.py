"""Call-detail records (CDR) from the telephone system → ``phone_call`` instances (rule PHN-6).

Each CSV row is one call with the columns ``call_id``, ``caller``, ``ring_started_at``,
``answered_at`` (empty if nobody answered), ``rings`` (optional) and ``seat``. It becomes a
``phone_call`` instance started at its ring time, so the three-ring SLA (PHN-1/2) is judged
on the times in the record, not on when the file was imported:

- answered: ``answer`` at ``answered_at`` (late → breached), then ``file_record``, both by
  the person at the record's ``seat`` (the org file's ``seat``) when they may answer calls,
  so the call is on their record (``answered_by``), else by the importer;
- not answered, ring count known: ``hang_up`` at ring start + rings × ring length (the
  ``ring`` unit of the procedure), leaving a missed call to return;
- not answered, ring count unknown: left ringing; the timer sweep records the breach at
  ring start + 3 rings.

Idempotent: the instance key is ``call:<call_id>``, so importing a file again creates
nothing. A row with a bad value (a time that is no time or outside 1970–2999, a ring
count that is no count) refuses the whole file: every such row is named by line and
column and nothing is created. A well-formed row the engine refuses is reported with its
line number and the other rows still load; each row is its own transaction.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Optional
from zoneinfo import ZoneInfo

from engine.durations import parse_duration
from engine.errors import AdapterError, EngineError, InputError, NotAuthorized
from engine.instants import out_of_range
from adapters.rows import RowError  # noqa: F401  (part of this module's results)

PROCEDURE = "phone_call"
COLUMNS = ("call_id", "caller", "ring_started_at", "answered_at", "rings", "seat")
REQUIRED_COLUMNS = ("call_id", "caller", "ring_started_at", "answered_at", "seat")
WITHHELD = {"", "anonymous", "unknown", "private", "withheld", "restricted", "隐藏", "未知"}


@dataclass
class CallImport:
    """What an import did: instances created, rows already imported, rows refused."""

    created: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing,
                "errors": [{"line": e.line, "message": e.message} for e in self.errors]}


@dataclass(frozen=True)
class CallRecord:
    line: int
    call_id: str
    caller: Optional[str]
    ring_started_at: datetime
    answered_at: Optional[datetime]
    rings: Optional[int]
    seat: Optional[str]


def _time(raw: str, zone: ZoneInfo, column: str) -> datetime:
    try:
        t = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{column}: not an ISO 8601 time: {raw!r} (e.g. 2025-09-30T10:00:00+08:00)") from None
    t = t if t.tzinfo else t.replace(tzinfo=zone)
    why = out_of_range(t)
    if why is not None:
        raise ValueError(f"{column}: {raw.strip()!r} is {why}")
    return t


def _caller(raw: str) -> Optional[str]:
    number = re.sub(r"[\s()]", "", raw or "")
    if number.lower() in WITHHELD:
        return None
    return re.sub(r"^(?:\+86|0086)-?", "", number)


def parse_row(line: int, row: dict[str, Optional[str]], zone: ZoneInfo) -> CallRecord:
    """One CSV row as a record; raises ValueError naming the column at fault."""
    if None in row:
        raise ValueError("more cells than columns")
    values = {k: (v or "").strip() for k, v in row.items() if k}
    call_id = values.get("call_id", "")
    if not call_id:
        raise ValueError("call_id: missing")
    if not values.get("ring_started_at"):
        raise ValueError("ring_started_at: missing")
    started = _time(values["ring_started_at"], zone, "ring_started_at")
    answered = _time(values["answered_at"], zone, "answered_at") if values.get("answered_at") else None
    if answered is not None and answered < started:
        raise ValueError(f"answered_at: {values['answered_at']} is before ring_started_at "
                         f"{values['ring_started_at']}")
    rings: Optional[int] = None
    if values.get("rings"):
        try:
            rings = int(values["rings"])
        except ValueError:
            raise ValueError(f"rings: not a whole number: {values['rings']!r}") from None
        if rings < 0:
            raise ValueError(f"rings: cannot be negative ({rings})")
    return CallRecord(line, call_id, _caller(values.get("caller", "")), started, answered, rings,
                      values.get("seat") or None)


def read_records(text: str, zone: ZoneInfo) -> tuple[list[CallRecord], list[RowError]]:
    """Parse the whole file; a bad header is fatal, a bad row is reported and skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise AdapterError("calls", f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
                           " (rings is optional)", retryable=False)
    reader.fieldnames = header
    records, errors = [], []
    line = 1
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for k, v in row.items() if k):
            continue
        try:
            records.append(parse_row(line, row, zone))
        except ValueError as e:
            errors.append(RowError(line, str(e)))
    return records, errors


def ring_length(engine: Any) -> timedelta:
    """One ring: the phone procedure's ``ring`` unit (5 s without one), which must be
    wall-clock time: a record's rings are counted in seconds from its ring time."""
    units = engine.library.get(PROCEDURE).spec.units
    ring = parse_duration(units.get("ring", "5s"), units)
    if ring.kind != "wall" or not isinstance(ring.amount, timedelta):
        where = engine.library.files.get(f"procedure:{PROCEDURE}", f"{PROCEDURE}.yaml")
        raise InputError(f"{where}: units.ring", f"{ring} is not wall-clock time; one ring lasts e.g. 5s")
    return ring.amount


def load_record(engine: Any, rec: CallRecord, staff: str, ring: timedelta, result: CallImport) -> None:
    data: dict[str, Any] = {"ring_started_at": rec.ring_started_at.isoformat(), "imported": True,
                            "call_id": rec.call_id}
    if rec.caller:
        data["caller"] = rec.caller
    if rec.seat:
        data["seat"] = rec.seat
    key = f"call:{rec.call_id}"
    known = _known(engine, key)
    inst = engine.start(PROCEDURE, staff, data, at=rec.ring_started_at, external_key=key)
    (result.existing if known else result.created).append(inst.id)
    if inst.state != "ringing":
        return          # already answered, hung up or handled: nothing more to do
    if rec.answered_at is not None:
        answer = {"rings": rec.rings} if rec.rings is not None else {}
        who = answerer(engine, rec.seat, staff)
        engine.advance(inst.id, "answer", who, answer, at=rec.answered_at)
        engine.advance(inst.id, "file_record", who, at=rec.answered_at)
    elif rec.rings is not None:
        engine.advance(inst.id, "hang_up", staff, {"rings": rec.rings}, at=rec.ring_started_at + ring * rec.rings)


def answerer(engine: Any, seat: Optional[str], importer: str) -> str:
    """The person at ``seat`` if they may answer and file a call, else the importer."""
    person = engine.org.at_seat(seat)
    if person is None:
        return importer
    spec = engine.library.get(PROCEDURE).spec
    roles = set(engine.org.person(person).roles)
    steps = [a for a in spec.actions if a.name in ("answer", "file_record")]
    return person if all(roles & set(a.roles) for a in steps) else importer


def _known(engine: Any, key: str) -> bool:
    from engine.store import instances as instance_store

    with engine.read() as conn:
        return instance_store.find_by_key(conn, key) is not None


def check_importer(engine: Any, staff: str) -> None:
    """Refuse up front (not row by row) when STAFF may not take every step of an import."""
    spec = engine.library.get(PROCEDURE).spec
    needed = {"start": spec.start.roles, **{a.name: a.roles for a in spec.actions
                                            if a.name in ("answer", "hang_up", "file_record")}}
    roles = set(engine.org.person(staff).roles)
    missing = [step for step, allowed in needed.items() if not roles & set(allowed)]
    if missing:
        allowed = sorted(set.intersection(*(set(r) for r in needed.values())))
        raise NotAuthorized(staff, f"import call records (steps {', '.join(missing)})", allowed)


def import_calls(engine: Any, source: str | Path, staff: str) -> CallImport:
    """Import a CDR file (path or CSV text); see the module docstring."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise AdapterError("calls", f"cannot read {source}: {e.strerror}", retryable=False) from None
    else:
        text = source
    check_importer(engine, staff)
    zone = ZoneInfo(engine.org.site.zone)
    records, errors = read_records(text, zone)
    result = CallImport(errors=list(errors))
    if errors:  # a bad value anywhere: nothing is imported, every bad row is named
        return result
    ring = ring_length(engine)
    for rec in records:
        try:
            load_record(engine, rec, staff, ring, result)
        except EngineError as e:
            result.errors.append(RowError(rec.line, str(e)))
    result.errors.sort(key=lambda e: e.line)
    return result


def lines(errors: Iterable[RowError]) -> list[str]:
    return [str(e) for e in errors]
