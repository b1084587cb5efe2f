"""The month at 山水庭苑 that ``sop demo`` plays: one story per matter, in dated steps.

A story is a generator: it yields the time of its next step, and the scheduler
(``engine.runtime.demo``) sets the clock there, sweeps the timers up to it and resumes
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

from datetime import date, datetime, timedelta
from itertools import cycle
from typing import Any, Callable

from engine.runtime.demo import DATA, Demo, Story

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


# ======================================================================== calls (PHN)

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


# ======================================================================== complaints (CMP) and callbacks (CBK)

@story
def leak_from_upstairs(d: Demo) -> Story:
    """CMP-1..6, CMP-9, CMP-13: a phone complaint, dispatched to engineering, replied the same day."""
    yield d.at("09-16 09:05")
    call = yield from live_call(d, "liu_fang", "3-1201", "卫生间天花板渗水，怀疑楼上漏水", "complaint")
    c = d.ids["complaint_leak"] = call.children[0]
    d.note(f"电话投诉 #{c}（来电 #{call.id}，2声接听）：3-1201 王建华 卫生间天花板渗水 → 陈静（3栋管家）")
    yield d.at("09-16 09:40")
    d.act(c, "investigate", "chen_jing")
    yield d.at("09-16 10:30")
    d.act(c, "record_findings", "chen_jing", {"findings": "楼上4-1301卫生间地面防水层破损", "cause": "防水层老化",
                                              "responsibility": "owner"})
    d.act(c, "dispatch", "chen_jing", {"department": "engineering", "limit_at": iso("09-16 17:00"),
                                       "instructions": "协调4-1301业主，检修卫生间防水"})
    yield d.at("09-16 15:20")
    d.act(c, "department_done", "wu_gang", {"department_result": "已为4-1301做闭水试验并修补防水层"})
    yield d.at("09-16 16:00")
    d.act(c, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "楼上防水已修补，请观察两天"})
    yield d.at("09-17 10:00")
    done = d.act(c, "resolve", "chen_jing", {"handling_result": "楼上防水修补后不再渗水"})
    yield from callback(d, done.children[0], "09-19 10:00", method="visit", notes="上门查看天花板已干，业主满意")
    yield d.at("09-22 11:00")
    d.act(c, "check_effect", "li_qiang", {"effective": True})


@story
def wall_seepage_with_interim_reply(d: Demo) -> Story:
    """CMP-4: the cause is not known by the deadline: an interim reply names the next reply time."""
    yield d.at("09-18 10:20")
    c = d.ids["complaint_interim"] = d.start("complaint", "zhou_min", {
        **owner("2-0502"), "channel": "visit", "content": "雨后卧室外墙渗水", "receiver_contact": "13800000002"}).id
    d.note(f"来访投诉 #{c}：2-0502 周文 卧室外墙渗水 → 王丽")
    yield d.at("09-18 11:00")
    d.act(c, "investigate", "wang_li")
    yield d.at("09-18 16:30")
    d.act(c, "interim_reply", "wang_li", {"interim_message": "已请开发商保修部查勘外墙，9月22日中午前答复处理方案",
                                          "next_reply_at": iso("09-22 12:00")})
    d.note(f"投诉 #{c} 阶段性答复：原因待开发商查勘，承诺 09-22 12:00 前再答复（新的答复时限，CMP-4）")
    yield d.at("09-22 10:00")
    d.act(c, "record_findings", "wang_li", {"findings": "外墙砖缝开裂，雨水渗入", "cause": "外墙勾缝老化",
                                            "responsibility": "developer"})
    yield d.at("09-22 11:30")
    d.act(c, "reply", "wang_li", {"reply_method": "visit", "reply_summary": "开发商保修部10月10日前修补外墙砖缝"})
    yield d.at("09-22 11:40")
    done = d.act(c, "resolve", "wang_li", {"handling_result": "开发商已排期修补外墙"})
    recorded = yield from callback(d, done.children[0], "09-24 10:00", method="visit", notes="外墙已搭架施工",
                                   new_matter="楼下商铺油烟大", open_new_complaint=True)
    yield d.at("09-25 09:30")
    d.act(c, "check_effect", "li_qiang", {"effective": True})
    yield from smoke_from_the_shop(d, recorded.children[0])


def smoke_from_the_shop(d: Demo, c: int) -> Story:
    """CBK-4: a new matter raised at the callback became its own complaint."""
    d.note(f"回访中业主提出新意见：楼下商铺油烟 → 新投诉 #{c}（CBK-4）")
    yield d.at("09-25 10:00")
    d.act(c, "investigate", "wang_li")
    yield d.at("09-25 16:00")
    d.act(c, "reply", "wang_li", {"reply_method": "phone", "reply_summary": "已约谈商铺，10月底前加装油烟净化器"})
    yield d.at("09-30 10:00")
    d.act(c, "resolve", "wang_li", {"handling_result": "商铺已签承诺书"})


@story
def garage_lights_by_letter(d: Demo) -> Story:
    """CMP-3: a letter gets 3 workdays (the make-up Sunday counts); an interim reply carries it over the holiday."""
    yield d.at("09-26 10:00")
    c = d.start("complaint", "zhou_min", {**owner("5-1101"), "channel": "letter",
                                          "content": "地下车库B1层多处照明损坏，夜间不安全"}).id
    d.note(f"信函投诉 #{c}：5-1101 陈刚 车库照明 → 赵磊；3个工作日答复，周日09-28调休计入，09-30 10:00 到期")
    yield d.at("09-26 14:00")
    d.act(c, "investigate", "zhao_lei")
    yield d.at("09-26 15:00")
    d.act(c, "record_findings", "zhao_lei", {"findings": "B1层12盏灯管损坏", "cause": "灯管老化",
                                             "responsibility": "property_company"})
    d.act(c, "dispatch", "zhao_lei", {"department": "engineering", "limit_at": iso("10-10 17:00"),
                                      "instructions": "更换B1层灯管（需采购LED灯管）"})
    yield d.at("09-29 15:00")
    d.act(c, "interim_reply", "zhao_lei", {"interim_message": "灯管已下单采购，节后到货安装，10月10日17:00前答复",
                                           "next_reply_at": iso("10-10 17:00")})
    yield d.at("10-10 11:00")
    d.act(c, "department_done", "zheng_bo", {"department_result": "已更换12盏LED灯"})
    yield d.at("10-10 15:00")
    d.act(c, "reply", "zhao_lei", {"reply_method": "letter", "reply_summary": "B1层照明已全部修复"})
    yield d.at("10-10 15:30")
    done = d.act(c, "resolve", "zhao_lei", {"handling_result": "车库照明恢复"})
    yield from callback(d, done.children[0], "10-13 10:00")


@story
def hallway_clutter_replied_late(d: Demo) -> Story:
    """CMP-3, CMP-7: a phone complaint the afternoon before National Day, replied after the deadline."""
    yield d.at("09-30 16:30")
    call = yield from live_call(d, "liu_fang", "7-1501", "11楼楼道堆放杂物，有消防隐患", "complaint")
    c = call.children[0]
    yield d.at("09-30 16:50")
    d.act(c, "report_important", "sun_yan")
    d.note(f"电话投诉 #{c}：7-1501 楼道杂物（消防隐患）→ 孙燕，重大事件即时报告管理处主任；答复时限跨国庆，10-09 16:33 到期")
    yield d.at("10-09 14:00")
    d.act(c, "investigate", "sun_yan")
    d.act(c, "record_findings", "sun_yan", {"findings": "11楼楼道堆放纸箱及旧家具", "cause": "1102住户搬家遗留",
                                            "responsibility": "third_party"})
    d.act(c, "dispatch", "sun_yan", {"department": "security", "limit_at": iso("10-10 12:00"),
                                     "instructions": "通知1102清理，逾期由保安清运"})
    yield d.at("10-10 10:00")
    d.act(c, "department_done", "xu_bin", {"department_result": "已清理楼道杂物"})
    yield d.at("10-10 10:30")
    d.act(c, "reply", "sun_yan", {"reply_method": "phone", "reply_summary": "楼道杂物已清理"})
    d.note(f"投诉 #{c} 10-10 10:30 才答复业主：超过答复时限（breached），主管已收到超时通知")
    yield d.at("10-10 11:00")
    done = d.act(c, "resolve", "sun_yan", {"handling_result": "楼道已清理，已提醒1102住户"})
    yield from callback(d, done.children[0], "10-13 15:00")


@story
def lift_breakdowns_needing_a_decision(d: Demo) -> Story:
    """CMP-4, CMP-8: an interim reply, a promise the supervisor must approve, and a reply past the promised time."""
    yield d.at("10-09 09:30")
    c = d.start("complaint", "zhou_min", {**owner("6-0303"), "channel": "visit",
                                          "content": "6栋电梯一周内两次困人"}).id
    d.note(f"来访投诉 #{c}：6-0303 褚华 电梯一周两次困人 → 赵磊")
    yield d.at("10-09 10:00")
    d.act(c, "investigate", "zhao_lei")
    yield d.at("10-09 16:30")
    d.act(c, "interim_reply", "zhao_lei", {"interim_message": "已通知电梯维保单位检测，明天17:00前答复",
                                           "next_reply_at": iso("10-10 17:00")})
    yield d.at("10-10 10:00")
    d.act(c, "record_findings", "zhao_lei", {"findings": "控制板老化导致平层故障", "cause": "控制板老化",
                                             "responsibility": "third_party"})
    yield d.at("10-10 14:00")
    d.act(c, "request_decision", "zhao_lei", {"proposed_commitment": "10月底前更换控制板，并减免业主当月电梯费"})
    yield d.at("10-11 09:30")
    d.act(c, "decide_commitment", "li_qiang", {"superior_decision": "approved", "decision_note": "同意"})
    yield d.at("10-11 10:00")
    d.act(c, "reply", "zhao_lei", {"reply_method": "visit", "reply_summary": "维保单位10月底前更换控制板",
                                   "commitment": "10月底前更换控制板，减免当月电梯费"})
    d.note(f"投诉 #{c}：超出权限的承诺经主管批准后才答复（CMP-8），但已过阶段性答复承诺的 10-10 17:00（breached）")
    yield d.at("10-13 10:00")
    d.act(c, "resolve", "zhao_lei", {"handling_result": "维保单位已订购控制板"})


@story
def noise_by_anonymous_letter(d: Demo) -> Story:
    """CMP-12: an anonymous letter goes to the supervisor; no callback, the result is recorded."""
    yield d.at("09-23 09:30")
    c = d.start("complaint", "zhou_min", {"channel": "letter", "content": "2栋有住户中午12点多还在电钻装修，影响休息",
                                          "anonymous": True}).id
    d.note(f"匿名信函投诉 #{c}：2栋午间装修噪音 → 客服主管队列（无回访）")
    yield d.at("09-23 10:00")
    d.claim(c, "li_qiang")
    d.act(c, "investigate", "li_qiang")
    yield d.at("09-23 16:00")
    d.act(c, "reply", "li_qiang", {"reply_method": "letter", "reply_summary": "已在2栋大堂张贴装修施工时间规定"})
    yield d.at("09-24 17:00")
    d.act(c, "resolve", "li_qiang", {"handling_result": "2-1101装修户午间施工已制止并说服教育"})
    yield d.at("09-26 10:00")
    d.act(c, "check_effect", "li_qiang", {"effective": True})


@story
def leak_again_after_the_holiday(d: Demo) -> Story:
    """CMP-10: the same owner complains again: high priority, reported, back to the first receiver."""
    yield d.at("10-09 09:20")
    c = d.start("complaint", "liu_fang", {**owner("3-1201"), "channel": "phone", "content": "卫生间天花板又渗水",
                                          "repeat_of": d.ids["complaint_leak"], "first_receiver": "chen_jing"}).id
    d.note(f"重复投诉 #{c}：3-1201 天花板再次渗水 → 优先级高，报主管，由首次接待的陈静负责（CMP-10）")
    yield d.at("10-09 10:00")
    d.act(c, "investigate", "chen_jing")
    yield d.at("10-09 10:30")
    d.act(c, "dispatch", "chen_jing", {"department": "engineering", "limit_at": iso("10-09 17:00"),
                                       "instructions": "查明渗水原因"})
    yield d.at("10-09 16:00")
    d.act(c, "department_done", "wu_gang", {"department_result": "4-1301防水层修补处再次开裂，10月10日整体重做"})
    yield d.at("10-09 17:00")
    d.act(c, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "楼上卫生间防水10月10日整体重做"})
    yield d.at("10-13 10:00")
    d.act(c, "resolve", "chen_jing", {"handling_result": "楼上防水整体重做，闭水试验合格"})


@story
def music_on_the_square_still_open(d: Demo) -> Story:
    """CMP-3: a complaint of the last afternoon, still within its reply time when the month ends."""
    yield d.at("10-15 16:10")
    call = yield from live_call(d, "zhou_min", "3-0502", "晚上广场舞音响太吵", "complaint", answer_after=6)
    yield d.at("10-15 16:40")
    d.act(call.children[0], "investigate", "chen_jing")


# ======================================================================== repairs (REP)

@story
def kitchen_tap(d: Demo) -> Story:
    """REP-1, 2, 4 and CBK-3, 6: a repair by phone, fixed the same morning; the callback is redone."""
    yield d.at("09-15 10:12")
    call = yield from live_call(d, "liu_fang", "1-0101", "厨房水龙头漏水", "repair")
    r = d.ids["repair_tap"] = call.children[0]
    d.note(f"电话报修 #{r}：1-0101 厨房水龙头漏水，刘芳受理并派工程部")
    yield d.at("09-15 10:20")
    d.act(r, "dispatch", "liu_fang")
    yield d.at("09-15 10:40")
    yield from repair_done(d, r, "wu_gang", "更换厨房水龙头阀芯")
    yield d.at("09-15 14:00")
    done = d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})
    cb = done.children[0]
    yield d.at("09-17 10:00")
    d.act(cb, "record_callback", "li_qiang", {"method": "phone", "satisfaction": "satisfied", "callback_notes": "已回访"})
    d.act(cb, "redo", "li_qiang")
    d.note(f"回访 #{cb} 记录过于简单，主管退回重新回访（CBK-3）")
    yield from callback(d, cb, "09-17 15:00", notes="水龙头使用正常，维修人员守时，业主满意")


@story
def paid_cistern_repair(d: Demo) -> Story:
    """REP-3: a paid repair: engineering sets the fee, the director approves, the owner signs the slip."""
    yield d.at("09-17 09:40")
    r = d.start("repair", "zhou_min", {**owner("8-0201"), "channel": "visit", "content": "卫生间马桶水箱进水阀损坏"}).id
    d.act(r, "dispatch", "zhou_min")
    yield d.at("09-17 10:30")
    d.claim(r, "zheng_bo")
    d.act(r, "confirm_on_site", "zheng_bo", {"site_findings": "进水阀老化损坏，需更换", "needs_fee": True})
    yield d.at("09-17 10:40")
    d.act(r, "set_fee", "zheng_bo", {"fee_amount": "95.00", "fee_basis": "进水阀 60 元，人工 35 元"})
    yield d.at("09-17 11:20")
    d.act(r, "approve_fee", "zhang_hua", {"fee_decision_note": "同意"})
    yield d.at("09-17 14:00")
    d.act(r, "finish_repair", "zheng_bo", {
        "repair_items": "更换马桶水箱进水阀", "work_started_at": iso("09-17 13:30"), "work_finished_at": iso("09-17 14:00"),
        "materials": "进水阀 1 个", "material_cost": "60.00", "labour_cost": "35.00",
        "owner_signature": "sig:8-0201-20250917"})
    d.notice(r, "repair_slip")
    d.note(f"有偿维修 #{r}：8-0201 费用 95 元经管理处主任审批，业主签字维修单（REP-3），打印维修单")
    yield d.at("09-17 15:00")
    done = d.act(r, "inform_owner", "zhou_min", {"inform_method": "visit", "fee_settlement": "monthly_bill"})
    yield from callback(d, done.children[0], "09-19 11:00")


@story
def balcony_rack_out_of_list(d: Demo) -> Story:
    """REP-2: a request outside the repair-items list is reviewed and declined."""
    yield d.at("09-24 14:00")
    r = d.start("repair", "liu_fang", {**owner("2-0801"), "channel": "phone", "content": "阳台加装升降晾衣架",
                                       "in_service_list": False}).id
    d.act(r, "refer_for_review", "liu_fang")
    yield d.at("09-25 10:00")
    d.act(r, "decline_out_of_list", "feng_tao", {"review_opinion": "属业主自行加装项目，不在维修服务范围"})
    yield d.at("09-25 10:30")
    d.act(r, "inform_declined", "liu_fang", {"inform_method": "phone", "inform_note": "已推荐有资质的安装单位"})


@story
def light_over_the_holiday(d: Demo) -> Story:
    """REP-4: reported before the holiday, chased by the front desk, repaired on the first workday after it."""
    yield d.at("09-30 17:40")
    call = yield from live_call(d, "liu_fang", "4-0301", "客厅吊灯不亮", "repair")
    r = call.children[0]
    yield d.at("09-30 17:45")
    d.act(r, "dispatch", "liu_fang")
    yield d.at("10-09 09:00")
    d.act(r, "follow_up", "liu_fang", {"follow_up_note": "业主节后来电催问，请今日上门"})
    yield d.at("10-09 09:30")
    yield from repair_done(d, r, "wu_gang", "更换客厅吊灯镇流器")
    yield d.at("10-09 11:00")
    done = d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})
    d.note(f"报修 #{r}：09-30 17:40 报修，节后首日跟进催办并修复（REP-4）")
    yield from callback(d, done.children[0], "10-10 16:00")


@story
def tap_again(d: Demo) -> Story:
    """REP-5: the same fault again: the first receiver follows it."""
    yield d.at("10-10 09:00")
    r = d.start("repair", "zhou_min", {**owner("1-0101"), "channel": "phone", "content": "厨房水龙头又漏水",
                                       "repeat_of": d.ids["repair_tap"], "first_receiver": "liu_fang"}).id
    d.act(r, "dispatch", "liu_fang")
    d.note(f"重复报修 #{r}：1-0101 水龙头又漏水，由首次受理人刘芳跟进（REP-5）")
    yield d.at("10-10 10:00")
    yield from repair_done(d, r, "zheng_bo", "更换整个厨房水龙头")
    yield d.at("10-10 14:00")
    d.act(r, "inform_owner", "liu_fang", {"inform_method": "phone"})


@story
def door_lock_still_open(d: Demo) -> Story:
    """REP-1: a request on the last afternoon, still with engineering when the month ends."""
    yield d.at("10-15 15:00")
    r = d.start("repair", "zhou_min", {**owner("5-0302"), "channel": "visit", "content": "入户门锁开启不灵"}).id
    d.act(r, "dispatch", "zhou_min")


# ======================================================================== move-in (MOV)

@story
def move_in_with_defects(d: Demo) -> Story:
    """MOV-1..4: a move-in in order, two defects to the developer, one overdue, rejected, then accepted."""
    yield d.at("09-16 09:00")
    m = d.start("move_in", "liu_fang", {**owner("5-0302"), "appointment_at": iso("09-16 09:00")}).id
    d.act(m, "verify_identity", "zhao_lei", {"id_type": "id_card", "purchase_contract_checked": True,
                                             "identity_verified": True})
    yield d.at("09-16 09:25")
    d.act(m, "collect_fees", "lin_cai", {"fees_amount": "3580.00", "receipt_no": "SF20250916001", "paid_by": "wechat"})
    yield d.at("09-16 09:40")
    d.act(m, "sign_agreements", "zhao_lei", {"documents_issued": True, "forms_completed": True,
                                             "agreements_signed": True, "owner_signature": "sig:5-0302-20250916"})
    d.act(m, "hand_over_keys", "zhao_lei", {"key_count": 3, "key_receipt_signature": "sig:5-0302-keys"})
    yield d.at("09-16 10:30")
    wall = d.act(m, "record_defect", "zhao_lei", {"defect_location": "主卧", "defect_description": "墙面空鼓"}).children[-1]
    yield d.at("09-16 10:45")
    drain = d.act(m, "record_defect", "zhao_lei", {"defect_location": "卫生间", "defect_description": "地漏反水"}).children[-1]
    yield d.at("09-16 11:00")
    d.act(m, "finish_inspection", "zhao_lei", {"inspection_record": "doc:yf-5-0302", "inspection_signature": "sig:何晓明"})
    d.note(f"入住 #{m}：5-0302 何晓明 核验身份→收费→签约→交钥匙→验房，遗留问题 #{wall} 墙面空鼓、#{drain} 地漏反水")
    yield d.at("09-16 14:00")
    d.act(wall, "pass_to_developer", "zhao_lei", {"developer_contact": "开发商 赵工", "rectify_by": iso("09-23 18:00")})
    d.act(drain, "pass_to_developer", "zhao_lei", {"developer_contact": "开发商 赵工", "rectify_by": iso("09-26 18:00")})
    yield d.at("09-18 10:00")
    d.act(m, "record_utilities", "zhao_lei", {"utilities": {
        "water": {"result": "pass"}, "power": {"result": "pass"}, "gas": {"result": "fail", "note": "燃气公司预约10月9日"},
        "telephone": {"result": "pass"}, "tv": {"result": "pass"}}})
    yield d.at("09-22 10:00")
    d.act(wall, "report_rectified", "wu_gang", {"rectification_note": "已铲除空鼓部位重新抹灰"})
    yield d.at("09-22 15:00")
    d.act(wall, "accept", "zhao_lei", {"accepted_by": "owner", "acceptance_signature": "sig:何晓明"})
    d.act(m, "defect_closed", "zhao_lei", {"defect_instance": wall})
    yield d.at("09-29 10:00")
    d.act(drain, "report_rectified", "wu_gang", {"rectification_note": "已调整地漏坡度"})
    yield d.at("09-29 15:00")
    d.act(drain, "reject", "zhao_lei", {"rejection_reason": "闭水试验仍反水", "rectify_by": iso("10-13 18:00")})
    d.note(f"遗留问题 #{drain} 逾期整改（09-26 18:00 已催办），复验不合格退回，新期限 10-13")
    yield d.at("10-11 10:00")
    d.act(drain, "report_rectified", "wu_gang", {"rectification_note": "重做卫生间地面找坡"})
    yield d.at("10-13 10:00")
    d.act(drain, "accept", "zhao_lei", {"accepted_by": "owner", "acceptance_signature": "sig:何晓明"})
    d.act(m, "defect_closed", "zhao_lei", {"defect_instance": drain})
    yield d.at("10-13 11:00")
    d.act(m, "complete", "zhao_lei")
    d.note(f"入住 #{m} 两项遗留问题均验收消项，入住手续完成（MOV-2）")


# ======================================================================== renovation (REN)

RENOVATION_ITEMS = ("structure_intact", "use_unchanged", "waterproofing_intact", "floor_load_ok", "light_partitions",
                    "public_areas_free", "ac_units_placed", "no_awnings", "fireproof_materials", "facade_unchanged")


def plan_checks(failed: str = "", note: str = "") -> dict[str, Any]:
    return {k: ({"result": "fail", "note": note} if k == failed else {"result": "pass"}) for k in RENOVATION_ITEMS}


@story
def renovation_2_1101(d: Demo) -> Story:
    """REN-1..3, 5..7: a renovation: plan returned once, a noise violation escalated, accepted and archived."""
    yield d.at("09-15 09:30")
    r = d.ids["renovation"] = d.start("renovation", "liu_fang", {
        **owner("2-1101"), "plan_summary": "厨卫翻新、客厅吊顶、阳台封窗", "plan_drawings": "doc:plan-2-1101",
        "planned_start": "2025-09-18", "planned_end": "2025-10-13"}).id
    d.act(r, "explain_rules", "wang_li", {"rules_explained": True, "noise_hours_explained": True,
                                          "owner_acknowledgement": "sig:赵雪"})
    yield d.at("09-15 14:00")
    d.act(r, "return_plan", "wang_li", {"plan_checks": plan_checks("no_awnings", "阳台外拟搭雨篷"),
                                        "return_reasons": "阳台外不得搭建雨篷，请修改方案"})
    d.note(f"装修 #{r}：2-1101 方案审核不通过（阳台雨篷），退回修改（REN-2）")
    yield d.at("09-16 10:00")
    d.act(r, "resubmit_plan", "liu_fang", {"plan_drawings": "doc:plan-2-1101-v2", "revision_note": "取消阳台雨篷"})
    yield d.at("09-16 15:00")
    d.act(r, "approve_plan", "wang_li", {"plan_checks": plan_checks()})
    yield d.at("09-17 10:00")
    d.act(r, "review_contractor", "wang_li", {
        "contractor_name": "美家装饰", "contractor_licence": "doc:licence-meijia",
        "contractor_qualification": "doc:q-meijia",
        "site_manager": "刘工", "site_manager_phone": "13700000000", "documents_complete": True})
    d.act(r, "sign_agreement", "wang_li", {"agreement_ref": "doc:zx-2-1101", "owner_signature": "sig:赵雪",
                                           "contractor_signature": "sig:美家装饰", "deposit": "2000.00"})
    yield d.at("09-18 08:30")
    d.act(r, "issue_passes", "xu_bin", {"worker_count": 4, "worker_register": "doc:workers-2-1101",
                                        "pass_numbers": "ZX-201..ZX-204", "passes_valid_until": "2025-10-31"})
    d.act(r, "register_tools", "xu_bin", {"tools": "电锤2台、切割机1台", "tools_carrier": "刘工"})
    yield d.at("09-23 12:35")
    d.act(r, "record_violation", "xu_bin", {"violation_kind": "noise", "violation_description": "午休时间电锤施工",
                                            "noise_heard_at": iso("09-23 12:30"), "work_stopped_on_site": True})
    d.note(f"装修 #{r}：保安巡逻发现午休时间电锤施工，当场制止（REN-5/6）→ 说服教育 → 经济措施 → 整改复工")
    yield d.at("09-23 14:30")
    d.act(r, "persuade", "wang_li", {"measure_details": "向业主和施工负责人说明噪音施工时段", "owner_response": "表示配合"})
    yield d.at("09-24 10:00")
    d.act(r, "economic_measure", "li_qiang", {"measure_details": "按装修协议扣违约金200元", "owner_response": "接受"})
    yield d.at("09-24 16:00")
    d.act(r, "violation_corrected", "wang_li", {"correction_verified": True, "correction_note": "复查无噪音施工"})
    yield d.at("10-13 10:00")
    d.act(r, "request_acceptance", "liu_fang", {"completed_on": "2025-10-13"})
    yield d.at("10-14 10:00")
    d.act(r, "accept_works", "wang_li", {"acceptance_passed": True, "acceptance_record": "doc:ys-2-1101",
                                         "tools_removed": True, "deposit_refund": "1800.00",
                                         "inspector_signature": "sig:王丽"})
    yield d.at("10-15 10:00")
    d.act(r, "archive", "wang_li", {"file_no": "ZX-2025-031", "application_filed": True, "agreement_filed": True,
                                    "approvals_filed": True, "inspection_records_filed": True})
    d.note(f"装修 #{r} 竣工验收合格，退押金1800元，装修档案归档（REN-7）")


@story
def renovation_patrols(d: Demo) -> Story:
    """REN-4: the steward patrols twice a workday (once on 09-25, not at all on 09-30), the team on Tue and Thu."""
    r = None
    for day in d.days("09-19", "10-11", workdays=True):
        rounds = {"09-25": ["10:00"], "09-30": []}.get(f"{day:%m-%d}", ["10:00", "15:30"])
        for hm in sorted(rounds + (["14:00"] if day.weekday() in (1, 3) else [])):
            yield d.on(day, hm)
            r = d.ids["renovation"]
            if hm == "14:00":
                d.act(r, "team_patrol", "xu_bin", {"patrol_findings": "检查队巡查：施工正常，消防器材到位"})
            else:
                d.act(r, "steward_patrol", "wang_li", {"patrol_findings": "正常施工"})
    d.note("装修巡查：09-25、09-30 管家巡查少于两次，每日18:00检查记为不足并通知主管；国庆假期不检查，10-11 调休照常（REN-4）")


@story
def renovation_team_patrol(d: Demo) -> Story:
    """REN-4: the inspection team (security, engineering, CS) patrols 2-1101 in parallel; one
    patrol is summed up, a later one still waits on engineering past its time limit."""
    yield d.at("09-23 09:00")
    p = d.start("renovation_team_patrol", "wang_li", {"unit": "2-1101", "renovation": d.ids["renovation"]}).id
    yield d.at("09-23 10:00")
    d.act(p, "security_report", "xu_bin", {"patrol_findings": "消防器材到位，通道畅通"})
    d.claim(p, "wu_gang")
    yield d.at("09-23 11:00")
    d.act(p, "engineering_report", "wu_gang", {"patrol_findings": "未改动承重墙，管线走向与方案一致"})
    yield d.at("09-23 11:30")
    d.act(p, "cs_report", "wang_li", {"patrol_findings": "建筑垃圾已装袋，按时清运"})
    yield d.at("09-23 15:00")
    d.act(p, "close", "li_qiang")
    yield d.at("10-09 09:00")
    late = d.start("renovation_team_patrol", "wang_li", {"unit": "2-1101", "renovation": d.ids["renovation"]}).id
    yield d.at("10-09 09:40")
    d.act(late, "security_report", "xu_bin", {"patrol_findings": "施工正常"})
    d.act(late, "cs_report", "wang_li", {"patrol_findings": "施工正常"})
    d.note(f"装修检查队联合巡查 #{p}：保安、工程、客服同时巡查，三方提交后主管汇总；#{late} 工程部超时未提交（REN-4）")


# ======================================================================== meetings (MTG)

MEETING_ROOM_CHECK = {k: {"result": "pass"} for k in
                      ("seats", "name_cards", "banner", "av_equipment", "lights", "flowers", "tea", "hygiene", "exits")}
CLOSE_UP = {"guests_seen_off": True, "room_cleaned": True, "lights_off": True, "sound_off": True, "ac_off": True,
            "doors_windows_closed": True}


def meeting_runs(d: Demo, m: int, on_post: str, greet: str, start: str, end: str,
                 skip_tea: tuple[str, ...] = ()) -> Story:
    """MTG-2..5: on post, lights and greeting, tea two minutes after each 15-minute call, see-off and close-up."""
    yield d.at(on_post)
    d.act(m, "staff_on_post", "ma_li", {"staff_on_post": "马丽", "equipment_checked": True})
    yield d.at(greet)
    d.act(m, "greet", "ma_li", {"lights_on": True, "greeting_at_door": True})
    yield d.at(start)
    d.act(m, "start_meeting", "ma_li")
    tea, ends = d.later(minutes=17), d.at(end)
    while tea < ends:
        yield tea
        if f"{tea:%H:%M}" not in skip_tea:
            d.act(m, "refill_tea", "ma_li")
        tea += timedelta(minutes=15)
    yield ends
    d.act(m, "end_meeting", "ma_li")
    yield d.later(minutes=20)
    return d.act(m, "close_up", "ma_li", CLOSE_UP)


@story
def owners_committee_meeting(d: Demo) -> Story:
    """MTG-1..5: a small meeting, confirmed the workday before; one round of tea missed."""
    yield d.at("09-15 10:00")
    m = d.start("meeting", "ma_li", {"meeting_title": "业主委员会9月例会", "host_unit": "山水庭苑业主委员会",
                                     "organiser_contact": "13600000001", "room": "二楼会议室", "meeting_type": "small",
                                     "attendees": 9, "layout": "boardroom", "starts_at": iso("09-18 14:00"),
                                     "ends_at": iso("09-18 15:30")}).id
    yield d.at("09-17 14:10")
    d.act(m, "confirm", "ma_li", {"confirmed_with": "业委会秘书 刘女士", "arrangement_confirmed": True})
    done = yield from meeting_runs(d, m, "09-18 13:25", "09-18 13:44", "09-18 14:00", "09-18 15:35",
                                   skip_tea=("14:47",))
    d.note(f"会议 #{m} 业委会例会：提前30分钟到岗、15分钟开灯迎宾，续茶 {done.data['tea_refills']} 次、漏 1 次（MTG-4）")


@story
def safety_conference_after_the_holiday(d: Demo) -> Story:
    """MTG-1, 2: a large meeting on 10-09: confirmed, checked and sealed on 09-30 (the workday before);
    the staff come late on post."""
    yield d.at("09-26 11:00")
    m = d.start("meeting", "ma_li", {"meeting_title": "全区物业安全生产工作会议", "host_unit": "区住房和城乡建设局",
                                     "organiser_contact": "13600000002", "room": "一楼报告厅", "meeting_type": "large",
                                     "attendees": 120, "layout": "theatre", "starts_at": iso("10-09 09:30"),
                                     "ends_at": iso("10-09 11:00"), "banner_text": "全区物业安全生产工作会议"}).id
    yield d.at("09-30 10:00")
    d.act(m, "confirm", "ma_li", {"confirmed_with": "区住建局 王科长", "arrangement_confirmed": True})
    yield d.at("09-30 15:00")
    d.act(m, "check_and_seal", "ma_li", {"room_checks": MEETING_ROOM_CHECK, "room_sealed": True})
    d.note(f"会议 #{m}（10-09 大型会议）：前一工作日是 09-30，确认、全面检查、挂横幅并封闭会场（MTG-2）")
    yield from meeting_runs(d, m, "10-09 08:40", "10-09 09:14", "10-09 09:30", "10-09 11:05")
    d.note(f"会议 #{m}：会务人员 08:40 到岗，晚于提前1小时（08:30），记为未按时到岗并通知主管")


@story
def cancelled_and_upcoming_meetings(d: Demo) -> Story:
    """MTG-1: a training is cancelled; next week's meeting is registered and confirmed."""
    yield d.at("10-09 14:00")
    m = d.start("meeting", "li_qiang", {"meeting_title": "消防安全培训", "host_unit": "山水庭苑管理处",
                                        "organiser_contact": "13800000021", "room": "二楼会议室", "meeting_type": "small",
                                        "attendees": 30, "layout": "classroom", "starts_at": iso("10-14 14:00"),
                                        "ends_at": iso("10-14 16:00")}).id
    yield d.at("10-10 16:00")
    d.act(m, "cancel", "li_qiang", {"cancel_reason": "消防支队讲师临时有任务，改期"})
    yield d.at("10-13 09:30")
    nxt = d.start("meeting", "ma_li", {"meeting_title": "10月物业服务品质例会", "host_unit": "公司客服部",
                                       "organiser_contact": "13800000041", "room": "二楼会议室", "meeting_type": "small",
                                       "attendees": 15, "layout": "u_shape", "starts_at": iso("10-16 09:30"),
                                       "ends_at": iso("10-16 11:00")}).id
    yield d.at("10-15 09:40")
    d.act(nxt, "confirm", "ma_li", {"confirmed_with": "客服部 黄敏", "arrangement_confirmed": True})


