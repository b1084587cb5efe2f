"""What the pages show, built from the engine's read models (no business rules here).

The inbox rows, an instance's timeline, its clocks with their history and its labels all
come from the same reads the JSON API makes (``list_instances``, ``Engine.show``,
``Engine.history``, ``deadline_views``); this module only picks and labels.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from engine.codec import Clock
from engine.core import model as m
from engine.core.model import Instance
from engine.runtime.queries import deadline_views
from engine.spec.library import CompiledProcedure
from engine.store.queries import InstanceFilter, Page, branch_tasks, list_instances
from engine.web.evidence import is_evidence

EVENT_TITLES = {
    m.INSTANCE_STARTED: "登记", m.ACTION_TAKEN: "操作", m.DATA_RECORDED: "记录", m.ASSIGNED: "分派",
    m.NOTIFICATION_QUEUED: "通知", m.CHILD_SPAWNED: "派生关联单", m.INSTANCE_COMPLETED: "结束",
    m.VERSION_MIGRATED: "版本迁移",
    "SlaStarted": "时限开始", "SlaWarned": "时限预警", "SlaBreached": "超时", "SlaStopped": "时限停止",
    "SlaPaused": "时限暂停", "SlaResumed": "时限恢复", "SlaReset": "时限重设", "SlaCancelled": "时限取消",
    "TimerArmed": "定时器设定", "TimerFired": "定时器触发", "TimerCancelled": "定时器取消",
}
CLOCK_STATUS = {"open": "进行中", "warned": "已预警", "breached": "已超时", "met": "已达标", "cancelled": "已取消",
                "fired": "已触发", "provisional": "暂定"}
STATUS = {"active": "办理中", "completed": "已完成", "cancelled": "已取消"}
RUNNING = ("open", "warned", "breached")


def zone_of(engine: Any) -> ZoneInfo:
    return ZoneInfo(engine.org.site.zone)


def staff_name(engine: Any, staff_id: Optional[str]) -> str:
    if not staff_id:
        return "—"
    if staff_id == "system":
        return "系统"
    return engine.org.person(staff_id).name if engine.org.has(staff_id) else staff_id


def role_name(engine: Any, role: Optional[str]) -> str:
    return engine.org.roles.get(role, role) if role else ""


def local(t: Any, zone: ZoneInfo) -> str:
    """A time as the site reads it: ``2025-09-30 18:00``."""
    if t is None:
        return "—"
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def procedure_of(engine: Any, inst: Instance) -> CompiledProcedure:
    with engine.read() as conn:
        return engine.procedure_for(conn, inst.procedure, inst.version)


def state_title(proc: CompiledProcedure, state: str) -> str:
    st = proc.spec.states.get(state)
    return st.title if st else state


def field_labels(proc: CompiledProcedure) -> dict[str, str]:
    """Every data field's Chinese label: the procedure's own fields, then its forms'."""
    labels = {name: f.label for name, f in proc.spec.fields.items()}
    for form in proc.forms.values():
        for name, f in form.fields.items():
            labels.setdefault(name, f.label)
    return labels


def option_label(proc: CompiledProcedure, name: str, value: Any) -> Optional[str]:
    for spec in [proc.spec.fields.get(name), *(f.fields.get(name) for f in proc.forms.values())]:
        if spec is not None and spec.option_labels and isinstance(value, str) and value in spec.option_labels:
            return spec.option_labels[value]
    return None


def clock_titles(proc: CompiledProcedure) -> dict[str, str]:
    return {**{s.name: s.title for s in proc.spec.slas}, **{t.name: t.title for t in proc.spec.timers}}


# ---------------------------------------------------------------- inbox

@dataclass
class Row:
    inst: Instance
    procedure: str
    state: str
    unit: str
    summary: str
    assignee: str
    deadline: Optional[dict[str, Any]]
    deadline_title: str = ""

    @property
    def sla_class(self) -> str:
        d = self.deadline
        if d is None:
            return "none"
        if d.get("provisional"):
            return "provisional"
        return str(d.get("status") or "open")

    @property
    def due(self) -> Optional[str]:
        return self.deadline.get("due") if self.deadline else None


_NO_CLOCK = Clock()  # a name without a clock: every field None

def deadlines(inst: Instance, calendar: Any) -> list[dict[str, Any]]:
    """``deadline_views`` (as ``sop show`` and the API give them), each marked ``provisional``
    when either the view or the clock itself says so."""
    out = []
    typed = inst.clocks
    for d in deadline_views(inst, calendar):
        if not d.get("provisional") and typed.get(d["name"], _NO_CLOCK).provisional:
            d = {**d, "provisional": True}
        out.append(d)
    return out


