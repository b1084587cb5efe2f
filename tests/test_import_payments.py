"""``sop import payments``: bank and front-desk payments reach the matching case (DUN-12),
idempotently, with bad or unmatched rows reported by line while the good rows load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.payments import import_payments
from engine.errors import AdapterError
from tests.case_helpers import clock, engine, events, runner, t  # noqa: F401  (fixtures)

HEADER = "unit,period,amount,paid_at,reference\n"
CASE = {"owner_name": "王先生", "period": "2025-09", "notices_posted_at": "2025-09-24T09:00:00+08:00"}


def dunning(engine, unit: str, amount: str):  # type: ignore[no-untyped-def]
    c = engine.start("dunning", "li_qiang", {**CASE, "unit": unit, "amount_due": amount}, at=t("2025-09-24T09:00"))
    c = engine.advance(c.id, "enter_ledger", "li_qiang", at=t("2025-09-29T09:00"))
    return engine.advance(c.id, "classify_b", c.assignee, {"contact_means": "phone", "owner_reached": "no_answer",
                          "contact_result": "无人接听"}, at=t("2025-09-29T10:00"))


def write(tmp_path: Path, text: str, name: str = "pay.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_dun12_each_payment_reaches_its_dunning_case_at_the_time_it_was_paid(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = dunning(engine, "3-1201", "1280.00")
    b = dunning(engine, "7-0802", "900.00")
    f = write(tmp_path, HEADER + "3-1201,2025-09,500.00,2025-10-09 10:15,BK20251009001\n"
                                 "7-0802,2025-09,\"900.00\",2025-10-09T11:00:00+08:00,BK20251009002\n")
    result = import_payments(engine, f, "lin_cai")
    assert result.errors == [] and [r["instance"] for r in result.recorded] == [a.id, b.id]
    a, b = engine.show(a.id), engine.show(b.id)
    assert (a.status, a.data["remaining"], a.state) == ("active", "780.00", "class_b")     # partial: keeps dunning
    assert (b.status, b.data["outcome"], b.data["paid_in_full_at"]) == ("completed", "paid", "2025-10-09T11:00:00+08:00")
    taken = events(engine, a.id, "ActionTaken")[-1]
    assert (taken["action"], taken["_actor"], taken["_at"]) == ("record_payment", "lin_cai", "2025-10-09T10:15")
    assert taken["input"]["payment_reference"] == "BK20251009001"
    # Before the payment was recorded, the 10:00 daily call of that morning had come due.
    kinds = [(e["name"], e["_at"]) for e in events(engine, a.id, "TimerFired") if e["name"] == "b_daily_call"]
    assert kinds[-1] == ("b_daily_call", "2025-10-09T10:00")
    assert engine.replay(a.id).ok and engine.replay(b.id).ok


def test_dun12_importing_the_same_file_again_records_nothing_new(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = dunning(engine, "3-1201", "1280.00")
    b = dunning(engine, "7-0802", "900.00")
    f = write(tmp_path, HEADER + "3-1201,2025-09,500.00,2025-10-09 10:15,BK1\n"
                                 "7-0802,2025-09,900.00,2025-10-09 11:00,BK2\n"
                                 "3-1201,2025-09,500.00,2025-10-09 10:15,BK1\n")          # a repeated line too
    first = import_payments(engine, f, "lin_cai")
    assert len(first.recorded) == 2 and [e["line"] for e in first.existing] == [4]
    seen = {i: len(engine.history(i)) for i in (a.id, b.id)}
    again = import_payments(engine, f, "lin_cai")
    assert again.recorded == [] and again.errors == [] and [e["instance"] for e in again.existing] == [a.id, b.id, a.id]
    assert {i: len(engine.history(i)) for i in (a.id, b.id)} == seen          # not one event more
    assert engine.show(a.id).data["amount_paid"] == "500.00"


def test_bad_values_are_named_by_line_and_column_and_nothing_is_imported(engine, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    a = dunning(engine, "3-1201", "1280.00")
    seen = len(engine.history(a.id))
    text = (HEADER
            + "3-1201,2025-09,abc,2025-10-09 10:00,X1\n"          # 2: amount
            + "3-1201,2025-09,1280.00,2025-10-09 10:00,GOOD\n"    # 3: good, would pay in full
            + "3-1201,2025-13,10.00,2025-10-09 10:00,X2\n"        # 4: period
            + "3-1201,2025-09,10.00,yesterday,X3\n"               # 5: paid_at
            + "3-1201,2025-09,10.00,2025-10-09 10:00,\n"          # 6: reference
            + "3-1201,2025-09,10.00,10000-01-01 10:00,X8\n"       # 7: paid_at, year 10000
            + "3-1201,2025-09,10.00,9999-12-31T23:59:59-12:00,X9\n"  # 8: paid_at, year 10000 in UTC
            + "3-1201,2025-09,-5,2025-10-09 10:00,X7\n")          # 9: amount
    f = write(tmp_path, text)
    res = runner.invoke(main, ["import", "payments", str(f), "--as", "lin_cai"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stdout.strip() == "payments: 0 recorded (0 paid in full), 0 already imported, 7 refused"
    lines = [ln.split(":", 2) for ln in res.stderr.strip().splitlines()]
    assert [(ln[0], int(ln[1])) for ln in lines] == [(str(f), n) for n in (2, 4, 5, 6, 7, 8, 9)]
    fields = [ln[2].strip().split(":")[0] for ln in lines]
    assert fields == ["amount", "period", "paid_at", "reference", "paid_at", "paid_at", "amount"]
    assert "not a date and time: '10000-01-01 10:00'" in lines[4][2] and "outside the years 1970–2999" in lines[5][2]
    assert len(engine.history(a.id)) == seen and engine.show(a.id).status == "active"  # nothing written


def test_unmatched_rows_are_reported_by_line_and_the_good_rows_still_load(engine, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    a = dunning(engine, "3-1201", "1280.00")
    text = (HEADER
            + "9-9999,2025-09,10.00,2025-10-09 10:00,X5\n"        # 2: no case
            + "3-1201,2025-08,10.00,2025-10-09 10:00,X6\n"        # 3: no case for that month
            + "3-1201,2025-09,1280.00,2025-10-09 10:00,GOOD\n")   # 4: good, pays in full
    f = write(tmp_path, text)
    res = runner.invoke(main, ["import", "payments", str(f), "--as", "lin_cai"])
    assert res.exit_code == 1
    assert res.stdout.strip() == "payments: 1 recorded (1 paid in full), 0 already imported, 2 refused"
    lines = [ln.split(":", 2) for ln in res.stderr.strip().splitlines()]
    assert [int(ln[1]) for ln in lines] == [2, 3]
    assert "no open dunning case" in lines[0][2]
    assert engine.show(a.id).status == "completed"
    assert events(engine, a.id, "ActionTaken")[-1]["_actor"] == "lin_cai"
    # Again: the good row is known, the paid case is closed for new references.
    res = runner.invoke(main, ["--json", "import", "payments", str(f), "--as", "lin_cai"])
    summary = json.loads(res.stdout)
    assert summary["recorded"] == [] and [e["line"] for e in summary["existing"]] == [4]
    write(tmp_path, HEADER + "3-1201,2025-09,10.00,2025-10-10 10:00,LATE\n", "late.csv")
    res = runner.invoke(main, ["import", "payments", str(tmp_path / "late.csv"), "--as", "lin_cai"])
    assert res.exit_code == 1 and f"case #{a.id} already closed" in res.stderr


def test_a_payment_before_dunning_lands_on_the_months_fee_cycle(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fee = engine.start("fee_cycle", "lin_cai", {"unit": "3-1201", "period": "2025-10", "management_fee": "300.00",
                       "water_usage": 0, "water_unit_price": "3.50", "service_fees": "0", "other_fees": "0",
                       "payment_method": "cash", "due_date": "2025-10-15"}, at=t("2025-10-01T09:00"))
    f = write(tmp_path, "unit,period,amount,paid_at,reference,channel\n3-1201,2025-10,300,2025-10-12 09:30,WX1,wechat\n")
    result = import_payments(engine, f, "liu_fang")
    assert [(r["procedure"], r["instance"], r["paid_in_full"]) for r in result.recorded] == [("fee_cycle", fee.id, True)]
    assert engine.show(fee.id).data["payment_channel"] == "wechat"


def test_a_late_file_is_booked_after_the_cases_last_event_and_keeps_the_bank_time(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = dunning(engine, "3-1201", "1280.00")
    engine.advance(a.id, "record_contact", "chen_jing", {"contact_means": "phone", "owner_reached": "reached",
                   "contact_result": "业主说已转账"}, at=t("2025-10-10T10:00"))
    f = write(tmp_path, HEADER + "3-1201,2025-09,1280.00,2025-10-09 16:00,BK9\n")
    [rec] = import_payments(engine, f, "lin_cai").recorded
    assert rec["recorded_at"].startswith("2025-10-10T10:00")
    assert engine.show(a.id).data["last_payment_at"] == "2025-10-09T16:00:00+08:00"


def test_a_file_without_the_required_columns_is_refused_whole_and_gb18030_files_are_read(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AdapterError, match="missing column"):
        import_payments(engine, write(tmp_path, "房号,金额\n3-1201,10\n", "bad.csv"), "lin_cai")
    a = dunning(engine, "3-1201", "1280.00")
    f = write(tmp_path, HEADER + "3-1201,2025-09,100.00,2025-10-09 10:15,前台收据0001\n", "gbk.csv", "gb18030")
    result = import_payments(engine, f, "lin_cai")
    assert [r["reference"] for r in result.recorded] == ["前台收据0001"]
    assert engine.show(a.id).data["remaining"] == "1180.00"
