"""``sop demo``: a scripted run of the office on a fresh embedded database.

It drives the same engine API staff use, on a settable clock, so everything it writes is
ordinary history that ``sop tasks``, ``sop history`` and ``sop replay`` can read after.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine

Say = Callable[[str], None]


@dataclass
class DemoResult:
    db_url: str
    instances: int
    events: int


def fresh_db(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run(settings: Settings, say: Say) -> DemoResult:
    zone = ZoneInfo("Asia/Shanghai")
    clock = FakeClock(datetime(2025, 9, 30, 9, 0, tzinfo=zone))
    eng = build_engine(settings, clock)

    def at(day: int, hour: int, minute: int = 0, month: int = 9) -> datetime:
        t = datetime(2025, month, day, hour, minute, tzinfo=zone)
        clock.set(t)
        return t

    say("09-30 09:10 电话投诉：3-1201 王先生反映楼上漏水")
    c = eng.start("complaint", "liu_fang", {
        "unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
        "content": "楼上漏水，天花板渗水", "anonymous": False, "receiver_contact": "13800000001"}, at(30, 9, 10))
    say(f"   → 投诉单 #{c.id} 分派给 {c.assignee}（3栋管家）")
    eng.advance(c.id, "investigate", "chen_jing", at=at(30, 9, 40))
    eng.advance(c.id, "record_findings", "chen_jing", {
        "findings": "4-1301 卫生间防水层破损", "cause": "楼上防水老化", "responsibility": "owner"}, at=at(30, 10, 30))
    eng.advance(c.id, "dispatch", "chen_jing", {
        "department": "engineering", "limit_at": "2025-09-30T17:00:00+08:00", "instructions": "上门检修防水"},
        at=at(30, 10, 45))
    say(f"   → 派工程部限时处理，客服跟进")
    eng.advance(c.id, "department_done", "wu_gang", {"department_result": "已更换防水层"}, at=at(30, 16, 20))
    eng.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已修复楼上防水，请观察"},
                at=at(30, 16, 40))
    c = eng.advance(c.id, "resolve", "chen_jing", {"handling_result": "漏水已处理"}, at=at(30, 17, 0))
    say(f"   → 答复业主并处理完毕；自动生成回访单 #{c.children[0]}")
    cb = c.children[0]
    eng.advance(cb, "record_callback", "li_qiang", {
        "method": "visit", "satisfaction": "satisfied", "callback_notes": "业主表示满意",
        "owner_signature": "sig:王先生-20251009"}, at=at(9, 10, 0, month=10))
    eng.advance(cb, "check", "li_qiang", {"check_passed": True}, at=at(9, 11, 0, month=10))
    eng.advance(cb, "sign_opinion", "zhang_hua", {"opinion": "同意", "head_signature": "sig:张华"},
                at=at(9, 15, 0, month=10))
    eng.advance(c.id, "check_effect", "li_qiang", {"effective": True}, at=at(9, 16, 0, month=10))
    say(f"10-09 回访（上门，业主签字）、检查、签署意见，投诉 #{c.id} 结案")

    say("10-09 匿名信函投诉：夜间噪音")
    a = eng.start("complaint", "zhou_min", {"channel": "letter", "content": "夜间装修噪音扰民", "anonymous": True},
                  at(9, 16, 30, month=10))
    say(f"   → 匿名投诉 #{a.id} 进入客服主管队列（无回访，处理结果须记录）")
    n_inst, n_events, broken = eng.verify()
    say(f"审计：{n_inst} 个实例、{n_events} 个事件，哈希链{'完好' if broken is None else '断裂：' + str(broken)}")
    return DemoResult(settings.db, n_inst, n_events)
