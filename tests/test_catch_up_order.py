"""A backlog fires each clock step at its own due time, in order (issue 11).

When the sweep was down (a worker back after downtime, or one ``sop tick --until`` over a
month), every missed step of an instance fires, earliest first, each at the time it was
due, across its recurring and one-shot timers and its SLA clocks. Conditions such as
``date(now) < due_date`` are judged at the step's own time, and a recurring check is
judged for every day it missed, not once.
"""
from __future__ import annotations

from engine.timeskip import skip_to
from tests.case_helpers import clock, engine, events, local, notifications, t  # noqa: F401  (fixtures)
from tests.test_rules_dunning import open_case, reports
from tests.test_rules_renovation import PATROL, open_works
from tests.test_rules_renovation import t as day_at


def test_dun10_february_ladder_in_one_tick_fires_each_notice_on_its_own_day(engine) -> None:  # type: ignore[no-untyped-def]
    c = open_case(engine, posted="2026-02-01T09:00", period="2026-02", monthly_ladder=True)
    skip_to(engine, t("2026-03-01T00:00"))                      # one sweep over the whole month
    c = engine.show(c.id)
    assert [local(c.data[k]) for k in ("notice1_at", "notice2_at", "final_notice_at")] == [
        "2026-02-16T09:00", "2026-02-24T09:00", "2026-02-28T09:00"]
    ladder = [n["_at"] for n in notifications(engine, c.id, "催费通知书")]
    assert ladder == ["2026-02-16T09:00", "2026-02-24T09:00", "2026-02-28T09:00"]
    # The supervisor's daily report (DUN-6) is a snapshot of the moment it is made: after a
    # month without a sweep only the latest one is sent, for the make-up Saturday 02-28.
    assert [r["_at"] for r in reports(engine, "daily_review")] == ["2026-02-28T17:30"]
    # The history runs in time order, as replay needs it.
    times = [e.occurred_at for e in engine.history(c.id)]
    assert times == sorted(times) and engine.replay(c.id).ok


def test_dun11_condition_is_judged_on_the_day_the_step_was_due(engine) -> None:  # type: ignore[no-untyped-def]
    # Due date 10-15, cash payer: the SMS step is due 10-05 09:00, when date(now) < due_date
    # holds. A sweep that only comes back on 10-20 still sends it, dated 10-05.
    c = open_case(engine, posted="2025-09-25T09:00", payment_method="cash", due_date="2025-10-15")
    skip_to(engine, t("2025-10-20T09:00"))
    assert [n["_at"] for n in notifications(engine, c.id, "缴费通知短信")] == ["2025-10-05T09:00"]
    assert local(engine.show(c.id).data["sms_reminder_at"]) == "2025-10-05T09:00"


def test_ren4_daily_patrol_quota_is_judged_for_every_day_of_a_week_long_gap(engine, clock) -> None:  # type: ignore[no-untyped-def]
    r = open_works(engine, day_at("2025-09-26", "15:00"))        # Friday 26 September
    # No sweep for two weeks; the steward's two Monday patrols are recorded as they happen
    # (each command first fires what came due before it: the make-up Sunday's check).
    engine.advance(r.id, "steward_patrol", "chen_jing", PATROL, at=day_at("2025-09-29", "10:00"))
    engine.advance(r.id, "steward_patrol", "chen_jing", PATROL, at=day_at("2025-09-29", "16:00"))
    skip_to(engine, day_at("2025-10-11", "18:30"))                  # the worker is back
    data = engine.show(r.id).data
    # Checked: 09-28 (none), 09-29 (two: met), 09-30, 10-09, 10-10, 10-11 (none); the
    # National Day holiday is not checked.
    assert (data["patrol_breach_days"], data["missed_patrols"]) == (5, 10)
    alerts = [n["_at"] for n in notifications(engine, r.id, "REN-4")]
    assert [a[5:10] for a in alerts] == ["09-28", "09-30", "10-09", "10-10", "10-11"]
    assert engine.replay(r.id).ok
