"""Payment files (bank statements, front-desk exports) → ``record_payment`` on the open case.

Each CSV row is one payment with the columns ``unit``, ``period`` (YYYY-MM), ``amount``,
``paid_at`` and ``reference`` (bank serial or receipt number), and optionally ``channel``
(one of the payment form's channels, default ``bank``). It reaches the open ``dunning``
case of that unit and month (rule DUN-12: paid in full ends the case, a partial payment
keeps the remainder in dunning) or, if the unit has not been handed to dunning yet, its
open ``fee_cycle`` case, as the ``record_payment`` action at ``paid_at``.

Idempotent by ``reference``: every case keeps the references it has booked
(``payment_refs``) and refuses one it already has, so importing a file again records
nothing new. A row with a bad value (a column missing, an amount that is no amount, a
time that is no time or outside 1970–2999) refuses the whole file: every such row is named
by line and column and nothing is recorded. A well-formed row that matches no open case,
or that its case refuses, is reported with its line number; the other rows still load,
each in its own transaction (so a refused row writes nothing, and importing the file again
after the fix records only what is missing).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

from engine.errors import AdapterError, EngineError
from engine.instants import out_of_range
from engine.spec.forms import UNIT_RE, building_of
from adapters.rows import RowError  # noqa: F401  (part of this module's results)

PROCEDURES = ("dunning", "fee_cycle")      # where a payment may land, in order of preference
ACTION = "record_payment"
COLUMNS = ("unit", "period", "amount", "paid_at", "reference")
CHANNELS = ("front_desk", "bank", "bank_debit", "transfer", "wechat", "alipay")
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Payment:
    line: int
    unit: str
    period: str
    amount: Decimal
    paid_at: datetime
    reference: str
    channel: str = "bank"


@dataclass
class PaymentImport:
    """What an import did: payments recorded, payments already booked, rows refused."""

    recorded: list[dict[str, Any]] = field(default_factory=list)
    existing: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"recorded": self.recorded, "existing": self.existing,
                "errors": [{"line": e.line, "message": e.message} for e in self.errors]}


# ------------------------------------------------------------------ parsing

def _amount(raw: str) -> Decimal:
    text = raw.replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount: not a number: {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"amount: must be more than 0 ({raw!r})")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"amount: more than two decimals ({raw!r})")
    return value.quantize(Decimal("0.01"))


def _paid_at(raw: str, zone: ZoneInfo) -> datetime:
    """ISO 8601 (``T`` or a space); without an offset it is site time; a bare date is 00:00."""
    try:
        t = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"paid_at: not a date and time: {raw!r} (e.g. 2025-10-09 10:15 or "
                         "2025-10-09T10:15:00+08:00)") from None
    t = t if t.tzinfo else t.replace(tzinfo=zone)
    why = out_of_range(t)
    if why is not None:
        raise ValueError(f"paid_at: {raw.strip()!r} is {why}")
    return t


def parse_row(line: int, row: dict[Optional[str], Optional[str]], zone: ZoneInfo) -> Payment:
    """One CSV row as a payment; raises ValueError naming the column at fault."""
    if None in row:
        raise ValueError("more cells than columns")
    v = {k: (val or "").strip() for k, val in row.items() if k}
    for column in COLUMNS:
        if not v.get(column):
            raise ValueError(f"{column}: missing")
    if not re.fullmatch(UNIT_RE, v["unit"]):
        raise ValueError(f"unit: not a unit number such as 3-1201: {v['unit']!r}")
    if not PERIOD_RE.match(v["period"]):
        raise ValueError(f"period: expected YYYY-MM, got {v['period']!r}")
    if len(v["reference"]) > 100 or re.search(r"[\s|]", v["reference"]):
        raise ValueError(f"reference: at most 100 characters, no spaces or '|': {v['reference']!r}")
    channel = v.get("channel") or "bank"
    if channel not in CHANNELS:
        raise ValueError(f"channel: one of {', '.join(CHANNELS)}, got {channel!r}")
    return Payment(line, v["unit"], v["period"], _amount(v["amount"]), _paid_at(v["paid_at"], zone),
                   v["reference"], channel)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (spreadsheets saved on Chinese Windows)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def read_payments(text: str, zone: ZoneInfo) -> tuple[list[Payment], list[RowError]]:
    """Parse the whole file; a bad header is fatal, a bad row is reported and skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise AdapterError("payments", f"missing column(s) {', '.join(missing)}; expected "
                                       f"{', '.join(COLUMNS)} (channel is optional)", retryable=False)
    reader.fieldnames = header
    payments: list[Payment] = []
    errors: list[RowError] = []
    for row in reader:
        if not any((val or "").strip() for k, val in row.items() if k):
            continue
        try:
            payments.append(parse_row(reader.line_num, row, zone))
        except ValueError as e:
            errors.append(RowError(reader.line_num, str(e)))
    return payments, errors


