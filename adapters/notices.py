"""Printed notices (催费通知单, 催费通知书, 律师函, 收费通知单, 维修单) rendered from a case.

The port is :class:`NoticeRenderer` (a kind and a context in, the text out); the shipped
implementation fills the Jinja2 templates in ``adapters/templates/`` (plain text, UTF-8,
Chinese). :func:`render_notice` builds the context from a case through the engine API —
its data, the site, the responsible steward — and writes the file; ``sop notice render``
is the command around it.

Which notice fits which case, and the rules they carry:

- ``door_notice`` 催费通知单 — posted on the door of a B-class or refusing unit (DUN-5, DUN-7);
- ``notice_1`` / ``notice_2`` / ``final_notice`` — the monthly ladder (DUN-10): issued on
  the day the case recorded (``notice1_at`` …; today if not issued yet), pay within 7 days;
- ``lawyer_letter`` 律师函 — only once the general manager approved it (DUN-8);
- ``fee_notice`` 收费通知单 — the month's charges of a fee cycle (FEE-1, FEE-2);
- ``repair_slip`` 维修单 — the slip the owner signs (REP-3).
"""
from __future__ import annotations

import os

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional, Protocol
from zoneinfo import ZoneInfo

from engine.errors import InputError

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAY_WITHIN = timedelta(days=7)          # DUN-10: each ladder notice asks for payment within 7 days


@dataclass(frozen=True)
class NoticeKind:
    title: str
    template: str
    procedures: tuple[str, ...]
    issued_field: Optional[str] = None  # the case field holding when it was issued
    pay_within: Optional[timedelta] = None


KINDS: dict[str, NoticeKind] = {
    "door_notice": NoticeKind("催费通知单", "door_notice.txt.j2", ("dunning",)),
    "notice_1": NoticeKind("催费通知书", "ladder_notice.txt.j2", ("dunning",), "notice1_at", PAY_WITHIN),
    "notice_2": NoticeKind("二次催费通知书", "ladder_notice.txt.j2", ("dunning",), "notice2_at", PAY_WITHIN),
    "final_notice": NoticeKind("最后催费通知书", "ladder_notice.txt.j2", ("dunning",), "final_notice_at", PAY_WITHIN),
    "lawyer_letter": NoticeKind("律师函", "lawyer_letter.txt.j2", ("dunning",), "letter_sent_at", PAY_WITHIN),
    "fee_notice": NoticeKind("收费通知单", "fee_notice.txt.j2", ("fee_cycle",), "notice_delivered_at"),
    "repair_slip": NoticeKind("维修单", "repair_slip.txt.j2", ("repair",), "completed_at"),
}


class NoticeRenderer(Protocol):
    """The port: turn a notice kind and its context into printable text."""

    def render(self, kind: str, context: dict[str, Any]) -> str: ...


# ------------------------------------------------------------------ formatting helpers

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿", "万亿")


def _money(v: Any) -> Optional[Decimal]:
    if v is None or v == "":
        return None
    try:
        return Decimal(str(v)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def money(v: Any) -> str:
    """1280 -> '1,280.00'."""
    d = _money(v)
    return "" if d is None else f"{d:,.2f}"


def _section(n: int) -> str:
    out, zero = "", False
    for i in range(3, -1, -1):
        d = n // 10 ** i % 10
        if d == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + _DIGITS[d] + _UNITS[i]
            zero = False
    return out


def rmb_upper(v: Any) -> str:
    """Amount in capital Chinese numerals (大写), as printed on notices: 壹仟贰佰捌拾元整."""
    d = _money(v)
    if d is None:
        return ""
    if d < 0:
        return "负" + rmb_upper(-d)
    whole, cents = int(d), int((d * 100) % 100)
    text, k, n = "", 0, whole
    while n > 0:
        n, sec = divmod(n, 10000)
        if sec:
            part = _section(sec) + _SECTIONS[k]
            text = ("零" if sec < 1000 and n > 0 else "") + part + text
        elif text and not text.startswith("零"):
            text = "零" + text
        k += 1
    jiao, fen = divmod(cents, 10)
    if whole == 0 and cents == 0:
        return "零元整"
    out = text + "元" if whole else ""
    if cents == 0:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif whole:
        out += "零"
    return out + (_DIGITS[fen] + "分" if fen else "整")


def cn_date(v: Any) -> str:
    """A date or ISO time as 2025年10月9日 (site time for a time)."""
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        v = datetime.fromisoformat(v) if "T" in v else date.fromisoformat(v)
    if isinstance(v, datetime):
        v = v.date()
    return f"{v.year}年{v.month}月{v.day}日"


def cn_period(v: Any) -> str:
    """2025-09 -> 2025年9月."""
    try:
        y, m = str(v).split("-")
        return f"{int(y)}年{int(m)}月"
    except ValueError:
        return str(v or "")


class TemplateRenderer:
    """The shipped renderer: Jinja2 templates, undefined names are errors, no HTML escaping."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        import jinja2

        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined,
                                      autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                                      lstrip_blocks=True)
        self.env.filters.update(money=money, rmb_upper=rmb_upper, cn_date=cn_date, cn_period=cn_period)

    def render(self, kind: str, context: dict[str, Any]) -> str:
        return self.env.get_template(KINDS[kind].template).render(**context)


# ------------------------------------------------------------------ building the context

def _local(v: Any, zone: ZoneInfo) -> Optional[datetime]:
    if not v:
        return None
    return datetime.fromisoformat(str(v)).astimezone(zone)


def notice_context(engine: Any, inst: Any, kind: str, issued_at: datetime) -> dict[str, Any]:
    """Everything a template may use: the case data, the site, the steward, the dates."""
    spec = KINDS[kind]
    zone = ZoneInfo(engine.org.site.zone)
    data = dict(inst.data)
    issued = _local(data.get(spec.issued_field), zone) if spec.issued_field else None
    issued_on = (issued or issued_at.astimezone(zone)).date()
    steward_id = data.get("responsible_steward") or engine.org.steward_of_building(
        str(data.get("unit", "")).split("-", 1)[0])
    steward = engine.org.person(steward_id) if steward_id and engine.org.has(steward_id) else None
    return {
        "kind": kind,
        "title": spec.title,
        "site": engine.org.site.name,
        "case_id": inst.id,
        "procedure": inst.procedure,
        "data": data,
        "unit": data.get("unit", ""),
        "owner_name": data.get("owner_name") or "业主",
        "issued_on": issued_on,
        "pay_by": issued_on + spec.pay_within if spec.pay_within else None,
        "steward_name": steward.name if steward else "",
        "steward_phone": (steward.phone or "") if steward else "",
        "staff_names": {s.id: s.name for s in engine.org.staff},
    }


def check_applicable(inst: Any, kind: str) -> None:
    if kind not in KINDS:
        raise InputError("KIND", f"unknown notice {kind!r}; one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    if inst.procedure not in spec.procedures:
        raise InputError("KIND", f"a {spec.title} ({kind}) is for {'/'.join(spec.procedures)} cases, "
                                 f"not {inst.procedure} #{inst.id}")
    if kind == "lawyer_letter" and not inst.data.get("letter_approved_by"):
        raise InputError("KIND", f"the lawyer's letter of case #{inst.id} is not approved yet: it needs the "
                                 "CS department's review and the general manager's approval (DUN-8)")


def file_name(inst: Any, kind: str) -> str:
    unit = str(inst.data.get("unit", "")).replace("/", "-")
    return f"{inst.procedure}-{inst.id}-{kind}{'-' + unit if unit else ''}.txt"


def render_notice(engine: Any, instance_id: int, kind: str, out_dir: Path,
                  issued_at: Optional[datetime] = None, renderer: Optional[NoticeRenderer] = None) -> Path:
    """Render notice ``kind`` of case ``instance_id`` into ``out_dir``; return the file."""
    inst = engine.show(instance_id)
    check_applicable(inst, kind)
    context = notice_context(engine, inst, kind, issued_at or engine.clock.now())
    text = (renderer or TemplateRenderer()).render(kind, context)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out", f"{out_dir} is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_new(out_dir / file_name(inst, kind), text)


def write_new(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, never over an existing file (or through a link): the same
    text there already is that file; other content makes ``name-2.txt``, ``name-3.txt`` …"""
    data = text.encode("utf-8")
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if candidate.is_file() and not candidate.is_symlink() and candidate.read_bytes() == data:
                return candidate
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return candidate
    raise InputError("--out", f"{path.parent} holds 999 other versions of {path.name}; not written")