# ======================================================================== archive loans (ARC)

def loan(d: Demo, document_no: str, title: str, grade: str, borrower: str, borrower_department: str, purpose: str,
         due: str, **more: Any) -> int:
    return d.start("archive_loan", "gao_ya", {
        "document_no": document_no, "document_title": title, "grade": grade, "borrower_kind": "staff",
        "borrower_name": borrower, "borrower_department": borrower_department, "purpose": purpose,
        "due_at": iso(due), **more}).id


@story
def drawings_returned_late(d: Demo) -> Story:
    """ARC-1..3: engineering drawings (grade C) approved by the engineering head, overdue and chased."""
    yield d.at("09-16 11:00")
    a = loan(d, "GC-TZ-0312", "3号楼给排水竣工图", "C", "郑波", "工程部", "排查3-1201渗水", "09-19 17:00",
             department="engineering")
    yield d.at("09-16 11:20")
    d.act(a, "approve_grade_c_engineering", "feng_tao")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("09-22 10:30")
    d.act(a, "chase", "gao_ya", {"chase_method": "phone", "chase_note": "郑波答应明早归还"})
    yield d.at("09-23 09:40")
    d.act(a, "return_intact", "gao_ya", {"checked_complete": True})
    d.note(f"档案借阅 #{a}：竣工图 09-19 到期未还，09-22 每日催还提醒后催还，09-23 归还完好（ARC-3）")


