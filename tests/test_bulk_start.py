"""Bulk start (``Engine.start_many``, ``sop start … --each FILE``): a month's fee cycle for
every unit in one transaction (FEE-1), all or nothing.

The promise behind it: a bulk-started instance cannot be told apart from one started by
``Engine.start`` at the same instant — same events and hash chain, same projection, same
timers and outbox rows — which is checked table by table on two databases, on SQLite and
on PostgreSQL. A refused batch writes nothing and names each bad row and field.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cli import main
from engine.clock import FakeClock
from engine.errors import InputError, NotAuthorized, RowsInvalid, StaffNotFound
from engine.runtime import bulk as bulk_module
from engine.store.backends import postgres as postgres_backend
from engine.runtime.config import Settings, build_engine
from engine.timeskip import skip_days
from tests.case_helpers import t, timer_fires
from tests.conftest import ROOT, SHANGHAI
from tests.pg import fresh_urls

FEE_AT = t("2025-10-01T09:00")
CHARGES = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-10",
           "management_fee": "300.00", "water_usage": 12, "water_unit_price": "3.50", "service_fees": "0",
           "other_fees": "0", "payment_method": "bank_debit"}
COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
DUNNING = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-09",
           "amount_due": "1280.00", "notices_posted_at": "2025-09-24T09:00:00+08:00"}
TABLES = ("instances", "events", "timers", "outbox", "procedure_versions")


def month(n: int = 8) -> list[dict[str, Any]]:
    """October's charges for ``n`` units: bank payers, cash payers with a due date (their SMS
    timer is armed from it), a unit with paid services, and one with nothing to pay."""
    rows = []
    for i in range(n):
        row = {**CHARGES, "unit": f"{i % 8 + 1}-{1201 + i}", "owner_name": f"业主{i}",
               "management_fee": f"{180 + i}.00", "water_usage": i}
        if i % 3 == 1:
            row.update(payment_method="cash", due_date="2025-10-20")
        if i % 4 == 2:
            row.update(service_fees="110.00", service_slip_refs=f"维修单 #{i}")
        rows.append(row)
    rows.append({**CHARGES, "unit": "8-0101", "management_fee": "0", "water_usage": 0})
    return rows


def build(url: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    return build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of the engine's tables, in primary-key order, whatever the backend."""
    db = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(db, only=TABLES)
        with db.connect() as conn:
            out = {}
            for name in TABLES:
                table = meta.tables[name]
                order = list(table.primary_key.columns) or list(table.columns)
                out[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
            return out
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh databases on one backend: one for one-at-a-time starts, one for the bulk."""
    new = fresh_urls(request, tmp_path, request.param)
    return new("one"), new("bulk")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 1, 1, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    eng = build(f"sqlite:///{tmp_path / 'sop.db'}", clock)
    yield eng
    eng.close()


@pytest.mark.parametrize("rows_per_insert", [None, 2], ids=["whole", "split"])
def test_fee1_a_months_charges_started_in_bulk_are_exactly_those_started_one_at_a_time(two_urls, clock, monkeypatch, rows_per_insert) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bulk_module, "WRITE_CHUNK", 4)          # the month's 9 rows are written in 3 rounds
    if rows_per_insert:  # PostgreSQL: each round's many-row INSERTs split as if the bind limit were near
        monkeypatch.setattr(postgres_backend, "MAX_PARAMS", rows_per_insert * 14)
    one, bulk = (build(u, clock) for u in two_urls)
    batches = [("fee_cycle", "lin_cai", month(), FEE_AT),
               ("complaint", "liu_fang", [COMPLAINT, {**COMPLAINT, "unit": "7-0802", "channel": "visit"},
                                          {"channel": "online", "content": "电梯经常停运", "anonymous": True}],
                t("2025-10-09T17:30")),
               ("dunning", "li_qiang", [DUNNING, {**DUNNING, "unit": "5-0301", "amount_due": "342.00"}],
                t("2025-10-10T09:00"))]
    for procedure, staff, rows, at in batches:
        singles = [one.start(procedure, staff, row, at=at) for row in rows]
        assert bulk.start_many(procedure, staff, rows, at=at) == singles
    try:
        assert dump(two_urls[1]) == dump(two_urls[0])       # events, chains, projections, timers, outbox
        n = len(bulk.history(1))
        assert n > 5 and [e.hash for e in bulk.history(1)] == [e.hash for e in one.history(1)]
        assert all(bulk.replay(i).ok for i in range(1, 15))
        assert bulk.verify() == (14, sum(len(bulk.history(i)) for i in range(1, 15)), None)
    finally:
        one.close()
        bulk.close()


def test_fee1_the_bulk_computes_each_units_charges_and_completes_units_with_nothing_to_pay(engine) -> None:  # type: ignore[no-untyped-def]
    rows = month()
    started = engine.start_many("fee_cycle", "lin_cai", rows, at=FEE_AT)
    assert [c.id for c in started] == list(range(1, len(rows) + 1))
    assert [c.data["unit"] for c in started] == [r["unit"] for r in rows]
    assert started[2].data["amount_due"] == "299.00"           # 182 + 2 t × 3.50 + 110 of signed slips
    assert (started[0].state, started[0].assignee_role, started[0].status) == ("billing", "finance", "active")
    assert started[-1].status == "completed" and started[-1].data["outcome"] == "paid"
    assert engine.show(3) == started[2].with_(children=())


def test_fee2_dun11_bulk_started_cycles_arm_the_notice_day_and_the_reminders(engine) -> None:  # type: ignore[no-untyped-def]
    [bank, cash, _] = engine.start_many("fee_cycle", "lin_cai", month(2), at=FEE_AT)
    names = {d["name"]: d["due"] for d in engine.deadlines(bank.id)}
    assert names == {"notice_day": "2025-10-05T09:00:00+08:00", "debit_sms": "2025-10-07T09:00:00+08:00",
                     "cycle_end": "2025-10-31T18:00:00+08:00"}
    assert {d["name"] for d in engine.deadlines(cash.id)} == {"notice_day", "debit_sms", "due_sms", "cycle_end"}
    skip_days(engine, t("2025-10-01T23:59"), t("2025-10-05T23:59"))
    assert timer_fires(engine, bank.id, "notice_day") == timer_fires(engine, cash.id, "notice_day") == \
        ["2025-10-05T09:00"]


def test_fee1_a_bad_row_refuses_the_whole_month_naming_row_and_field(engine) -> None:  # type: ignore[no-untyped-def]
    rows = month()
    rows[3] = {**rows[3], "service_fees": "50.00"}             # paid services need their signed slips
    del rows[5]["period"]
    rows[6] = {**rows[6], "water_usage": -1}
    with pytest.raises(RowsInvalid) as e:
        engine.start_many("fee_cycle", "lin_cai", rows, at=FEE_AT)
    assert [n for n, _ in e.value.rows] == [4, 6, 7]
    assert [fe.field for fe in e.value.errors] == ["row 4: service_slip_refs", "row 6: period", "row 7: water_usage"]
    assert str(e.value).startswith("3 of 9 rows refused, nothing started: row 4: service_slip_refs: required when")
    with engine.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instances").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM procedure_versions").scalar() == 0
    assert [c.id for c in engine.start_many("fee_cycle", "lin_cai", month(), at=FEE_AT)][:1] == [1]


def test_fee1_only_finance_starts_the_cycle_and_only_known_procedures_start(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotAuthorized, match="chen_jing may not start fee_cycle"):
        engine.start_many("fee_cycle", "chen_jing", month(), at=FEE_AT)
    with pytest.raises(StaffNotFound):
        engine.start_many("fee_cycle", "nobody", month(), at=FEE_AT)
    with pytest.raises(InputError, match="unknown procedure 'fee_cylce'"):
        engine.start_many("fee_cylce", "lin_cai", month(), at=FEE_AT)
    with pytest.raises(InputError, match="time needs a UTC offset"):
        engine.start_many("fee_cycle", "lin_cai", month(), at=datetime(2025, 10, 1, 9, 0))
    with engine.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instances").scalar() == 0


def test_a_procedure_that_starts_linked_instances_as_it_starts_is_refused_in_bulk(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import shutil

    for folder in ("procedures", "forms"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "procedures" / "fee_bundle.yaml").write_text(
        "id: fee_bundle\ntitle: 费用与回访\nstart:\n  state: open\n  roles: [finance]\n  form: fee_charges\n"
        "  effects:\n    - spawn: {procedure: callback, data: {unit: unit}}\n"
        "states:\n  open: {title: 待处理, kind: task, owner: finance}\n  done: {title: 完成, kind: final}\n"
        "actions:\n  - {name: finish, title: 完成, from: open, to: done, roles: [finance]}\n", encoding="utf-8")
    eng = build_engine(Settings(f"sqlite:///{tmp_path / 'sop.db'}", tmp_path / "procedures",
                                ROOT / "org" / "demo.yaml"), clock)
    with pytest.raises(InputError, match="fee_bundle starts linked instances when it starts; bulk start does not"):
        eng.start_many("fee_bundle", "lin_cai", [CHARGES], at=FEE_AT)
    assert eng.start_many("fee_cycle", "lin_cai", [], at=FEE_AT) == []
    with eng.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM procedure_versions").scalar() == 0
    eng.close()


def test_fee1_rerunning_a_month_with_its_keys_starts_nothing_twice(engine) -> None:  # type: ignore[no-untyped-def]
    rows = month()
    keys = [f"fee_cycle:{r['period']}:{r['unit']}" for r in rows]
    first = engine.start_many("fee_cycle", "lin_cai", rows[:5], at=FEE_AT, external_keys=keys[:5])
    again = engine.start_many("fee_cycle", "lin_cai", rows, at=FEE_AT, external_keys=keys)
    assert again[:5] == first and [c.id for c in again] == list(range(1, len(rows) + 1))
    assert engine.start("fee_cycle", "lin_cai", rows[7], at=FEE_AT, external_key=keys[7]) == again[7]
    with engine.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instances").scalar() == len(rows)
    with pytest.raises(RowsInvalid, match="row 3: .*repeats row 1"):
        engine.start_many("fee_cycle", "lin_cai", rows[:3], at=FEE_AT, external_keys=["k", "j", "k"])
    with pytest.raises(InputError, match="2 keys for 3 rows"):
        engine.start_many("fee_cycle", "lin_cai", rows[:3], at=FEE_AT, external_keys=["k", "j"])


def test_fee1_a_bulk_start_that_loses_a_race_for_its_keys_writes_nothing_and_says_run_again(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Another process starts one of the month's records after the batch looked its keys up."""
    from engine.errors import KeysTaken
    from engine.store import bulk as bulk_store

    rows = month(3)
    keys = [f"fee_cycle:{r['period']}:{r['unit']}" for r in rows]
    engine.start("fee_cycle", "lin_cai", rows[1], at=FEE_AT, external_key=keys[1])
    monkeypatch.setattr(bulk_store, "existing_keys", lambda conn, wanted: {})  # the lookup ran before it
    with pytest.raises(KeysTaken, match="nothing was written. Run it again"):
        engine.start_many("fee_cycle", "lin_cai", rows, at=FEE_AT, external_keys=keys)
    with engine.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instances").scalar() == 1
    monkeypatch.undo()
    again = engine.start_many("fee_cycle", "lin_cai", rows, at=FEE_AT, external_keys=keys)
    assert len({c.id for c in again}) == len(rows) and engine.verify()[2] is None


# ------------------------------------------------------------------ sop start … --each FILE

def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")   # as Excel saves CSV UTF-8
    return path


@pytest.fixture
def sop(runner):  # type: ignore[no-untyped-def]
    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
        assert (r.exit_code == 0) == ok, r.output
        return r
    return run


def test_fee1_sop_start_each_starts_a_months_csv_and_a_rerun_with_its_key_starts_nothing(sop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fees = write_csv(tmp_path / "2025-10.csv", month())
    argv = ["start", "fee_cycle", "--as", "lin_cai", "--each", str(fees), "--key", "fee_cycle:{period}:{unit}",
            "--at", "2025-10-01T09:00"]
    r = sop(*argv)
    assert r.stdout == "fee_cycle 月度费用收取: 9 started (#1 … #9), 0 already present\n" and r.stderr == ""
    again = json.loads(sop(*argv, "--json").stdout)
    assert again == {"procedure": "fee_cycle", "rows": 9, "started": 0, "already_present": 9, "first_id": None,
                     "last_id": None, "ids": list(range(1, 10))}
    shown = json.loads(sop("--json", "show", "2").stdout)
    assert shown["data"]["owner_name"] == "业主1" and shown["data"]["due_date"] == "2025-10-20"
    assert shown["data"]["water_usage"] == 1 and "service_slip_refs" not in shown["data"]   # empty cell: not given
    assert sop("audit", "verify").stdout.startswith("ok: 9 instances")


def test_fee1_sop_start_each_reads_json_lines(sop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fees = tmp_path / "fees.jsonl"
    fees.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in month(3)) + "\n\n", encoding="utf-8")
    out = json.loads(sop("start", "fee_cycle", "--as", "lin_cai", "--each", str(fees), "--json").stdout)
    assert (out["started"], out["first_id"], out["last_id"]) == (4, 1, 4)


def test_fee1_sop_start_each_refuses_a_month_with_bad_rows_naming_file_and_line(sop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = month()
    rows[2] = {**rows[2], "service_slip_refs": ""}              # services without their signed slips
    rows[4] = {**rows[4], "contact": "12345"}
    fees = write_csv(tmp_path / "fees.csv", rows)
    r = sop("start", "fee_cycle", "--as", "lin_cai", "--each", str(fees), ok=False)
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"error: {fees}: 2 of 9 rows refused, nothing started",
        f"{fees}:4: service_slip_refs: required when service_fees > 0 (有偿服务单据编号)",
        f"{fees}:6: contact: not a valid value ('12345')"]
    assert json.loads(sop("--json", "audit", "verify").stdout)["instances"] == 0


@pytest.mark.parametrize("content, message", [
    ("unit,period,water_use\n3-1201,2025-10,3\n", ":1: unknown column(s) water_use; the start form fee_charges has"),
    ("unit,owner_name\n3-1201,王先生\n", ":1: no column for required field(s) period, management_fee"),
    (",".join(CHARGES) + "\n\n", ": no rows"),
])
def test_fee1_sop_start_each_refuses_a_file_it_cannot_read_as_rows(sop, tmp_path, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    fees = tmp_path / "fees.csv"
    fees.write_text(content, encoding="utf-8")
    r = sop("start", "fee_cycle", "--as", "lin_cai", "--each", str(fees), ok=False)
    assert len(r.stderr.splitlines()) == 1 and message in r.stderr and r.stdout == ""


def test_fee1_sop_start_each_names_the_line_of_a_broken_json_line_or_a_non_utf8_file(sop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fees = tmp_path / "fees.jsonl"
    fees.write_text(json.dumps(CHARGES) + "\n\n{unit: 3-1201}\n", encoding="utf-8")
    r = sop("start", "fee_cycle", "--as", "lin_cai", "--each", str(fees), ok=False)
    assert r.stderr == f"error: {fees}:3: not valid JSON at column 2: Expecting property name enclosed in double quotes\n"
    gbk = tmp_path / "fees.csv"
    gbk.write_bytes("unit,owner_name\n3-1201,王先生\n".encode("gbk"))
    r = sop("start", "fee_cycle", "--as", "lin_cai", "--each", str(gbk), ok=False)
    assert r.stderr == f"error: {gbk}:2: not UTF-8 text; save the file as UTF-8 (in Excel: CSV UTF-8)\n"


@pytest.mark.parametrize("argv, message", [
    (["fee_cycle", "--as", "chen_jing"], "error: chen_jing may not start fee_cycle: needs one of the roles finance"),
    (["fee_cylce", "--as", "lin_cai"], "error: PROCEDURE: unknown procedure 'fee_cylce'; known: "),
    (["fee_cycle", "--as", "lin_cai", "--key", "k:{owner}"], "error: --key: owner: no such field of the start form"),
    (["fee_cycle", "--as", "lin_cai", "--data", "{}"], "error: --each: give --data for one instance, or --each"),
])
def test_fee1_sop_start_each_refuses_the_wrong_role_procedure_or_key_in_one_line(sop, tmp_path, argv, message) -> None:  # type: ignore[no-untyped-def]
    fees = write_csv(tmp_path / "fees.csv", month(2))
    r = sop("start", *argv, "--each", str(fees), ok=False)
    assert r.stderr.startswith(message) and len(r.stderr.splitlines()) == 1 and r.stdout == ""
    assert json.loads(sop("--json", "audit", "verify").stdout)["instances"] == 0


def test_fee1_the_readme_month_starts_from_the_shipped_sample_file(sop) -> None:  # type: ignore[no-untyped-def]
    argv = ["start", "fee_cycle", "--as", "lin_cai", "--each", str(ROOT / "demo" / "fees-2025-10.csv"),
            "--key", "fee_cycle:{period}:{unit}", "--at", "2025-10-01T09:00"]
    assert sop(*argv).stdout == "fee_cycle 月度费用收取: 12 started (#1 … #12), 0 already present\n"
    assert sop(*argv).stdout == "fee_cycle 月度费用收取: 0 started, 12 already present\n"
    assert [line.split()[0] for line in sop("tasks", "--role", "finance").stdout.splitlines()[2:]] == \
        [str(i) for i in (*range(1, 11), 12)]                   # 8-0101 (#11) owes nothing: completed at once
