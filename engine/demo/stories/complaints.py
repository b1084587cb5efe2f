"""Complaints (CMP) and their callbacks (CBK): visits, letters, interim replies, late replies."""
from __future__ import annotations


from engine.demo.player import Demo, Story
from engine.demo.stories.common import callback, iso, live_call, owner, story


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