@story
def police_borrow_an_owner_file(d: Demo) -> Story:
    """ARC-4: the police, with verified credentials and the general manager's consent."""
    yield d.at("09-24 15:00")
    a = d.start("archive_loan", "gao_ya", {
        "document_no": "YZ-6-0601", "document_title": "6-0601业主档案", "grade": "B", "borrower_kind": "external",
        "borrower_name": "王警官", "external_body": "police", "credentials": "doc:police-2025-0924",
        "purpose": "案件调查", "due_at": iso("09-26 17:00")}).id
    yield d.at("09-24 15:20")
    d.act(a, "verify_credentials", "zhang_hua", {"credentials_verified": True, "verification_note": "警官证及介绍信已核验登记"})
    yield d.at("09-24 16:00")
    d.act(a, "approve_grade_a", "qian_guo")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("09-26 11:00")
    d.act(a, "return_intact", "gao_ya", {"checked_complete": True})
    d.note(f"档案借阅 #{a}：公安机关借阅业主档案，办公室主任核验证件、总经理同意后借出（ARC-4）")


@story
def financial_statements_damaged(d: Demo) -> Story:
    """ARC-1, 2: grade A approved by the general manager; returned damaged, responsibility decided."""
    yield d.at("09-25 09:30")
    a = loan(d, "CW-2025-H1", "2025年上半年财务报表", "A", "林彩", "财务部", "年度审计准备", "10-10 17:00")
    yield d.at("09-25 11:00")
    d.act(a, "approve_grade_a", "qian_guo")
    yield d.at("09-25 14:00")
    d.act(a, "lend", "gao_ya", {"condition_at_lending": "intact"})
    yield d.at("10-10 16:00")
    d.act(a, "return_damaged", "gao_ya", {"damage_description": "第12页被茶水污染", "borrower_explanation": "加班时茶杯打翻"})
    yield d.at("10-11 10:00")
    d.act(a, "decide_responsibility", "zhang_hua", {"human_cause": True, "responsibility_decision": "借阅人负责复印补档，通报批评"})


