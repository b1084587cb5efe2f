"""MTG — meeting service (procedures/meeting.yaml), one scenario per rule, on the real calendar.

The meetings are on Thursday 9 October 2025, the first working day after National Day
(1-8 October off), so "the working day before" is Tuesday 30 September.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from engine.errors import ActionNotAllowed, FormInvalid
from engine.timeskip import skip_to
from tests._rules import clock_of, notices
from tests.conftest import SHANGHAI

SMALL = {"meeting_title": "季度工作例会", "host_unit": "区机关事务管理局", "organiser_contact": "13600000000",
         "room": "三楼第一会议室", "meeting_type": "small", "attendees": 12, "layout": "boardroom",
         "starts_at": "2025-10-09T09:30:00+08:00", "ends_at": "2025-10-09T11:00:00+08:00"}
LARGE = {**SMALL, "meeting_title": "全区安全生产大会", "room": "一楼报告厅", "meeting_type": "large", "attendees": 300,
         "layout": "theatre", "banner_text": "全区安全生产工作会议"}
CONFIRM = {"confirmed_with": "王科长", "arrangement_confirmed": True}
ON_POST = {"staff_on_post": "马丽", "equipment_checked": True}
GREET = {"lights_on": True, "greeting_at_door": True}
ROOM_OK = {"room_checks": {k: {"result": "pass"} for k in
                           ("seats", "name_cards", "banner", "av_equipment", "lights", "flowers", "tea", "hygiene",
                            "exits")}, "room_sealed": True}
CLOSE = {"guests_seen_off": True, "room_cleaned": True, "lights_off": True, "sound_off": True, "ac_off": True,
         "doors_windows_closed": True, "actual_attendees": 11}


def t(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _clock_before_the_scenarios(clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(t("2025-09-29", "08:00"))


def act(engine, iid: int, action: str, when: datetime, data=None, staff: str = "ma_li"):  # type: ignore[no-untyped-def]
    return engine.advance(iid, action, staff, data or {}, at=when)


def register(engine, data=SMALL):  # type: ignore[no-untyped-def]
    return engine.start("meeting", "ma_li", data, at=t("2025-09-29", "10:00"))


def ready(engine, data=SMALL):  # type: ignore[no-untyped-def]
    m = register(engine, data)
    act(engine, m.id, "confirm", t("2025-09-30", "10:00"), CONFIRM)
    if data["meeting_type"] != "small":
        act(engine, m.id, "check_and_seal", t("2025-09-30", "15:00"), ROOM_OK)
    act(engine, m.id, "staff_on_post", t("2025-10-09", "08:20"), ON_POST)
    act(engine, m.id, "greet", t("2025-10-09", "09:14"), GREET)
    return act(engine, m.id, "start_meeting", t("2025-10-09", "09:30"))


def test_mtg1_meeting_is_registered_and_confirmed_again_the_working_day_before(engine, clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormInvalid) as bad:
        engine.start("meeting", "ma_li", {k: v for k, v in SMALL.items() if k not in ("room", "layout")},
                     at=t("2025-09-29", "10:00"))
    assert {e.field for e in bad.value.errors} == {"room", "layout"}
    m = register(engine)
    assert m.state == "registered" and m.assignee_role == "meeting_staff"
    assert clock_of(engine, m.id, "confirm_day_before")["due"] == "2025-09-30T09:30:00+08:00"
    assert skip_to(engine, t("2025-09-30", "09:29")) == []
    fired = skip_to(engine, t("2025-09-30", "09:31"))
    assert "confirm_day_before" in [f.name for f in fired]
    sent = notices(engine, m.id)
    assert len(sent) == 1 and sent[0]["recipients"] == ["ma_li"] and "再次确认" in sent[0]["message"]
    with pytest.raises(ActionNotAllowed, match="MTG-1"):
        act(engine, m.id, "confirm", t("2025-09-30", "10:00"), {**CONFIRM, "arrangement_confirmed": False})
    confirmed = act(engine, m.id, "confirm", t("2025-09-30", "10:00"), CONFIRM)
    assert confirmed.state == "preparing" and confirmed.data["confirmed_at"] == "2025-09-30T10:00:00+08:00"
    late = register(engine)
    with pytest.raises(ActionNotAllowed, match="MTG-1"):
        act(engine, late.id, "confirm", t("2025-10-09", "09:40"), CONFIRM)   # the meeting has begun


def test_mtg2_staff_on_post_30_minutes_before_a_small_meeting_and_an_hour_before_a_large_one(engine, clock) -> None:  # type: ignore[no-untyped-def]
    small = register(engine)
    large = register(engine, LARGE)
    assert clock_of(engine, small.id, "post_small")["due"] == "2025-10-09T09:00:00+08:00"
    assert clock_of(engine, large.id, "post_large")["due"] == "2025-10-09T08:30:00+08:00"
    skip_to(engine, t("2025-09-30", "09:31"))
    assert any("横幅" in n["message"] for n in notices(engine, large.id))       # room check and banner the day before
    assert not any("横幅" in n["message"] for n in notices(engine, small.id))
    for m in (small, large):
        act(engine, m.id, "confirm", t("2025-09-30", "10:00"), CONFIRM)
    with pytest.raises(ActionNotAllowed, match="MTG-2"):
        act(engine, large.id, "staff_on_post", t("2025-09-30", "14:00"), ON_POST)   # not checked and sealed yet
    with pytest.raises(ActionNotAllowed, match="MTG-2"):
        act(engine, small.id, "check_and_seal", t("2025-09-30", "14:00"), ROOM_OK)  # only for large meetings
    sealed = act(engine, large.id, "check_and_seal", t("2025-09-30", "15:00"), ROOM_OK)
    assert sealed.data["sealed_at"] == "2025-09-30T15:00:00+08:00"
    on_time = act(engine, small.id, "staff_on_post", t("2025-10-09", "08:55"), ON_POST)
    assert on_time.data["post_late"] is False                        # 08:55 is within 30 minutes: fine
    late = act(engine, large.id, "staff_on_post", t("2025-10-09", "08:40"), ON_POST)
    assert late.data["post_late"] is True                            # due by 08:30 for a large meeting
    alert = [n for n in notices(engine, large.id) if "未按时到岗" in n["message"]]
    assert alert and alert[0]["recipients"] == ["li_qiang"]


def test_mtg3_lights_on_and_greeting_at_the_door_15_minutes_before(engine, clock) -> None:  # type: ignore[no-untyped-def]
    m = register(engine)
    act(engine, m.id, "confirm", t("2025-09-30", "10:00"), CONFIRM)
    act(engine, m.id, "staff_on_post", t("2025-10-09", "08:50"), ON_POST)
    assert clock_of(engine, m.id, "lights_and_greeting")["due"] == "2025-10-09T09:15:00+08:00"
    skip_to(engine, t("2025-10-09", "09:16"))
    data = engine.show(m.id).data
    assert data["greeting_late"] is True
    assert "打开 三楼第一会议室 灯光" in notices(engine, m.id)[-1]["message"]
    with pytest.raises(ActionNotAllowed, match="MTG-3"):
        act(engine, m.id, "greet", t("2025-10-09", "09:17"), {**GREET, "lights_on": False})
    greeted = act(engine, m.id, "greet", t("2025-10-09", "09:17"), GREET)
    assert greeted.state == "greeting" and greeted.data["greeted_at"] == "2025-10-09T09:17:00+08:00"
    prompt = register(engine)
    act(engine, prompt.id, "confirm", t("2025-09-30", "10:00"), CONFIRM)
    act(engine, prompt.id, "staff_on_post", t("2025-10-09", "08:50"), ON_POST)
    assert act(engine, prompt.id, "greet", t("2025-10-09", "09:14"), GREET).data["greeting_late"] is False


def test_mtg4_tea_is_refilled_every_15_minutes_during_the_meeting(engine, clock) -> None:  # type: ignore[no-untyped-def]
    m = ready(engine)
    assert m.state == "in_progress"
    assert clock_of(engine, m.id, "tea")["due"] == "2025-10-09T09:45:00+08:00"
    assert [f.name for f in skip_to(engine, t("2025-10-09", "09:45"))] == ["tea"]
    act(engine, m.id, "refill_tea", t("2025-10-09", "09:47"))
    skip_to(engine, t("2025-10-09", "10:00"))                   # round 1 was served
    skip_to(engine, t("2025-10-09", "10:15"))                   # round 2 was not
    data = engine.show(m.id).data
    assert (data["tea_rounds_due"], data["tea_refills"], data["tea_missed"]) == (3, 1, 1)
    calls = [n for n in notices(engine, m.id) if n["message"].startswith("三楼第一会议室 续茶")]
    assert len(calls) == 3 and calls[0]["recipients"] == ["ma_li"]
    act(engine, m.id, "end_meeting", t("2025-10-09", "10:20"))
    assert clock_of(engine, m.id, "tea")["status"] == "cancelled"    # no tea after the meeting
    assert skip_to(engine, t("2025-10-09", "11:00")) == []


def test_mtg5_guests_seen_off_room_cleaned_and_everything_switched_off(engine) -> None:  # type: ignore[no-untyped-def]
    m = ready(engine, LARGE)
    closing = act(engine, m.id, "end_meeting", t("2025-10-09", "11:05"))
    assert closing.state == "closing" and closing.data["meeting_ended_at"] == "2025-10-09T11:05:00+08:00"
    with pytest.raises(ActionNotAllowed, match="MTG-5"):
        act(engine, m.id, "close_up", t("2025-10-09", "11:30"), {**CLOSE, "ac_off": False})
    done = act(engine, m.id, "close_up", t("2025-10-09", "11:30"), CLOSE)
    assert done.state == "closed" and done.status == "completed"
    # what the monthly usage summary reads: room, type, attendance and the actual times
    assert {k: done.data[k] for k in ("room", "meeting_type", "actual_attendees", "meeting_started_at",
                                      "meeting_ended_at")} == {
        "room": "一楼报告厅", "meeting_type": "large", "actual_attendees": 11,
        "meeting_started_at": "2025-10-09T09:30:00+08:00", "meeting_ended_at": "2025-10-09T11:05:00+08:00"}
    assert engine.replay(m.id).ok