# ------------------------------------------------------------------ matching

def find_cases(engine: Any, unit: str, period: str) -> list[Any]:
    """Every dunning and fee-cycle case of this unit and month, dunning first, newest first.

    Reads the instances table directly (narrowed by the indexed-at-write ``building``
    column) until the engine offers a query by data; the rest goes through the engine API.
    """
    import sqlalchemy as sa

    from engine.store.tables import instances as table

    with engine.read() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.procedure).where(
            table.c.procedure.in_(PROCEDURES), table.c.building == building_of(unit)).order_by(table.c.id.desc())).all()
    cases = [engine.show(r.id) for r in rows]
    cases = [c for c in cases if c.data.get("unit") == unit and c.data.get("period") == period]
    return sorted(cases, key=lambda c: PROCEDURES.index(c.procedure))


def _booked(case: Any, reference: str) -> bool:
    return f"|{reference}|" in str(case.data.get("payment_refs") or "|")


def record(engine: Any, p: Payment, staff: str, result: PaymentImport) -> None:
    cases = find_cases(engine, p.unit, p.period)
    done = next((c for c in cases if _booked(c, p.reference)), None)
    if done is not None:
        result.existing.append({"line": p.line, "reference": p.reference, "instance": done.id})
        return
    case = next((c for c in cases if c.status == "active"), None)
    if case is None:
        closed = f" (case {', '.join('#' + str(c.id) for c in cases)} already closed)" if cases else ""
        result.errors.append(RowError(p.line, f"no open dunning case or fee cycle for {p.unit} {p.period}{closed}"))
        return
    at = p.paid_at
    if case.last_occurred_at is not None and at < case.last_occurred_at:
        at = case.last_occurred_at        # the case moved on since; paid_at keeps the bank's time
    data = {"payment_amount": str(p.amount), "payment_channel": p.channel, "payment_reference": p.reference,
            "paid_at": p.paid_at.isoformat()}
    try:
        after = engine.advance(case.id, ACTION, staff, data, at=at)
    except EngineError as e:
        result.errors.append(RowError(p.line, f"{case.procedure} #{case.id}: {e}"))
        return
    result.recorded.append({"line": p.line, "reference": p.reference, "instance": after.id,
                            "procedure": after.procedure, "amount": str(p.amount),
                            "remaining": str(after.data.get("remaining")), "paid_in_full": not after.active,
                            "recorded_at": at.astimezone(p.paid_at.tzinfo).isoformat()})


def import_payments(engine: Any, path: Path, staff: str) -> PaymentImport:
    """Import a payments CSV; see the module docstring."""
    try:
        text = decode(Path(path).read_bytes())
    except OSError as e:
        raise AdapterError("payments", f"cannot read {path}: {e.strerror}", retryable=False) from None
    zone = ZoneInfo(engine.org.site.zone)
    payments, errors = read_payments(text, zone)
    result = PaymentImport(errors=list(errors))
    if errors:  # a bad value anywhere: nothing is imported, every bad row is named
        return result
    for p in payments:
        record(engine, p, staff, result)
    result.errors.sort(key=lambda e: e.line)
    return result
