"""Meetings (MTG): the owners' committee, the safety conference, cancelled and upcoming ones."""
from __future__ import annotations

from datetime import timedelta

from engine.demo.player import Demo, Story
from engine.demo.stories.common import iso, story


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
