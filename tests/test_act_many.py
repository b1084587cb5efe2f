"""Batch actions (``Engine.act_many``): many actions on many instances in one transaction.

The promise: a batch leaves the tables exactly as the same actions one at a time at the
same instants (events with their hash chains, projections, timers, outbox, and the ledger's
entries, which one transaction seals into one row instead of one per action), on SQLite and
PostgreSQL; a refused item refuses the batch, names every bad item and field, and writes
nothing. The office's use: a bank file closing many dunning cases (DUN-12) in one go.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import FakeClock
from engine.errors import ConcurrencyConflict, ItemsInvalid
from engine.runtime.batch import ActItem
from tests.api_support import api  # noqa: F401  (fixture)
from tests.case_helpers import t
from tests.test_bulk_start import COMPLAINT, DUNNING, build, dump
from tests.pg import fresh_urls

AT = t("2025-10-10T09:00")
FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}
INTERIM = {"interim_message": "已联系相关部门，正在跟进处理", "next_reply_at": "2025-10-13T10:00:00+08:00"}


def payment(ref: str, amount: str = "1280.00") -> dict[str, Any]:
    return {"payment_amount": amount, "payment_channel": "bank", "payment_reference": ref}


def ledger_entries(url: str) -> list[Any]:
    """The ledger's entries in order, whatever rows they were sealed into."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return [e for (text,) in conn.execute(sa.text("SELECT entries FROM ledger ORDER BY seq"))
                    for e in json.loads(text)]
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh databases on one backend: one for actions one at a time, one for the batch."""
    new = fresh_urls(request, tmp_path, request.param)
    return new("one"), new("many")


def cases(eng: Any) -> tuple[list[int], list[int]]:
    """Four complaints and three dunning cases, started at the same instants on any engine."""
    complaints = [eng.start("complaint", "liu_fang", {**COMPLAINT, "unit": f"{3 + i % 2}-120{i + 1}"}, at=AT).id
                  for i in range(4)]
    dunning = [eng.start("dunning", "li_qiang", {**DUNNING, "unit": f"5-030{i}"}, at=AT).id for i in range(3)]
    return complaints, dunning


def office_batch(complaints: list[int], dunning: list[int]) -> list[ActItem]:
    """Several actions on one instance in order, claims, records, assignments, payments."""
    later = AT + timedelta(days=2)  # past the complaints' first SLA steps: catch-up fires first
    items = []
    for n, c in enumerate(complaints):
        items += [ActItem(c, "record", data={"priority": "high"}, staff="li_qiang"),
                  ActItem(c, action="investigate", staff="chen_jing"),
                  ActItem(c, action="record_findings", data=FINDINGS, staff="chen_jing", at=later)]
        if n % 2:
            items += [ActItem(c, action="interim_reply", data=INTERIM, staff="chen_jing", at=later)]
    items += [ActItem(complaints[0], "assign", assignee="wang_li", staff="li_qiang", at=later)]
    items += [ActItem(d, action="record_payment", data=payment(f"BK{d}"), at=later) for d in dunning]
    return items


def one_at_a_time(eng: Any, item: ActItem, staff: str) -> Any:
    who = item.staff or staff
    if item.command == "claim":
        return eng.claim(item.instance_id, who, at=item.at or AT, expected_revision=item.expected_revision)
    if item.command == "assign":
        return eng.assign(item.instance_id, item.assignee, who, at=item.at or AT,
                          expected_revision=item.expected_revision)
    if item.command == "record":
        return eng.record(item.instance_id, who, item.data, at=item.at or AT, expected_revision=item.expected_revision)
    return eng.advance(item.instance_id, item.action, who, item.data, at=item.at or AT,
                       expected_revision=item.expected_revision)


def test_a_batch_of_actions_leaves_exactly_the_tables_the_same_actions_one_at_a_time_leave(two_urls) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(AT)
    one, many = (build(u, clock) for u in two_urls)
    try:
        ids = cases(one)
        assert cases(many) == ids
        items = office_batch(*ids)
        singles = [one_at_a_time(one, it, "lin_cai") for it in items]
        assert many.act_many(items, "lin_cai", at=AT) == singles
        assert dump(two_urls[1]) == dump(two_urls[0])          # events, chains, projections, timers, outbox
        assert ledger_entries(two_urls[1]) == ledger_entries(two_urls[0])
        assert all(many.replay(i).ok for i in range(1, 8))
        assert many.verify()[2] is None
    finally:
        one.close()
        many.close()


def test_dun12_a_bank_file_closes_many_dunning_cases_in_one_transaction(tmp_path: Path) -> None:
    eng = build(f"sqlite:///{tmp_path / 'sop.db'}", FakeClock(AT))
    try:
        _, dunning = cases(eng)
        paid = eng.act_many([ActItem(d, action="record_payment", data=payment(f"BK{d}")) for d in dunning],
                            "lin_cai", at=AT + timedelta(hours=2))
        assert [p.status for p in paid] == ["completed"] * 3
        with eng.read() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar() == 1 + 7  # seven starts, one batch
    finally:
        eng.close()


def test_a_refused_item_refuses_the_batch_naming_every_bad_item_and_field_and_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sop.db'}"
    eng = build(url, FakeClock(AT))
    try:
        complaints, dunning = cases(eng)
        before = dump(url)
        items = [ActItem(complaints[0], action="investigate", staff="chen_jing"),
                 ActItem(complaints[1], action="record_findings", data={"findings": ""}, staff="chen_jing"),
                 ActItem(dunning[0], action="record_payment", data=payment("BK1")),
                 ActItem(dunning[0], action="record_payment", data=payment("BK1")),   # the same receipt again
                 ActItem(999, action="investigate", staff="chen_jing"),
                 ActItem(complaints[2], action="check_effect", staff="chen_jing")]
        with pytest.raises(ItemsInvalid) as refused:
            eng.act_many(items, "lin_cai", at=AT)
        assert [n for n, _ in refused.value.rows] == [2, 4, 5, 6]
        assert any(fe.field.startswith("item 2: ") for fe in refused.value.errors)
        assert "nothing written" in str(refused.value)
        assert dump(url) == before
    finally:
        eng.close()


def test_an_items_expected_revision_is_checked_against_the_instance_as_the_items_before_left_it(tmp_path: Path) -> None:
    eng = build(f"sqlite:///{tmp_path / 'sop.db'}", FakeClock(AT))
    try:
        c = cases(eng)[0][0]
        rev = eng.show(c).revision
        done = eng.act_many([ActItem(c, "record", data={"priority": "high"}, staff="li_qiang",
                                     expected_revision=rev)], at=AT)
        rev = done[0].revision
        with pytest.raises(ItemsInvalid) as refused:
            eng.act_many([ActItem(c, action="investigate", staff="chen_jing", expected_revision=rev),
                          ActItem(c, action="record_findings", data=FINDINGS, staff="chen_jing",
                                  expected_revision=rev)], at=AT)
        assert [(n, type(e)) for n, e in refused.value.rows] == [(2, ConcurrencyConflict)]
    finally:
        eng.close()


_ACTIONS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["claim", "investigate", "findings", "interim",
                                                                  "assign", "record"])), min_size=1, max_size=14)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=_ACTIONS)
def test_any_interleaving_of_items_gives_what_one_at_a_time_gives_refusals_included(tmp_path_factory, plan) -> None:  # type: ignore[no-untyped-def]
    """Random items over four complaints: where every item is accepted one at a time the
    batch leaves the same tables; where one is refused, the batch refuses that very item."""
    tmp = tmp_path_factory.mktemp("h")
    urls = f"sqlite:///{tmp / 'one.db'}", f"sqlite:///{tmp / 'many.db'}"
    clock = FakeClock(AT)
    one, many = (build(u, clock) for u in urls)
    try:
        ids = [one.start("complaint", "liu_fang", COMPLAINT, at=AT).id for _ in range(4)]
        assert [many.start("complaint", "liu_fang", COMPLAINT, at=AT).id for _ in range(4)] == ids
        make = {"claim": lambda i: ActItem(i, "claim", staff="chen_jing"),
                "investigate": lambda i: ActItem(i, action="investigate", staff="chen_jing"),
                "findings": lambda i: ActItem(i, action="record_findings", data=FINDINGS, staff="chen_jing"),
                "interim": lambda i: ActItem(i, action="interim_reply", data=INTERIM, staff="chen_jing"),
                "assign": lambda i: ActItem(i, "assign", assignee="wang_li", staff="li_qiang"),
                "record": lambda i: ActItem(i, "record", data={"priority": "high"}, staff="li_qiang")}
        items = [make[kind](ids[k]) for k, kind in plan]
        refused = []
        for n, it in enumerate(items, 1):
            try:
                one_at_a_time(one, it, "li_qiang")
            except Exception:  # noqa: BLE001  (which item, not why: the batch must refuse the same)
                refused.append(n)
        if refused:
            with pytest.raises(ItemsInvalid) as err:
                many.act_many(items, at=AT)
            assert [n for n, _ in err.value.rows] == refused
        else:
            many.act_many(items, at=AT)
            assert dump(urls[1]) == dump(urls[0])
            assert ledger_entries(urls[1]) == ledger_entries(urls[0])
    finally:
        one.close()
        many.close()


# ---------------------------------------------------------------- over HTTP and the CLI

def _payments(dunning: list[int], at: str = "2025-10-11T10:00:00+08:00") -> list[dict[str, Any]]:
    return [{"instance": d, "action": "record_payment", "data": payment(f"BK{d}"), "at": at} for d in dunning]


def test_dun12_post_actions_closes_many_dunning_cases_and_answers_per_item(api) -> None:  # type: ignore[no-untyped-def]
    from tests.api_support import issue_tokens
    api.tokens.update(issue_tokens(api.engine, ("lin_cai",)))
    _, dunning = cases(api.engine)
    r = api.as_("lin_cai").post("/v1/actions", json=_payments(dunning))
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    assert [(i["instance"], i["status"]) for i in got] == [(d, "completed") for d in dunning]
    assert [i["revision"] for i in got] == [api.engine.show(d).revision for d in dunning]


def test_post_actions_refuses_every_bad_item_under_its_index_and_writes_nothing(api) -> None:  # type: ignore[no-untyped-def]
    from tests.api_support import issue_tokens
    api.tokens.update(issue_tokens(api.engine, ("lin_cai",)))
    complaints, dunning = cases(api.engine)
    revisions = [api.engine.show(d).revision for d in dunning]
    body = _payments(dunning)
    body[1]["data"] = {**body[1]["data"], "payment_amount": "0"}
    body.append({"instance": complaints[0], "action": "investigate"})          # finance may not investigate
    body.append({"instance": dunning[0], "claim": True, "revision": "7"})
    r = api.as_("lin_cai").post("/v1/actions", json=body)
    assert r.status_code == 422, r.text
    paths = [e["path"] for e in r.json()["errors"]]
    assert paths == ["4.revision"]       # the items' shapes first, before the engine looks at any
    del body[4]
    r = api.as_("lin_cai").post("/v1/actions", json=body)
    assert r.status_code == 422 and [e["path"] for e in r.json()["errors"]] == ["1.data.payment_amount", "3"]
    assert [api.engine.show(d).revision for d in dunning] == revisions
    r = api.as_("lin_cai").post("/v1/actions", json=[{"instance": dunning[0], "claim": True, "as": "li_qiang"}])
    assert r.status_code == 403


def test_sop_act_batch_reads_json_lines_from_stdin_and_names_the_line_of_each_refused_item(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cli import main
    lines = [json.dumps(p, ensure_ascii=False) for p in _payments([1, 2])]
    for args in (["start", "dunning", "--as", "li_qiang", "--at", "2025-10-10T09:00", "--data",
                  json.dumps({**DUNNING, "unit": u})] for u in ("3-1201", "5-0301")):
        assert runner.invoke(main, args).exit_code == 0
    bad = runner.invoke(main, ["act", "--batch", "-", "--as", "lin_cai"],
                        input=lines[0] + "\n\n" + lines[1].replace("1280.00", "0") + "\n")
    assert bad.exit_code == 1
    assert "1 of 2 items refused, nothing written" in bad.output
    assert "<stdin>:3: item 2: payment_amount:" in bad.output
    ok = runner.invoke(main, ["act", "--batch", "-", "--as", "lin_cai"], input="[" + ",".join(lines) + "]")
    assert ok.exit_code == 0, ok.output
    assert "2 项操作已在一个事务中完成（2 个实例）" in ok.output and "completed" in ok.output


def test_dun12_the_bank_file_of_docs_api_closes_its_dunning_cases_with_sop_act_batch(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The example of docs/api.md ("Batch actions"), run as written."""
    from cli import main
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    batch = text.split("```jsonl\n", 1)[1].split("```", 1)[0]
    command = text.split("```sh\nsop act --batch payments.jsonl ", 1)[1].split("\n", 1)[0].split()
    (tmp_path / "payments.jsonl").write_text(batch, encoding="utf-8")
    for unit, due in (("3-1201", "1280.00"), ("5-0301", "342.00")):
        args = ["start", "dunning", "--as", "li_qiang", "--at", "2025-10-10T09:00", "--data",
                json.dumps({**DUNNING, "unit": unit, "amount_due": due})]
        assert runner.invoke(main, args).exit_code == 0
    done = runner.invoke(main, ["act", "--batch", str(tmp_path / "payments.jsonl"), *command])
    assert done.exit_code == 0, done.output
    assert "2 项操作已在一个事务中完成（2 个实例）" in done.output and done.output.count("completed") == 2