def next_deadline(inst: Instance, calendar: Any) -> Optional[dict[str, Any]]:
    """The running clock due first (an SLA before a timer due at the same time)."""
    running = [d for d in deadlines(inst, calendar)
               if d.get("due") and d.get("status") in RUNNING and not d.get("paused")]
    if not running:
        return None
    return min(running, key=lambda d: (d["due"] if d["status"] != "breached" else "", d.get("kind") != "sla"))


@dataclass(frozen=True)
class Inbox:
    """An inbox's two lists (each at most the page's limit) and how many each holds in all:
    a finance queue in the month's fee cycle holds thousands, and the page says so."""

    mine: list[Row]
    queue: list[Row]
    mine_total: int
    queue_total: int


def inbox(engine: Any, staff_id: str, roles: tuple[str, ...], building: Optional[str],
          limit: int = 200) -> Inbox:
    """My tasks and my roles' unclaimed queue, each sorted by due time (none last); a
    building-scoped person's queue holds only their buildings' (and no building's)."""
    now = engine.clock.now()
    mine_f = InstanceFilter(status="active", assignee=staff_id, building=building or None)
    queue_f = InstanceFilter(status="active", unassigned=True, building=building or None, roles=roles,
                             queue_buildings=engine.org.building_scope(staff_id))
    with engine.read() as conn:
        mine = list_instances(conn, mine_f, now, limit, 0, oldest_first=True)
        queue = list_instances(conn, queue_f, now, limit, 0, oldest_first=True) if roles else Page([], 0)
        branches = branch_tasks(conn, staff_id, roles, engine.org.building_scope(staff_id), limit,  # one per open
                                narrow=InstanceFilter(building=building or None))  # parallel branch
    mine_b = [t for t in branches if t.assignee == staff_id]
    queue_b = [t for t in branches if t.assignee is None]
    return Inbox(_rows(engine, mine.items + mine_b), _rows(engine, queue.items + queue_b),
                 mine.total + len(mine_b), queue.total + len(queue_b))


def watched(engine: Any, staff_id: str, limit: int = 200) -> list[Row]:
    """The running cases this person watches (``sop tasks --watching``), by due time."""
    with engine.read() as conn:
        f = InstanceFilter(status="active", watcher=staff_id)
        return _rows(engine, list_instances(conn, f, engine.clock.now(), limit, 0, oldest_first=True).items)


def _rows(engine: Any, items: list[Instance]) -> list[Row]:
    rows = []
    for inst in items:
        proc = engine.library.procedures.get(inst.procedure)
        pinned = proc if proc is not None and proc.version == inst.version else procedure_of(engine, inst)
        d = next_deadline(inst, engine.calendar)
        unit = inst.data.get("unit")
        summary = next((str(inst.data[k]) for k in ("content", "subject", "title", "purpose", "caller")
                        if isinstance(inst.data.get(k), str)), "")
        rows.append(Row(inst, pinned.spec.title, state_title(pinned, inst.state),
                        unit if isinstance(unit, str) else "", summary[:60], staff_name(engine, inst.assignee), d,
                        clock_titles(pinned).get(d["name"], d["name"]) if d else ""))
    rows.sort(key=lambda r: (r.due is None, r.due or "", r.inst.id))
    return rows


# ---------------------------------------------------------------- instance page

@dataclass
class TimelineEntry:
    seq: int
    type: str
    title: str
    actor: str
    role: str
    occurred_at: str
    recorded_at: str
    why: str
    details: list[tuple[str, Any]] = field(default_factory=list)
    evidence: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    css: str = ""


def _why(engine: Any, proc: CompiledProcedure, type_: str, data: dict[str, Any]) -> tuple[str, str]:
    """(a sentence saying what happened, a css class)."""
    titles = clock_titles(proc)
    if type_ == m.ACTION_TAKEN:
        action = next((a for a in proc.spec.actions if a.name == data.get("action")), None)
        moved = data.get("from") != data.get("to")
        move = f"：{state_title(proc, data.get('from', ''))} → {state_title(proc, data.get('to', ''))}" if moved else ""
        return f"{action.title if action else data.get('action')}{move}", "action"
    if type_ == m.INSTANCE_STARTED:
        return f"登记{proc.spec.title}，进入「{state_title(proc, data.get('state', ''))}」", "action"
    if type_ == m.ASSIGNED:
        how = {"rule": "按规则", "claim": "认领"}.get(data.get("by", ""), data.get("by", ""))
        return f"分派给 {staff_name(engine, data.get('assignee'))}（{role_name(engine, data.get('role'))}，{how}）", ""
    if type_ == m.NOTIFICATION_QUEUED:
        to = "、".join(staff_name(engine, r) for r in data.get("recipients", []))
        return f"通知 {to}：{data.get('message', '')}", "notice"
    if type_ == m.CHILD_SPAWNED:
        return f"派生关联单 #{data.get('child_id')}（{data.get('procedure')}）", ""
    if type_ == m.DATA_RECORDED:
        return "记录数据", ""
    if type_ == m.VERSION_MIGRATED:  # the old version's state may have no title in the new one
        return (f"迁移到流程版本 {data.get('to')}：{data.get('state_from')} → "
                f"{state_title(proc, data.get('state_to', ''))}"), ""
    if "name" in data and "clock" in data:
        css = {"SlaBreached": "breached", "SlaWarned": "warned", "SlaStopped": "met"}.get(type_, "clock")
        return f"{titles.get(data['name'], data['name'])}：{EVENT_TITLES.get(type_, type_)}", css
    return EVENT_TITLES.get(type_, type_), ""


ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)$")


