"""A fired step that only sets values and notifies is decided without the general effect
machinery (engine/core/fire.py, ``_plain_effects``), and a batch works out its clocks' next
steps once per start instant (``clocks._next_step``'s memo): both must leave the tables
exactly as the general path, step by step, leaves them.

The same month of cases (fee cycles started in bulk, complaints in every channel and
state, dunning cases) is swept day by day over six weeks twice: once as shipped, once with
every step sent through the general path and no memo. Events with their hash chains,
projections, timers and outbox rows must be the same row for row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.core import fire as fire_module
from engine.runtime import service as service_module
from engine.timeskip import skip_days
from tests.case_helpers import t
from tests.test_bulk_start import COMPLAINT, DUNNING, FEE_AT, build, dump, month

FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}


def run_month(url: str) -> list[Any]:
    """Start the month's cases, take a few actions, sweep six weeks; what fired."""
    clock = FakeClock(FEE_AT)
    eng = build(url, clock)
    try:
        eng.start_many("fee_cycle", "lin_cai", month(6), at=FEE_AT)
        complaints = [COMPLAINT, {**COMPLAINT, "unit": "7-0802", "channel": "visit"},
                      {**COMPLAINT, "unit": "2-0101", "channel": "letter"},
                      {"channel": "online", "content": "电梯经常停运", "anonymous": True}]
        started = eng.start_many("complaint", "liu_fang", complaints * 2, at=t("2025-10-09T17:30"))
        eng.start_many("dunning", "li_qiang", [DUNNING, {**DUNNING, "unit": "5-0301", "amount_due": "342.00"}],
                       at=t("2025-10-10T09:00"))
        for inst in started[:3]:  # some complaints move on before their reply clock runs out
            eng.advance(inst.id, "investigate", inst.assignee or "zhang_wei", at=t("2025-10-10T09:30"))
        fired = skip_days(eng, t("2025-10-02T08:00"), t("2025-11-15T08:00"))
        assert all(eng.replay(i).ok for i in range(1, len(started) + 9))
        return fired
    finally:
        eng.close()


def test_plain_fired_steps_and_the_batch_memo_write_what_the_general_path_writes(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    plain_calls: list[int] = []
    real_plainly = fire_module._plainly

    def counted(*a: Any) -> Any:
        plain_calls.append(1)
        return real_plainly(*a)

    monkeypatch.setattr(fire_module, "_plainly", counted)
    fast_url = f"sqlite:///{tmp_path / 'fast.db'}"
    fast = run_month(fast_url)
    assert plain_calls, "no step took the plain path: the comparison would prove nothing"

    real_decide = service_module.decide_fire
    monkeypatch.setattr(fire_module, "_plain_effects", lambda spec, event: None)
    monkeypatch.setattr(service_module, "decide_fire",
                        lambda proc, org, cal, inst, name, now, memo=None: real_decide(proc, org, cal, inst, name, now))
    general_url = f"sqlite:///{tmp_path / 'general.db'}"
    general = run_month(general_url)

    assert len(fast) == len(general) > len(plain_calls) > 10  # plain steps, and others through the general path
    assert dump(fast_url) == dump(general_url)


def test_a_plain_step_of_an_instance_no_longer_active_records_only_its_clock_event() -> None:
    """``_apply_effects`` stops at an inactive instance; so does the plain path."""
    from engine.core.model import Event, Instance

    class Proc:  # evolve folds the clock event through the registered clock fold only
        id, version = "p", "1"

    clock_event = Event(fire_module.clocks.SLA_WARNED, "system", None, t("2025-10-10T09:00"),
                        {"name": "reply", "clock": {"status": "warned"}})
    done = Instance(id=1, procedure="p", version="1", state="closed", status="completed")
    decision = fire_module._plainly(Proc(), None, done, clock_event, [])  # type: ignore[arg-type]
    assert [e.type for e in decision.events] == [fire_module.clocks.SLA_WARNED]
    assert decision.folded is not None and decision.folded[1].last_occurred_at == clock_event.occurred_at
    assert decision.folded[1].clocks["reply"].stored("status") == "warned"


def test_a_step_with_a_condition_an_action_or_another_effect_takes_the_general_path() -> None:
    from engine.spec.models import EffectSpec, SlaSpec

    notify = EffectSpec(notify={"role": "cs_supervisor", "message": "超时 {id}"})
    raise_priority = EffectSpec(set={"priority": "high"})
    conditional = EffectSpec(notify={"role": "cs_supervisor", "message": "超时"}, when="priority == 'high'")
    assign = EffectSpec(assign={"role": "cs_supervisor"})

    def sla(**kw: Any) -> SlaSpec:
        return SlaSpec(name="reply", title="答复时限", goal="1 workday", workday_mode="working_hours", warn_at=[50],
                       stop_on=["reply"], **kw)

    breached = type("E", (), {"type": fire_module.clocks.SLA_BREACHED})()
    warned = type("E", (), {"type": fire_module.clocks.SLA_WARNED})()
    spec = sla(on_warn=[notify], on_breach=[raise_priority, notify])
    assert fire_module._plain_effects(spec, warned) == [notify]
    assert fire_module._plain_effects(spec, breached) == [raise_priority, notify]
    assert fire_module._plain_effects(sla(on_breach=[conditional]), breached) is None
    assert fire_module._plain_effects(sla(on_breach=[assign]), breached) is None
    assert fire_module._plain_effects(sla(on_breach=[notify], breach_action="escalate"), breached) is None
    escalated = type("E", (), {"type": fire_module.clocks.SLA_ESCALATED})()
    assert fire_module._plain_effects(spec, escalated) is None


def test_a_message_is_filled_as_a_substitution_fills_it() -> None:
    """The compiled template fills what the placeholder pattern matches, nothing else."""
    import re

    from engine.core.decide import _PLACEHOLDER, render

    values = {"id": 12, "unit": "3-1201", "none": None, "price": 3.5}
    for text in ["投诉单 {id}（{unit}）已超时", "{id}", "no fields", "", "{Unit} {1x} {missing} {none}{price}",
                 "{{id}}", "{id}{id}{unit", "}{id}{"]:
        expected = re.sub(_PLACEHOLDER, lambda mt: str(values.get(mt.group(1), "")), text)
        assert render(text, values) == expected
        assert render(text, values) == expected  # and again, from the compiled form
