"""The monthly fee cycle (FEE-1..5, and DUN-11 where the cycle sends the reminders): one
case per unit per month, October 2025 (National Day 1-8 October) on the real calendar."""
from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ActionNotAllowed, FormInvalid, NotAuthorized
from engine.timeskip import skip_days, skip_to
from tests.case_helpers import (clock, deadline, engine, events, notifications, t,  # noqa: F401  (fixtures)
                                timer_fires)

CHARGES = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-10",
           "management_fee": "300.00", "water_usage": 12, "water_unit_price": "3.50", "service_fees": "0",
           "other_fees": "0", "payment_method": "bank_debit"}


def cycle(engine, **more: Any):  # type: ignore[no-untyped-def]
    return engine.start("fee_cycle", "lin_cai", {**CHARGES, **more}, at=t("2025-10-01T09:00"))


def collecting(engine, **more: Any):  # type: ignore[no-untyped-def]
    c = cycle(engine, **more)
    return engine.advance(c.id, "deliver_notice", "xu_bin", {"delivered_via": "patrol"}, at=t("2025-10-05T15:00"))


def collect(amount: str, ref: str = "") -> dict:
    return {"collected_amount": amount, **({"bank_reference": ref, "receipt_no": "R-" + ref} if ref else {})}


def test_fee1_charges_are_computed_from_the_source_slips_at_the_start_of_the_month(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormInvalid, match="service_slip_refs"):       # paid services need signed slips
        cycle(engine, service_fees="110.00")
    with pytest.raises(NotAuthorized):
        engine.start("fee_cycle", "chen_jing", CHARGES, at=t("2025-10-01T09:00"))
    c = cycle(engine, service_fees="110.00", service_slip_refs="维修单 #7", other_fees="20.00")
    assert c.data["water_fee"] == "42.00"                             # 12 t × 3.50 by the meter reading
    assert c.data["amount_due"] == "472.00" and c.data["remaining"] == "472.00"
    assert (c.state, c.assignee_role) == ("billing", "finance")
    nothing = engine.start("fee_cycle", "lin_cai", {**CHARGES, "unit": "3-0101", "management_fee": "0",
                           "water_usage": 0}, at=t("2025-10-01T09:00"))
    assert nothing.status == "completed"                               # nothing to collect


def test_fee2_notices_printed_on_the_5th_and_delivered_to_every_unit(engine) -> None:  # type: ignore[no-untyped-def]
    c = cycle(engine)
    skip_to(engine, t("2025-10-04T23:59"))
    assert notifications(engine, c.id, "收费通知单") == []
    skip_to(engine, t("2025-10-05T09:00"))                                # the 5th, a holiday Sunday this year
    [note] = notifications(engine, c.id, "收费通知单")
    assert note["recipients"] == ["lin_cai"] and note["_at"] == "2025-10-05T09:00" and "护管队送发" in note["message"]
    c = engine.advance(c.id, "deliver_notice", "xu_bin", {"delivered_via": "patrol"}, at=t("2025-10-05T15:00"))
    assert c.state == "collecting" and c.data["notice_delivered_at"] == "2025-10-05T15:00:00+08:00"
    assert deadline(engine, c.id, "notice_day")["status"] == "cancelled"


def test_fee3_first_bank_collection_on_the_10th_then_the_unpaid_list_goes_to_the_directors_assistant(engine) -> None:  # type: ignore[no-untyped-def]
    c = collecting(engine)
    with pytest.raises(ActionNotAllowed, match="10日"):
        engine.advance(c.id, "first_bank_collection", "lin_cai", collect("0"), at=t("2025-10-09T16:00"))
    skip_days(engine, t("2025-10-06T23:59"), t("2025-10-10T23:59"))
    assert timer_fires(engine, c.id, "first_collection_day") == ["2025-10-10T09:00"]
    with pytest.raises(FormInvalid, match="receipt_no"):               # a receipt for what was collected
        engine.advance(c.id, "first_bank_collection", "lin_cai", {"collected_amount": "100.00", "bank_reference": "TS1"},
                       at=t("2025-10-11T10:00"))
    c = engine.advance(c.id, "first_bank_collection", "lin_cai", collect("100.00", "TS1"), at=t("2025-10-11T10:00"))
    assert (c.data["amount_paid"], c.data["remaining"], c.data["receipt_no"]) == ("100.00", "242.00", "R-TS1")
    unpaid = notifications(engine, c.id, "未缴费单元清单")[0]
    assert unpaid["recipients"] == ["zhang_hua"] and "242.00" in unpaid["message"]
    with pytest.raises(ActionNotAllowed):                              # one first collection a month
        engine.advance(c.id, "first_bank_collection", "lin_cai", collect("0"), at=t("2025-10-11T11:00"))
    c = engine.advance(c.id, "contact_unpaid", "zhang_hua", {"fee_contact_means": "phone",
                       "fee_contact_result": "业主称月底前到前台缴"}, at=t("2025-10-13T10:00"))
    assert c.state == "collecting" and c.data["fee_contact_result"] == "业主称月底前到前台缴"


