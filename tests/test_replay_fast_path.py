"""The read side's fast path (replay, history, verify) gives exactly what the plain path gives.

Replay and verification read every event: their rows go straight from the SQLite driver
into records (``prepared.Prepared.all_unprocessed``), times through an exact equivalent of SQLAlchemy's
processor, JSON through the decoder's scanner, events folded on a draft. Each shortcut is
checked here against what it replaces: value for value and error for error, and, on a
scripted store (intact and tampered), the engine's results against the same engine forced
onto SQLAlchemy's own execution (a ``before_cursor_execute`` listener turns every
``Prepared`` statement back into ``Connection.execute``).
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from engine import audit
from engine.clock import FakeClock
from engine.core import evolve as ev
from engine.core.model import Event, Instance
from engine.runtime.config import Settings, build_engine
from engine.store import prepared, tables
from engine.store import log as event_log
from tests.conftest import ROOT, SHANGHAI

STAMP = "%Y-%m-%d %H:%M:%S.%f"
COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}


def outcome(read: Callable[[Any], Any], value: Any) -> tuple[Any, ...]:
    """What a reader makes of a value: the value with its zone and fold, or its error."""
    try:
        got = read(value)
    except Exception as e:  # noqa: BLE001  (comparing whatever each raises)
        return ("error", type(e), str(e))
    if isinstance(got, datetime):
        return ("time", got, got.tzinfo, got.fold)
    return ("value", got, type(got))


# ------------------------------------------------------------------ times

SQLITE = sa.create_engine("sqlite://").dialect
TIME_TYPE = tables.events.c.occurred_at.type
SQLALCHEMY_READS = TIME_TYPE.dialect_impl(SQLITE).result_processor(SQLITE, None)
FAST_READS = prepared._result_processor(TIME_TYPE, SQLITE)

stored_times = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(lambda t: t.strftime(STAMP))
aware_times = st.tuples(st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8)),
                                                                timezone(timedelta(hours=-5, minutes=-30))])),
                        st.sampled_from(" T")).map(lambda t: t[0].isoformat(sep=t[1]))
near_times = stored_times.flatmap(lambda s: st.integers(0, len(s)).flatmap(
    lambda i: st.sampled_from("0912-:. TZ+x").map(lambda c: s[:i] + c + s[i + 1:])))


def test_the_fast_time_reader_is_the_one_in_use() -> None:
    assert FAST_READS is not SQLALCHEMY_READS


@given(st.one_of(stored_times, aware_times, near_times, st.text("0123456789-:. TZ+", max_size=34),
                 st.none(), st.integers(), st.binary(max_size=8)))
def test_stored_times_read_exactly_as_sqlalchemy_reads_them(text: Any) -> None:
    assert outcome(FAST_READS, text) == outcome(SQLALCHEMY_READS, text)


# ------------------------------------------------------------------ JSON and events

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)
SPACE = st.text(" \t\n\r", max_size=2)


@st.composite
def stored_json(draw: Any) -> str:
    """Canonical JSON as stored, or JSON that was tampered with: spaces, a cut, extra text."""
    text = audit.canonical_json(draw(JSON_VALUES))
    kind = draw(st.sampled_from(["as stored", "spaced", "cut", "extra"]))
    if kind == "spaced":
        return draw(SPACE) + text + draw(SPACE)
    if kind == "cut":
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    if kind == "extra":
        return text + draw(st.text("]}, x1\"", min_size=1, max_size=3))
    return text


@given(st.one_of(stored_json(), st.text(max_size=12), st.binary(max_size=6), st.integers()))
def test_stored_json_decodes_exactly_as_json_loads_decodes_it(text: Any) -> None:
    assert outcome(audit.loads, text) == outcome(json.loads, text)


def test_a_decoded_event_is_the_event_its_constructor_makes() -> None:
    at = datetime(2025, 10, 14, 1, 5, 20, tzinfo=timezone.utc)
    fast = audit.decode_event("DataRecorded", "liu_fang", None, at, '{"changes":{"k":1}}', 4, at, "p" * 64, "h" * 64)
    plain = Event("DataRecorded", "liu_fang", None, at, {"changes": {"k": 1}}, seq=4, recorded_at=at,
                  prev_hash="p" * 64, hash="h" * 64)
    assert type(fast) is Event and fast == plain and vars(fast) == vars(plain)
    assert list(vars(fast)) == list(vars(plain))


# ------------------------------------------------------------------ the store, both paths

@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complaint answered and resolved (with its callback child), one claimed, one left
    to breach its reply clock: every kind of event replay folds."""
    path = tmp_path_factory.mktemp("scripted") / "sop.db"
    clock = FakeClock(datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI))
    engine = build_engine(Settings(f"sqlite:///{path}", ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)

    def later(minutes: int) -> datetime:
        clock.advance(timedelta(minutes=minutes))
        return clock.now()

    c = engine.start("complaint", "liu_fang", COMPLAINT, later(10))
    engine.advance(c.id, "investigate", "chen_jing", at=later(30))
    engine.advance(c.id, "record_findings", "chen_jing", FINDINGS, at=later(30))
    engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"}, at=later(60))
    engine.advance(c.id, "resolve", "chen_jing", {"handling_result": "已修复"}, at=later(60))
    a = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True}, later(10))
    engine.claim(a.id, "li_qiang", later(10))
    engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": "5-301"}, later(10))
    engine.tick(later(60 * 24 * 3))
    engine.close()
    return path