@story
def loans_refused_and_still_out(d: Demo) -> Story:
    """ARC-2: a grade-C request refused by its department head; another still on loan at month end."""
    yield d.at("10-09 10:00")
    a = loan(d, "KF-NY-2024-07", "2024年投诉台账", "C", "周敏", "客服部", "整理投诉案例", "10-16 17:00",
             department="customer_service")
    yield d.at("10-09 11:00")
    d.act(a, "reject", "li_qiang", {"rejection_reason": "涉及业主个人信息，请使用脱敏汇总表"})
    yield d.at("10-13 10:00")
    b = loan(d, "GC-TZ-0508", "5号楼电气竣工图", "C", "吴刚", "工程部", "5号楼配电箱改造", "10-20 17:00",
             department="engineering")
    yield d.at("10-13 10:30")
    d.act(b, "approve_grade_c_engineering", "feng_tao")
    d.act(b, "lend", "gao_ya", {"condition_at_lending": "intact"})


# ======================================================================== fee cycle (FEE) and dunning (DUN)

# unit, management fee (by contract), water (t, by the month-end reading), payment method
HOUSEHOLDS = [
    ("1-0101", "280.00", 10, "bank_debit"), ("1-1202", "336.00", 14, "cash"), ("2-0502", "252.00", 8, "bank_debit"),
    ("2-0801", "364.00", 12, "cash"), ("3-0502", "308.00", 11, "bank_debit"), ("4-0301", "280.00", 9, "cash"),
    ("4-1002", "392.00", 16, "cash"), ("5-0602", "336.00", 6, "bank_debit"), ("5-1101", "280.00", 10, "cash"),
    ("6-0303", "308.00", 13, "cash"), ("6-1102", "364.00", 15, "bank_debit"), ("7-1501", "420.00", 18, "cash"),
    ("8-0201", "252.00", 7, "bank_debit"), ("8-0902", "308.00", 12, "cash"),
]
PAID_FIRST = {"1-0101", "2-0502", "8-0201"}     # the bank collected them on the 10th
PAID_SECOND = {"6-1102"}                        # … after the 20th