def _flatten(engine: Any, proc: CompiledProcedure, values: dict[str, Any], labels: dict[str, str],
             evidence: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """(label, text) per value: option labels, 是/否, staff names, times in the site's zone."""
    out = []
    for k, v in values.items():
        label = labels.get(k, k)
        if is_evidence(v):
            evidence.append((label, v))
            continue
        out.append((label, value_text(engine, proc, k, v)))
    return out


def value_text(engine: Any, proc: CompiledProcedure, name: str, v: Any) -> str:
    """One stored value as a person reads it: its option's label, 是/否, a staff member's
    name, a time in the site's zone, "—" for nothing."""
    shown = option_label(proc, name, v)
    if shown is not None:
        return str(shown)
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, str) and ISO_TIME.match(v):
        return local(v, zone_of(engine))
    if isinstance(v, str) and v != "system" and engine.org.has(v):
        return f"{staff_name(engine, v)}（{v}）"
    return "—" if v is None else str(v)


def timeline(engine: Any, proc: CompiledProcedure, events: list[Any]) -> list[TimelineEntry]:
    zone = zone_of(engine)
    labels = field_labels(proc)
    out = []
    for e in events:
        data = json.loads(e.data_json)
        why, css = _why(engine, proc, e.type, data)
        evidence: list[tuple[str, dict[str, Any]]] = []
        values = (data.get("input") if e.type == m.ACTION_TAKEN else data.get("data") if e.type == m.INSTANCE_STARTED
                  else data.get("changes") if e.type == m.DATA_RECORDED else None) or {}
        details = _flatten(engine, proc, values, labels, evidence)
        out.append(TimelineEntry(e.seq, e.type, EVENT_TITLES.get(e.type, e.type), staff_name(engine, e.actor),
                                 role_name(engine, e.role), local(e.occurred_at, zone), local(e.recorded_at, zone),
                                 why, details, evidence, css))
    return out


@dataclass
class ClockView:
    name: str
    title: str
    kind: str
    status: str
    status_class: str
    due: str
    due_iso: Optional[str]
    started_at: str
    goal: str
    history: list[tuple[str, str]]  # (when, what)


def clocks(engine: Any, proc: CompiledProcedure, inst: Instance, events: list[Any]) -> list[ClockView]:
    zone = zone_of(engine)
    titles = clock_titles(proc)
    history: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        if e.type.startswith(("Sla", "Timer")):
            data = json.loads(e.data_json)
            name = data.get("name")
            if name:
                history.setdefault(name, []).append((local(e.occurred_at, zone), EVENT_TITLES.get(e.type, e.type)))
    out = []
    typed = inst.clocks
    for d in deadlines(inst, engine.calendar):
        raw = typed.get(d["name"], _NO_CLOCK)
        css = "provisional" if d.get("provisional") else d["status"]
        status = CLOCK_STATUS.get(d["status"], d["status"]) + ("（暂停）" if d.get("paused") else "") + (
            "（暂定）" if d.get("provisional") else "")
        out.append(ClockView(d["name"], titles.get(d["name"], d["name"]), "时限" if d["kind"] == "sla" else "定时器",
                             status, css, local(d.get("due"), zone), d.get("due"), local(raw.started_at, zone),
                             str(raw.goal or ""), history.get(d["name"], [])))
    return out


def data_rows(engine: Any, proc: CompiledProcedure, inst: Instance) -> tuple[list[tuple[str, Any]],
                                                                            list[tuple[str, dict[str, Any]]]]:
    evidence: list[tuple[str, dict[str, Any]]] = []
    return _flatten(engine, proc, inst.data, field_labels(proc), evidence), evidence