def test_fee4_second_bank_collection_after_the_20th(engine) -> None:  # type: ignore[no-untyped-def]
    c = collecting(engine)
    c = engine.advance(c.id, "first_bank_collection", "lin_cai", collect("0"), at=t("2025-10-10T16:00"))
    with pytest.raises(ActionNotAllowed, match="20日后"):
        engine.advance(c.id, "second_bank_collection", "lin_cai", collect("342.00", "TS2"), at=t("2025-10-20T16:00"))
    skip_days(engine, t("2025-10-11T23:59"), t("2025-10-21T23:59"))
    assert timer_fires(engine, c.id, "second_collection_day") == ["2025-10-21T09:00"]
    c = engine.advance(c.id, "second_bank_collection", "lin_cai", collect("342.00", "TS2"), at=t("2025-10-21T15:00"))
    assert c.status == "completed" and c.data["outcome"] == "paid" and c.children == ()


def test_fee5_units_unpaid_after_the_cycle_are_handed_to_dunning(engine) -> None:  # type: ignore[no-untyped-def]
    # A bank payer whose second collection falls short: the remainder goes to dunning.
    bank = collecting(engine)
    engine.advance(bank.id, "first_bank_collection", "lin_cai", collect("0"), at=t("2025-10-10T16:00"))
    bank = engine.advance(bank.id, "second_bank_collection", "lin_cai", collect("42.00", "TS3"), at=t("2025-10-22T10:00"))
    assert bank.status == "completed" and bank.data["outcome"] == "handed_to_dunning"
    [child_id] = bank.children
    child = engine.show(child_id)
    assert child.procedure == "dunning" and child.parent_id == bank.id
    assert {k: child.data[k] for k in ("unit", "period", "amount_due", "source_fee_cycle", "monthly_ladder")} == {
        "unit": "3-1201", "period": "2025-10", "amount_due": "300.00", "source_fee_cycle": bank.id,
        "monthly_ladder": False}
    assert child.data["notices_posted_at"] == "2025-10-05T15:00:00+08:00"

    # A cash payer who never came: the month-end timer closes the cycle.
    cash = collecting(engine, unit="7-0802", payment_method="cash", due_date="2025-10-15")
    paid = collecting(engine, unit="5-0301", payment_method="cash", due_date="2025-10-15")
    engine.advance(paid.id, "record_payment", "liu_fang", {"payment_amount": "342.00", "payment_channel": "front_desk",
                   "payment_reference": "SJ-77"}, at=t("2025-10-14T10:00"))
    skip_to(engine, t("2025-10-31T17:59"))
    assert engine.show(cash.id).status == "active"
    skip_to(engine, t("2025-10-31T18:00"))
    cash = engine.show(cash.id)
    assert cash.state == "closed" and events(engine, cash.id, "ActionTaken")[-1]["_actor"] == "system"
    dunning = engine.show(cash.children[0])
    assert dunning.data["amount_due"] == "342.00" and dunning.data["unit"] == "7-0802"
    skip_to(engine, t("2025-10-31T18:01"))                                  # the collective week is long over
    dunning = engine.show(dunning.id)
    assert dunning.state == "ledger" and dunning.assignee == "sun_yan"
    paid = engine.show(paid.id)
    assert paid.status == "completed" and paid.data["outcome"] == "paid" and paid.children == ()


def test_dun11_fee_cycle_reminds_bank_payers_three_days_before_the_10th_and_cash_payers_ten_days_before_due(engine) -> None:  # type: ignore[no-untyped-def]
    bank = cycle(engine)
    cash = cycle(engine, unit="3-0502", payment_method="cash", due_date="2025-10-20")
    skip_days(engine, t("2025-10-01T23:59"), t("2025-10-10T23:59"))
    [debit] = notifications(engine, bank.id, "短信")
    assert debit["_at"] == "2025-10-07T09:00" and debit["recipients"] == ["chen_jing"] and "10日银行托收" in debit["message"]
    [due] = notifications(engine, cash.id, "短信")
    assert due["_at"].startswith("2025-10-10") and "2025-10-20" in due["message"]