def charges(unit: str, fee: str, water: int, method: str) -> dict[str, Any]:
    data = {**owner(unit), "period": "2025-09", "management_fee": fee, "water_usage": water,
            "water_unit_price": "3.50", "service_fees": "0", "other_fees": "0", "payment_method": method}
    if unit == "8-0201":                        # a paid repair of August, on the owner-signed slip
        data.update(service_fees="110.00", service_slip_refs="维修单 2025-08-0117")
    if method != "bank_debit":
        data["due_date"] = "2025-09-20"
    return data


def collection(d: Demo, fid: int, n: int, paid: bool) -> dict[str, Any]:
    if not paid:
        return {"collected_amount": "0", "collection_note": "账户余额不足，托收失败"}
    return {"collected_amount": d.show(fid).data["remaining"], "bank_reference": f"TS{d.now:%Y%m%d}{n:03d}",
            "receipt_no": f"PJ{d.now:%Y%m%d}{n:03d}"}


def handed_to_dunning(d: Demo) -> list[str]:
    """Register the dunning cases the cycles spawned (``dun:<unit>``); the units newly handed over."""
    new = []
    for unit, *_ in HOUSEHOLDS:
        fee = d.show(d.ids[f"fee:{unit}"])
        if fee.children and f"dun:{unit}" not in d.ids:
            d.ids[f"dun:{unit}"] = fee.children[0]
            new.append(unit)
    return new