def test_a_resent_batch_with_its_idempotency_key_answers_the_first_answer_and_writes_nothing(api) -> None:  # type: ignore[no-untyped-def]
    from tests.api_support import issue_tokens
    api.tokens.update(issue_tokens(api.engine, ("lin_cai",)))
    _, dunning = cases(api.engine)
    finance = api.as_("lin_cai")
    first = finance.post("/v1/actions", json=_payments(dunning), headers={"Idempotency-Key": "bank-2025-10-11"})
    assert first.status_code == 200, first.text
    revisions = [api.engine.show(d).revision for d in dunning]
    again = finance.post("/v1/actions", json=_payments(dunning), headers={"Idempotency-Key": "bank-2025-10-11"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [api.engine.show(d).revision for d in dunning] == revisions
    other = finance.post("/v1/actions", json=_payments(dunning[:1]), headers={"Idempotency-Key": "bank-2025-10-11"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_cmp9_a_supervisors_batch_closes_complaints_after_their_callbacks_as_one_at_a_time_would(two_urls) -> None:  # type: ignore[no-untyped-def]
    """批量回访结案: resolving spawns each callback inside the batch, the callbacks are done
    and each complaint closes only once its callback is no longer open (CMP-9), the guard
    reading the callback as the batch has left it."""
    from tests.test_rules_complaint_callback import REPLY, RESULT, VISIT
    clock = FakeClock(AT)
    one, many = (build(u, clock) for u in two_urls)
    try:
        for eng in (one, many):
            for unit in ("3-1201", "4-1502"):
                c = eng.start("complaint", "liu_fang", {**COMPLAINT, "unit": unit}, at=AT)
                eng.advance(c.id, "investigate", c.assignee, at=AT)
                eng.advance(c.id, "reply", c.assignee, REPLY, at=AT)
        later = AT + timedelta(hours=3)
        items = [ActItem(1, action="resolve", data=RESULT, staff="chen_jing"),
                 ActItem(2, action="resolve", data=RESULT, staff="li_qiang"),
                 ActItem(3, action="record_callback", data=VISIT), ActItem(3, action="check", data={"check_passed": True}),
                 ActItem(3, action="sign_opinion", data={"opinion": "同意", "head_signature": "sig:张华"},
                         staff="zhang_hua"),
                 ActItem(1, action="check_effect", data={"effective": True})]
        singles = [one_at_a_time(one, it, "li_qiang") for it in items]
        refused = ActItem(2, action="check_effect", data={"effective": True})
        with pytest.raises(Exception, match="回访尚未完成"):
            one_at_a_time(one, refused, "li_qiang")
        if two_urls[0].startswith("sqlite"):  # (PostgreSQL's id sequence does not roll back)
            with pytest.raises(ItemsInvalid, match="回访尚未完成") as err:
                many.act_many([*items, refused], "li_qiang", at=later)
            assert [n for n, _ in err.value.rows] == [7]    # #2's callback is still open in the batch
        assert many.act_many(items, "li_qiang", at=AT) == singles
        assert [(i.id, i.state) for i in singles if i.id in (1, 3)][-2:] == [(3, "closed"), (1, "closed")]
        assert dump(two_urls[1]) == dump(two_urls[0])
        assert ledger_entries(two_urls[1]) == ledger_entries(two_urls[0])
    finally:
        one.close()
        many.close()


def test_a_batch_whose_instance_moved_on_meanwhile_is_a_conflict_and_writes_nothing(two_urls) -> None:  # type: ignore[no-untyped-def]
    """The projection UPDATEs are guarded by the revision each instance was loaded at, and
    the batch counts what they matched (sqlite3's executemany, psycopg's pipeline alike)."""
    eng = build(two_urls[1], FakeClock(AT))
    try:
        complaints, _ = cases(eng)
        before = dump(two_urls[1])

        def meanwhile(engine: Any, conn: Any, *rest: Any) -> None:  # another writer, simulated
            conn.exec_driver_sql(f"UPDATE instances SET revision = revision + 100 WHERE id = {complaints[1]}")

        eng.hooks.append(meanwhile)
        with pytest.raises(ConcurrencyConflict):
            eng.act_many([ActItem(c, "record", data={"priority": "high"}, staff="li_qiang") for c in complaints],
                         at=AT)
        eng.hooks.remove(meanwhile)
        assert dump(two_urls[1]) == before
    finally:
        eng.close()


@pytest.mark.parametrize("item, field", [
    ({"action": "investigate"}, "instance"), ({"instance": 0, "claim": True}, "instance"),
    ({"instance": 1}, "action"), ({"instance": 1, "claim": True, "assign": "wang_li"}, "action"),
    ({"instance": 1, "claim": True, "data": {}}, "data"), ({"instance": 1, "record": []}, "record"),
    ({"instance": 1, "claim": "yes"}, "claim"), ({"instance": 1, "assign": ""}, "assign"),
    ({"instance": 1, "action": "x", "revision": "7"}, "revision"), ({"instance": 1, "action": "x", "when": 1}, "when"),
    ({"instance": 1, "action": "x", "at": "yesterday"}, "at"), ("investigate 1", "item")])
def test_a_malformed_item_is_named_by_its_number_and_field_before_anything_runs(item, field) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime.batch import items_from_json

    def parse_time(text: str, name: str) -> Any:
        from datetime import datetime
        from engine.errors import InputError
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise InputError(name, "not an ISO 8601 time") from None

    with pytest.raises(ItemsInvalid) as refused:
        items_from_json([{"instance": 1, "claim": True}, item], parse_time)
    assert [n for n, _ in refused.value.rows] == [2]
    assert refused.value.rows[0][1].argument == field


def test_two_batches_naming_the_same_cases_in_opposite_orders_both_commit_on_postgresql(pg_url: str) -> None:
    """Each batch locks its instances in id order before deciding anything, so two batches
    over the same cases queue instead of deadlocking, whatever order their items are in."""
    import threading

    engines = [build(pg_url, FakeClock(AT)) for _ in range(2)]
    try:
        complaints, _ = cases(engines[0])
        first = [engines[0].show(c).revision for c in complaints]
        orders = [complaints, complaints[::-1]]
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def run(k: int) -> None:
            items = [ActItem(c, "record", data={"priority": "high" if k else "normal"}, staff="li_qiang")
                     for c in orders[k]]
            start.wait()
            try:
                for _ in range(5):
                    engines[k].act_many(items, at=AT)
            except BaseException as e:  # noqa: BLE001  (reported below)
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert errors == []
        revisions = [engines[0].show(c).revision for c in complaints]
        assert [r - f for r, f in zip(revisions, first)] == [10] * len(complaints)   # all ten batches landed
        assert all(engines[0].replay(c).ok for c in complaints) and engines[0].verify()[2] is None
    finally:
        for eng in engines:
            eng.close()
