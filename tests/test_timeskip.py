"""engine/timeskip.py: skipping time on a FakeClock fires what came due through the sweep.

The demo and the scenario tests move time with these helpers instead of sleeping or
re-writing "set the clock, then tick" each time; they must fire exactly what
``sop tick --until`` fires, and refuse the real clock.
"""
from __future__ import annotations

import pytest

from engine.clock import SystemClock
from engine.runtime.config import build_engine
from engine.timeskip import TimeSkipper, skip, skip_days, skip_to
from tests.case_helpers import clock, deadline, engine, t, timer_fires  # noqa: F401  (fixtures)
from tests.test_rules_dunning import open_case


def test_skip_to_sets_the_clock_and_fires_only_what_is_due_by_then(engine) -> None:  # type: ignore[no-untyped-def]
    c = open_case(engine, posted="2025-09-26T09:00")  # collective week over 2025-10-03 09:00
    skip_to(engine, t("2025-10-03T08:59"))
    assert engine.clock.now() == t("2025-10-03T08:59") and engine.show(c.id).state == "collective_period"
    fired = skip_to(engine, t("2025-10-03T09:00"))
    assert [(f.instance_id, f.name) for f in fired] == [(c.id, "collective_period_over")]
    assert engine.show(c.id).state == "ledger"


def test_skip_moves_on_from_the_clock_by_a_duration(engine) -> None:  # type: ignore[no-untyped-def]
    c = open_case(engine, posted="2025-09-26T09:00")
    skip_to(engine, t("2025-10-03T08:00"))
    assert [f.name for f in skip(engine, hours=1)] == ["collective_period_over"]
    assert engine.clock.now() == t("2025-10-03T09:00") and engine.show(c.id).state == "ledger"


def test_skip_days_sweeps_once_a_day_at_the_same_wall_clock_time(engine) -> None:  # type: ignore[no-untyped-def]
    open_case(engine, posted="2025-09-26T09:00")
    fired = skip_days(engine, t("2025-10-01T23:59"), t("2025-10-05T23:59"))
    assert engine.clock.now() == t("2025-10-05T23:59")
    assert "collective_period_over" in [f.name for f in fired]


def test_time_skipper_sweeps_only_when_the_earliest_pending_step_has_come(engine) -> None:  # type: ignore[no-untyped-def]
    c = open_case(engine, posted="2025-09-26T09:00")
    skip_to(engine, t("2025-10-03T08:59"))
    skipper = TimeSkipper(engine)
    assert skipper.due == engine.next_due() == t("2025-10-03T09:00")
    assert skipper.sweep_to(t("2025-10-03T08:59:59")) == []
    assert engine.clock.now() == t("2025-10-03T08:59:59") and engine.show(c.id).state == "collective_period"
    assert [f.name for f in skipper.sweep_to(t("2025-10-03T09:15"))] == ["collective_period_over"]
    assert skipper.due == engine.next_due()


def test_time_skipping_refuses_an_engine_on_the_real_clock(settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="needs an engine on a FakeClock, not SystemClock"):
        skip_to(build_engine(settings, SystemClock()), t("2025-10-03T09:00"))