@story
def september_fee_cycle(d: Demo) -> Story:
    """FEE-1..5, DUN-11: 14 households: charges on the 1st, notices on the 5th, bank collections on the 10th
    and after the 20th, the cycle closes on the 30th and hands what is unpaid to dunning."""
    yield d.at("09-01 09:00")
    for unit, fee, water, method in HOUSEHOLDS:
        d.ids[f"fee:{unit}"] = d.start("fee_cycle", "lin_cai", charges(unit, fee, water, method)).id
    d.note(f"9月收费周期开账：{len(HOUSEHOLDS)} 户按合同、月底抄表、签字单据核算（FEE-1）")
    yield d.at("09-05 15:00")
    for unit, *_ in HOUSEHOLDS:
        d.act(d.ids[f"fee:{unit}"], "deliver_notice", "xu_bin", {"delivered_via": "patrol"})
    d.notice(d.ids["fee:3-0502"], "fee_notice")
    d.note("5日护管队送达收费通知单（FEE-2），集中缴费一周开始（DUN-1）；7日托收户短信提醒（DUN-11）")
    yield d.at("09-10 16:00")
    bank = [u for u, *_, method in HOUSEHOLDS if method == "bank_debit"]
    for n, unit in enumerate(bank, 1):
        d.act(d.ids[f"fee:{unit}"], "first_bank_collection", "lin_cai", collection(d, d.ids[f"fee:{unit}"], n,
                                                                                  unit in PAID_FIRST))
    d.note(f"10日第一次银行托收：{len(PAID_FIRST)}/{len(bank)} 户成功，失败清单交主任助理（FEE-3）")
    yield d.at("09-11 10:00")
    for unit in bank:
        if unit not in PAID_FIRST:
            d.act(d.ids[f"fee:{unit}"], "contact_unpaid", "zhang_hua", {
                "fee_contact_means": "phone", "fee_contact_result": "已提醒业主存足余额，20日后第二次托收"})
    yield d.at("09-22 10:00")
    for n, unit in enumerate(bank, 1):
        if unit not in PAID_FIRST:
            d.act(d.ids[f"fee:{unit}"], "second_bank_collection", "lin_cai",
                  collection(d, d.ids[f"fee:{unit}"], n, unit in PAID_SECOND))
    d.note(f"22日第二次银行托收，仍未缴清转入催缴：{'、'.join(handed_to_dunning(d))}（FEE-4/5）")
    yield d.at("10-01 09:00")
    d.note(f"09-30 18:00 收费周期结束（定时任务），未缴户转入催缴：{'、'.join(handed_to_dunning(d))}（FEE-5）")