def open_engine(path: Path, slow: bool) -> Any:
    clock = FakeClock(datetime(2025, 10, 30, 9, 0, tzinfo=timezone.utc))
    engine = build_engine(Settings(f"sqlite:///{path}", ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
    if slow:
        event.listen(engine.db, "before_cursor_execute", lambda *args: None)
    return engine


def everything_read(path: Path, slow: bool) -> dict[str, Any]:
    """What verify, and replay and history of every instance, return or raise."""
    engine = open_engine(path, slow)
    try:
        with sqlite3.connect(path) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM instances ORDER BY id")]
        return {"verify": outcome(lambda _: engine.verify(), None),
                "replay": [outcome(engine.replay, i) for i in ids],
                "history": [outcome(engine.history, i) for i in ids]}
    finally:
        engine.close()


def tampered(scripted: Path, tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "sop.db"
    shutil.copyfile(scripted, path)
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
    return path


TAMPERING = {
    "intact": "SELECT 1",
    "a time that is no time": "UPDATE events SET occurred_at = '2025-19-30 01:00:00.000000' "
                              "WHERE instance_id = 1 AND seq = 3",
    "a time with a zone": "UPDATE events SET recorded_at = '2025-09-30 01:07:00+08:00' "
                          "WHERE instance_id = 2 AND seq = 2",
    # (reported as unreadable on both paths, not a crash)
    "a time as a number": "UPDATE events SET occurred_at = 20250930 WHERE instance_id = 3 AND seq = 2",
    "data that is no JSON": "UPDATE events SET data = '{\"changes\":' WHERE instance_id = 1 AND seq = 2",
    "data with spaces": "UPDATE events SET data = ' ' || data || ' ' WHERE instance_id = 2 AND seq = 1",
    "data and a later time unreadable": "UPDATE events SET data = CASE seq WHEN 2 THEN '[' ELSE data END, "
                                        "occurred_at = CASE seq WHEN 4 THEN 'x' ELSE occurred_at END "
                                        "WHERE instance_id = 1",
    "an altered value": "UPDATE events SET data = replace(data, 'investigate', 'reply') WHERE instance_id = 1",
    "a missing event": "DELETE FROM events WHERE instance_id = 1 AND seq = 3",
    "instance data that is no JSON": "UPDATE instances SET data = '{' WHERE id = 2",
    "an instance id of 0": "UPDATE instances SET id = 0 WHERE id = 3",
}


@pytest.mark.parametrize("name", TAMPERING)
def test_replay_history_and_verify_read_the_same_on_both_paths(scripted: Path, tmp_path: Path, name: str) -> None:
    path = tampered(scripted, tmp_path, TAMPERING[name])
    fast, slow = everything_read(path, slow=False), everything_read(path, slow=True)
    assert fast == slow
    if name == "intact":
        assert fast["verify"][1][2] is None and all(r[1].ok for r in fast["replay"])
    elif name != "a time with a zone":
        assert str(fast["verify"][1][2]).startswith(FIRST_BREAK[name])


# Where verify finds each tampering first (the same on both paths, as the test above proves).
FIRST_BREAK = {
    "a time that is no time": "instance 1 seq 1: unreadable stored value: month must be in 1..12",
    "a time as a number": "instance 3 seq 1: unreadable stored value: not a time: 20250930",
    "data that is no JSON": "instance 1 seq 2: hash does not match the event's content (altered)",
    "data with spaces": "instance 2 seq 1: hash does not match the event's content (altered)",
    "data and a later time unreadable": "instance 1 seq 1: unreadable stored value: Invalid isoformat string: 'x'",
    "an altered value": "instance 1 seq 6: hash does not match the event's content (altered)",
    "a missing event": "instance 1 seq 3: event seq 3 is missing (found 4)",
    "instance data that is no JSON": "instance 2 seq 1: unreadable stored value: the instance row no longer parses",
    "an instance id of 0": "instance 0 seq 1: log ends at seq 0 but the instance is at revision 7",
}


# ------------------------------------------------------------------ instance rows checked in SQLite

def sqlite_vouches_for(text: Any) -> bool:
    with sqlite3.connect(":memory:") as conn:
        return conn.execute(f"WITH t(v) AS (VALUES (?)) SELECT {event_log._vouched('v')} IS NULL FROM t",
                            (text,)).fetchone()[0] == 1


def python_reads(text: Any) -> bool:
    try:
        json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def test_sqlite_checks_instance_rows_here() -> None:
    with sa.create_engine("sqlite://").connect() as conn:
        assert event_log._sqlite_vouches(conn)


@given(st.one_of(stored_json(), st.text(max_size=12), st.text("[]{}\"\\,:0 \x00\x01ue-.", max_size=30),
                 st.integers(1, 2500).map(lambda n: "[" * n + "]" * n),
                 st.integers(900, 5000).map(lambda n: "1" * n), st.binary(max_size=6)))
def test_sqlite_vouches_only_for_what_json_loads_reads(text: Any) -> None:
    if sqlite_vouches_for(text):
        assert python_reads(text)


ODD_INSTANCE_ROWS = {
    "not JSON": "'{'",
    "JSON only Python reads": "'{\"a\":NaN}'",
    "a NUL after the JSON": "'{}' || char(0) || 'x'",
    "a blob": "x'7b7d'",
    "nested deep": "'" + "[" * 1200 + "]" * 1200 + "'",
    "nested, short": "'" + "[" * 400 + "]" * 400 + "'",
}


@pytest.mark.parametrize("name", ODD_INSTANCE_ROWS)
def test_verify_judges_odd_instance_rows_as_json_loads_does(scripted: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tampered(scripted, tmp_path, f"UPDATE instances SET clocks = {ODD_INSTANCE_ROWS[name]} WHERE id = 3")
    with_sqlite = everything_read(path, slow=False)["verify"]
    monkeypatch.setattr(event_log, "_sqlite_vouches", lambda conn: False)
    assert everything_read(path, slow=False)["verify"] == with_sqlite


def test_verification_pages_through_the_instances(scripted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = everything_read(scripted, slow=False)["verify"]
    monkeypatch.setattr(event_log, "_CHAIN_PAGE", 2)
    assert everything_read(scripted, slow=False)["verify"] == whole
    assert whole[1][0] == 4 and whole[1][2] is None


# ------------------------------------------------------------------ the fold

def test_folding_a_whole_log_gives_the_instance_one_event_at_a_time_gives(scripted: Path) -> None:
    engine = open_engine(scripted, slow=False)
    try:
        for iid in (1, 2, 3, 4):
            events = [r.to_event() for r in engine.history(iid)]
            inst = engine.show(iid)
            proc = engine.library.get(inst.procedure)
            one_at_a_time = ev.start(iid, proc, events[0])
            for e in events[1:]:
                one_at_a_time = ev.evolve(proc, one_at_a_time, e)
            folded = ev.fold(proc, iid, events)
            assert type(folded) is Instance and folded == one_at_a_time
            assert list(vars(folded)) == list(vars(one_at_a_time))
    finally:
        engine.close()


def test_a_fold_that_builds_its_own_instance_is_followed(scripted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An extension fold may return a new Instance instead of ``inst.with_(…)``."""
    from engine.core import clocks

    def rebuilt(proc: Any, inst: Instance, e: Event) -> Instance:
        return Instance(**{**vars(inst), "clocks": {**inst.clocks, e.data["name"]: e.data["clock"]}})

    engine = open_engine(scripted, slow=False)
    try:
        events = [r.to_event() for r in engine.history(4)]
        proc = engine.library.get(engine.show(4).procedure)
        expected = ev.fold(proc, 4, events)
        for t in clocks.CLOCK_EVENTS:
            monkeypatch.setitem(ev._EXTENSIONS, t, rebuilt)
        assert ev.fold(proc, 4, events) == expected
        assert any(e.type in clocks.CLOCK_EVENTS for e in events)
    finally:
        engine.close()
