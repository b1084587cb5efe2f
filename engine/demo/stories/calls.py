"""Calls at the front desk (PHN): live calls, missed calls called back, the day's call records imported."""
from __future__ import annotations

from datetime import date, datetime
from itertools import cycle

from engine.demo.player import DATA, Demo, Story
from engine.demo.stories.common import SEAT_STAFF, live_call, story


@story
def call_records(d: Demo) -> Story:
    """PHN-6: every workday at 18:10 each desk imports its seat's call-detail records of the day
    (demo/calls.csv; the holiday's calls on the first workday after it), judged on their own times."""
    from adapters.calls import import_calls

    header, *lines = (DATA / "calls.csv").read_text(encoding="utf-8").splitlines()
    done = date(2025, 9, 14)
    for day in d.days(workdays=True):
        yield d.on(day, "18:10")
        batch = [row.split(",") for row in lines if done < date.fromisoformat(row.split(",")[2][:10]) <= day]
        for seat, staff in SEAT_STAFF.items():
            rows = [",".join(r) for r in batch if r[5] == seat]
            result = import_calls(d.engine, "\n".join([header, *rows]) + "\n", staff)
            if result.errors:
                raise RuntimeError(f"demo/calls.csv: {result.errors}")
            d.totals["calls"] += len(result.created)
        for _, _, rang, answered, _, _ in batch:
            if not answered:
                d.totals["calls_missed"] += 1
            elif (datetime.fromisoformat(answered) - datetime.fromisoformat(rang)).total_seconds() > 15:
                d.totals["calls_late"] += 1
        if (day - done).days > 3:
            d.note(f"导入国庆中秋假期及当日话单 {len(batch)} 通：按话单上的响铃、接听时间判定三声内接听（PHN-6）")
        done = day


ENQUIRIES = [
    ("咨询停车月卡办理", "已告知携带行驶证到客服中心办理"),
    ("询问小区停水时间", "已告知9月底二次供水水箱清洗，停水通知已张贴"),
    ("咨询快递柜位置", "已告知在各栋大堂入口右侧"),
    ("询问装修申请手续", "已告知装修申请所需资料及审批流程"),
    ("咨询物业费缴费方式", "已告知前台、银行托收、微信、支付宝均可缴费"),
]


@story
def missed_calls(d: Demo) -> Story:
    """PHN-2: each workday at 09:05 the front desk returns the calls nobody answered."""
    enquiries = cycle(ENQUIRIES)
    for day in d.days(workdays=True):
        yield d.on(day, "09:05")
        for c in [c for c in d.engine.tasks(role="front_desk") if c.procedure == "phone_call"]:
            if c.state == "ringing":                     # imported without a ring count
                d.act(c.id, "hang_up", "liu_fang")
            if not c.data.get("caller"):
                d.act(c.id, "close_unreached", "liu_fang", {"unreached_reason": "来电号码隐藏，无法回拨"})
                continue
            yield d.later(minutes=2)
            d.act(c.id, "call_back", "liu_fang")
            matter, answer = next(enquiries)
            yield d.later(minutes=3)
            d.act(c.id, "classify", "liu_fang", {"caller_name": "来电业主", "contact": c.data["caller"], "matter": matter,
                                                 "category": "enquiry", "answer_given": answer})


@story
def late_answer_at_the_desk(d: Demo) -> Story:
    """PHN-5: the phone rings while 周敏 serves a visitor; she answers after 5 rings: a violation."""
    yield d.at("09-19 10:40")
    call = yield from live_call(d, "zhou_min", "6-1102", "询问中秋节小区活动安排", "enquiry", answer_after=24,
                                serving_visitor=True, answer_given="已告知9月30日晚在中心花园举办中秋游园")
    d.note(f"来电 #{call.id}：周敏正在接待来访，响铃24秒（约5声）才接听——超过三声，记为违规并通知其他坐席和主管")