def call(reached: str, result: str, means: str = "phone", **more: Any) -> dict[str, Any]:
    return {"contact_means": means, "owner_reached": reached, "contact_result": result, **more}


@story
def dunning_3_0502_b_then_a_then_paid(d: Demo) -> Story:
    """DUN-3..5, 12: first call after the deadline (the make-up Sunday counted), B with a door notice, A, paid."""
    yield d.at("09-29 09:30")
    c = d.ids["dun:3-0502"]
    d.act(c, "classify_b", "chen_jing", call("no_answer", "无人接听"))
    d.note(f"催缴 #{c} 3-0502：09-22 列入台账，首次电话应在5个工作日内（含09-28周日调休）即 09-28 18:00 前，09-29 才打——超时")
    yield d.at("09-30 10:30")
    d.act(c, "record_contact", "chen_jing", call("notice_only", "入户门张贴催费通知单", "door_notice"))
    d.notice(c, "door_notice")
    yield d.at("10-09 10:20")
    d.act(c, "classify_a", "chen_jing", call("reached", "业主节后回来，承诺10月13日转账", promised_date="2025-10-13",
                                             promise_kind="pay_by_date"))
    yield d.at("10-11 10:00")
    d.act(c, "record_contact", "chen_jing", call("reached", "承诺日前一工作日（10-11 周六调休）电话提醒"))


