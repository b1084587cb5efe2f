"""The month at 山水庭苑 that ``sop demo`` plays: one story per matter, in dated steps.

A story is a generator: it yields the time of its next step, and the scheduler
(``engine/demo/player.py``) sets the clock there, sweeps the timers up to it and resumes
the story, which then acts through the engine API. Between steps the engine's own timers
do the rest (SLA warnings and breaches, daily dunning calls, patrol checks, tea every 15
minutes …). Stories share instance ids through ``d.ids``.

Cast (org/demo.yaml): front desk 刘芳 liu_fang, 周敏 zhou_min; stewards 王丽 wang_li
(buildings 1-2), 陈静 chen_jing (3-4), 赵磊 zhao_lei (5-6), 孙燕 sun_yan (7-8); CS
supervisor 李强 li_qiang; office director 张华 zhang_hua; company CS department 黄敏
huang_min; deputy manager 何军 he_jun; general manager 钱国 qian_guo; engineering 吴刚
wu_gang, 郑波 zheng_bo, manager 冯涛 feng_tao; security 徐斌 xu_bin; meetings 马丽 ma_li;
archive 高雅 gao_ya; finance 林彩 lin_cai.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from engine.demo.player import Demo, Story

STORIES: list[Callable[[Demo], Story]] = []


def story(fn: Callable[[Demo], Story]) -> Callable[[Demo], Story]:
    STORIES.append(fn)
    return fn


OWNERS = {
    "1-0101": ("张建国", "13901010101"), "1-1202": ("李淑芬", "13901011202"), "2-0502": ("周文", "13902020502"),
    "2-0801": ("吴海", "13902020801"), "2-1101": ("赵雪", "13902021101"), "3-0502": ("郑丽", "13903030502"),
    "3-1201": ("王建华", "13912345678"), "4-0301": ("孙梅", "13904040301"), "4-1002": ("钱伟", "13904041002"),
    "5-0302": ("何晓明", "13905050302"), "5-0602": ("冯强", "13905050602"), "5-1101": ("陈刚", "13905051101"),
    "6-0303": ("褚华", "13906060303"), "6-1102": ("卫东", "13906061102"), "7-0802": ("韩磊", "13907070802"),
    "7-1501": ("蒋玲", "13907071501"), "8-0201": ("杨帆", "13908080201"), "8-0902": ("朱敏", "13908080902"),
}
SEAT = {"liu_fang": "8001", "zhou_min": "8002"}
SEAT_STAFF = {seat: staff for staff, seat in SEAT.items()}


def owner(unit: str) -> dict[str, str]:
    name, phone = OWNERS[unit]
    return {"unit": unit, "owner_name": name, "contact": phone}


def iso(text: str) -> str:
    return Demo.at(text).isoformat()


# ======================================================================== shared steps

def live_call(d: Demo, staff: str, unit: str, matter: str, category: str, answer_after: int = 8,
              serving_visitor: bool = False, **more: Any) -> Story:
    """A call rung, answered with the greeting and recorded at the desk (PHN-1, 3, 4, 5)."""
    o, rang = owner(unit), d.now
    call = d.start("phone_call", staff, {"caller": o["contact"], "seat": SEAT[staff]})
    if serving_visitor:
        yield rang + timedelta(seconds=3)
        d.act(call.id, "busy_with_visitor", staff)
    yield rang + timedelta(seconds=answer_after)
    answer = {"greeted": True, **({"serving_visitor": True, "apologised_to_visitor": True} if serving_visitor else {})}
    d.act(call.id, "answer", staff, answer)
    yield d.later(minutes=3)
    return d.act(call.id, "classify", staff, {"caller_name": o["owner_name"], "contact": o["contact"], "unit": unit,
                                              "matter": matter, "category": category, **more})


def callback(d: Demo, cb: int, when: str, method: str = "phone", notes: str = "业主对处理结果表示满意",
             satisfaction: str = "satisfied", **more: Any) -> Story:
    """CBK-1..3: the supervisor calls back (or visits, with the owner's signature), checks, the director signs."""
    yield d.at(when)
    data = {"method": method, "satisfaction": satisfaction, "callback_notes": notes, **more}
    if method == "visit":
        data["owner_signature"] = f"sig:{d.show(cb).data['unit']}-{d.now:%Y%m%d}"
    recorded = d.act(cb, "record_callback", "li_qiang", data)
    yield d.later(minutes=30)
    d.act(cb, "check", "li_qiang", {"check_passed": True})
    yield d.later(hours=2)
    d.act(cb, "sign_opinion", "zhang_hua", {"opinion": "同意，回访到位", "head_signature": "sig:张华"})
    return recorded


def repair_done(d: Demo, r: int, engineer: str, items: str, minutes: int = 40) -> Story:
    """REP-2: an engineer claims the request, confirms on site (free of charge) and repairs."""
    d.claim(r, engineer)
    d.act(r, "confirm_on_site", engineer, {"site_findings": items, "needs_fee": False})
    yield d.later(minutes=5)
    began = d.now
    d.act(r, "start_repair", engineer)
    yield d.later(minutes=minutes)
    d.act(r, "finish_repair", engineer, {"repair_items": items, "work_started_at": began.isoformat(),
                                         "work_finished_at": d.now.isoformat()})