@story
def dunning_5_0602_away_pays_part(d: Demo) -> Story:
    """DUN-5 D, DUN-12: away in Shenzhen, guided to remote payment; a partial payment keeps the rest in dunning."""
    yield d.at("09-23 10:00")
    c = d.ids["dun:5-0602"]
    d.act(c, "classify_d", "zhao_lei", call("reached", "业主在深圳工作，年底回来", away_location="深圳"))
    yield d.at("09-25 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "已微信发送缴费二维码，引导转账", "wechat"))
    yield d.at("09-29 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "业主称10月中旬补缴余款"))
    yield d.at("10-10 10:30")
    d.act(c, "record_contact", "zhao_lei", call("no_answer", "无人接听"))


@story
def dunning_1_1202_promise_lapsed(d: Demo) -> Story:
    """DUN-5 A: a promise not kept sends the unit back to B; a new promise, kept at the front desk."""
    yield d.at("10-09 10:00")
    c = d.ids["dun:1-1202"]
    d.act(c, "classify_a", "wang_li", call("reached", "约定10月10日晚入户收取", promised_date="2025-10-10",
                                           promise_kind="collection_visit"))
    yield d.at("10-10 19:30")
    d.act(c, "record_contact", "wang_li", call("not_home", "按约定时间上门，家中无人", "visit"))
    yield d.at("10-11 10:30")
    d.act(c, "classify_a", "wang_li", call("reached", "业主致歉，承诺10月14日到前台缴费", promised_date="2025-10-14",
                                           promise_kind="pay_by_date"))
    d.note(f"催缴 #{c} 1-1202：A类承诺 10-10 未兑现，10-11 00:00 自动转B类；当天再次联系，重新承诺 10-14")
    yield d.at("10-14 10:00")
    d.act(c, "record_payment", "liu_fang", {"payment_amount": "385.00", "payment_channel": "front_desk",
                                            "payment_reference": "SJ20251014002"})
    d.note(f"催缴 #{c} 1-1202：业主到前台缴清 385.00 元，结案（DUN-12）")


@story
def dunning_2_0801_unreachable(d: Demo) -> Story:
    """DUN-5 C: an empty number: home visit, door notice, a new number from a neighbour."""
    yield d.at("10-09 10:40")
    c = d.ids["dun:2-0801"]
    d.act(c, "classify_c", "wang_li", call("empty_number", "空号"))
    yield d.at("10-09 15:00")
    d.act(c, "record_contact", "wang_li", call("not_home", "入户催缴，家中无人", "visit"))
    d.act(c, "record_contact", "wang_li", call("notice_only", "入户门张贴催费通知单", "door_notice"))
    yield d.at("10-10 11:00")
    d.act(c, "record_contact", "wang_li", call("not_home", "经邻居取得业主新号码", "visit", new_contact="13602020801"))


@story
def dunning_4_1002_promises(d: Demo) -> Story:
    """DUN-5 A: a near-term payer."""
    yield d.at("10-10 09:40")
    d.act(d.ids["dun:4-1002"], "classify_a", "chen_jing", call("reached", "业主承诺10月20日发工资后缴纳",
                                                               promised_date="2025-10-20", promise_kind="pay_by_date"))


@story
def dunning_6_0303_special(d: Demo) -> Story:
    """DUN-5 E: refuses over service (the lift complaint); the supervisor directs the measures."""
    yield d.at("10-09 11:00")
    c = d.ids["dun:6-0303"]
    d.act(c, "classify_e", "zhao_lei", call("reached", "电梯一周两次困人，问题不解决不交费", refusal_reason="service"))
    yield d.at("10-09 14:00")
    d.act(c, "direct_measures", "li_qiang", {"supervisor_measures": "先处理好电梯投诉并答复，再上门沟通缴费"})
    yield d.at("10-13 10:30")
    d.act(c, "record_contact", "zhao_lei", call("reached", "已告知控制板月底前更换，业主表示考虑", "visit"))


@story
def dunning_7_1501_daily_calls(d: Demo) -> Story:
    """DUN-5 B: phone off, called every workday, door notice."""
    yield d.at("10-09 09:40")
    c = d.ids["dun:7-1501"]
    d.act(c, "classify_b", "sun_yan", call("phone_off", "关机"))
    for when, reached, result in (("10-10 10:15", "no_answer", "无人接听"), ("10-11 10:15", "phone_off", "关机"),
                                  ("10-13 10:15", "reached", "业主称资金紧张，暂无法确定缴费时间"),
                                  ("10-14 10:15", "no_answer", "无人接听")):
        yield d.at(when)
        d.act(c, "record_contact", "sun_yan", call(reached, result))
    yield d.at("10-14 10:30")
    d.act(c, "record_contact", "sun_yan", call("notice_only", "入户门张贴催费通知单", "door_notice"))


@story
def dunning_8_0902_reassigned_and_late(d: Demo) -> Story:
    """DUN-2, DUN-3: the supervisor gives the unit to another steward; the first call comes a day late."""
    yield d.at("10-09 09:00")
    c = d.ids["dun:8-0902"]
    d.act(c, "assign_steward", "li_qiang", {"responsible_steward": "wang_li"})
    yield d.at("10-15 09:30")
    d.act(c, "classify_b", "wang_li", call("no_answer", "无人接听"))
    d.note(f"催缴 #{c} 8-0902：主管改派王丽；首次电话时限为 5 个工作日（节假日不计）即 10-14 18:00，10-15 才打——超时")


@story
def dunning_7_0802_lawyers_letter(d: Demo) -> Story:
    """DUN-5 E, DUN-7, DUN-8: June arrears carried over; refusing, senior visits in turn, a lawyer's letter, paid."""
    yield d.at("09-15 09:00")
    c = d.ids["dunning_letter"] = d.ids["dun:7-0802"] = d.start("dunning", "li_qiang", {
        **owner("7-0802"), "period": "2025-06", "amount_due": "1320.00", "notices_posted_at": iso("06-05 15:00")}).id
    d.note(f"催缴 #{c} 7-0802 韩磊：6月物业费 1320 元结转入本月台账 → 孙燕")
    yield d.at("09-15 10:30")
    d.act(c, "classify_e", "sun_yan", call("reached", "车位纠纷未解决，拒交物业费", refusal_reason="developer"))
    yield d.at("09-15 14:00")
    d.act(c, "direct_measures", "li_qiang", {"supervisor_measures": "向开发商了解车位纠纷进展，同时每日催缴"})
    yield d.at("09-16 10:30")
    d.act(c, "record_contact", "sun_yan", call("reached", "仍拒交"))
    yield d.at("09-17 10:30")
    d.act(c, "mark_refusing", "sun_yan", call("reached", "第三次拒交，表示等开发商答复"))
    yield d.at("09-18 10:20")
    d.act(c, "record_contact", "sun_yan", call("notice_only", "张贴催费通知单并拍照", "door_notice",
                                               notice_photo="photo://7-0802/20250918"))
    d.notice(c, "door_notice")
    yield d.at("09-18 11:00")
    d.act(c, "request_senior_visit", "sun_yan")
    for when, staff, action in (("09-18 15:00", "li_qiang", "supervisor_visit"),
                                ("09-19 15:00", "he_jun", "deputy_visit"),
                                ("09-22 16:00", "zhang_hua", "director_visit")):
        yield d.at(when)
        d.act(c, action, staff, call("reached", "上门沟通，仍拒交", "visit"))
    d.note(f"催缴 #{c}：拒缴户，客服主管、分管副经理、项目经理依次上门均未果（DUN-7）")
    yield d.at("09-23 09:30")
    d.act(c, "shortlist_letter", "li_qiang", {"shortlist_reason": "refusal", "shortlist_note": "欠费三个月，多次上门均拒交"})
    yield d.at("09-24 10:00")
    d.act(c, "review_letter", "huang_min", {"review_opinion": "材料齐全，同意"})
    yield d.at("09-25 09:30")
    d.act(c, "approve_letter", "qian_guo", {"approval_opinion": "同意发送律师函"})
    yield d.at("09-26 10:00")
    d.act(c, "send_letter", "li_qiang", {"law_firm": "广东某某律师事务所", "letter_ref": "doc:LF-2025-031",
                                         "letter_sent_via": "ems"})
    d.notice(c, "lawyer_letter")
    d.note(f"催缴 #{c}：律师函经客服部审核、总经理批准后以特快专递发出（DUN-8），打印律师函")


@story
def bank_statements(d: Demo) -> Story:
    """DUN-12: bank statements and front-desk exports (demo/bank/*.csv), imported as `sop import payments` does."""
    from adapters.payments import import_payments

    for when in ("09-09 17:30", "09-19 09:30", "09-26 17:00", "10-13 17:20"):
        yield d.at(when)
        path = DATA / "bank" / f"{d.now:%Y-%m-%d}.csv"
        result = import_payments(d.engine, path, "lin_cai")
        if result.errors:
            raise RuntimeError(f"{path}: {result.errors}")
        d.totals["payments"] += len(result.recorded)
        for r in result.recorded:
            rest = "缴清结案" if r["paid_in_full"] else f"部分缴费，尚欠 {r['remaining']} 元，继续催缴"
            unit = d.show(r["instance"]).data["unit"]
            d.note(f"银行对账单 {path.name}：{unit} {r['amount']} 元入 {r['procedure']} #{r['instance']}（{rest}）")


@story
def dunning_supervision(d: Demo) -> Story:
    """DUN-6: every workday at 17:40 the supervisor reviews the day's calls; Fridays at 16:30 the weekly summary."""
    def cases() -> list[int]:
        return [iid for key, iid in sorted(d.ids.items()) if key.startswith("dun:")]

    for day in d.days(workdays=True):
        if day.weekday() == 4:
            yield d.on(day, "16:30")
            for iid in cases():
                c = d.show(iid)
                if c.active and c.state != "collective_period":
                    d.act(iid, "weekly_summary", "li_qiang", {
                        "week_summary": f"累计催缴 {c.data['contact_count']} 次，{c.data.get('dunning_class') or '未分类'}类",
                        "next_week_plan": "按分类继续跟进"})
        yield d.on(day, "17:40")
        for iid in cases():
            c = d.show(iid)
            if c.active and str(c.data.get("last_contact_at", "")).startswith(day.isoformat()):
                d.act(iid, "supervisor_review", "li_qiang", {"review_note": "已审阅当日催缴记录"})
