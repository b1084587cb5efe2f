"""Property tests of the log: replay gives the stored state, and tampering is always found.

1. Any random sequence of commands (start, advance with generated form data, record, claim,
   assign, with time moving on so SLA clocks fire) leaves every instance such that replaying
   its log gives exactly the stored instance, its typed clocks give back the stored
   ``instances.clocks`` column byte for byte, and every hash chain verifies. A refused command
   changes nothing. Form data is generated from the form definitions themselves.
2. Altering any stored value of any event (raw sqlite3 UPDATE on ``events``), or any replayed
   column of the ``instances`` row, is detected by ``audit verify`` or by replay.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from cli import main
from engine.codec import Clock as TypedClock, clocks_to_json
from engine.errors import EngineError
from engine.runtime.config import Settings, build_engine
from engine.spec.forms import FieldSpec, FormSpec

from conftest import ROOT, SHANGHAI

PROCEDURES = ["complaint", "callback"]          # the engine core's procedures; children are followed too
T0 = datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI)
NAMED = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
         "content": "楼上漏水", "anonymous": False}
SETTINGS = settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

def fresh_engine(folder: str, clock: Any) -> Any:
    s = Settings(f"sqlite:///{folder}/sop.db", ROOT / "procedures", ROOT / "org" / "demo.yaml")
    return build_engine(s, clock)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


# ------------------------------------------------------------------ form data from form definitions

TEXT = "漏水噪音已处理业主满意abcXYZ019 "


def value_of(f: FieldSpec) -> st.SearchStrategy[Any]:
    t = f.type
    if t == "text":
        return st.text(TEXT, min_size=1, max_size=min(12, f.max_length)).filter(str.strip)
    if t == "integer":
        lo = int(f.min) if f.min is not None else -5
        return st.integers(lo, int(f.max) if f.max is not None else lo + 50)
    if t == "money":
        lo = f.min if f.min is not None else Decimal(0)
        return st.decimals(lo, f.max if f.max is not None else lo + 10000, places=2).map(str)
    if t == "bool":
        return st.booleans()
    if t == "date":
        return st.dates(date(2025, 9, 1), date(2025, 12, 31)).map(date.isoformat)
    if t == "datetime":
        return st.datetimes(datetime(2025, 9, 1), datetime(2025, 12, 31), timezones=st.just(SHANGHAI)) \
            .map(lambda d: d.isoformat())
    if t == "enum":
        return st.sampled_from(f.options or [])
    if t == "phone":
        return st.sampled_from(["13912345678", "0571-88886666", "400-820-8820"])
    if t == "unit":
        return st.sampled_from(["1-101", "3-1201", "7-301", "A2-1-502"])
    if t in ("attachment", "signature"):
        return st.text("abc123", min_size=1, max_size=6).map(lambda s: f"ref:{s}")
    if t == "checklist":
        return st.fixed_dictionaries({k: st.fixed_dictionaries({"result": st.sampled_from(["pass", "fail"])})
                                      for k in f.items or {}})
    if t == "staff":  # people of the org file, and one that is not (refused, changing nothing)
        return st.sampled_from(["wang_li", "chen_jing", "li_qiang", "nobody_here"])
    if t == "instance":  # early ids exist (or are of another procedure), late ones do not
        return st.integers(1, 12)
    raise AssertionError(t)


def data_for(form: FormSpec | None) -> st.SearchStrategy[dict[str, Any]]:
    if form is None:
        return st.just({})
    required = {n: value_of(f) for n, f in form.fields.items()
                if f.required and f.required_if is None and f.default is None}
    optional = {n: value_of(f) for n, f in form.fields.items() if n not in required}
    return st.fixed_dictionaries(required, optional=optional)


# ------------------------------------------------------------------ 1. replay equals the stored state

def _staff_for(engine: Any, roles: list[str]) -> list[str]:
    return [s.id for s in engine.org.staff if set(s.roles) & set(roles)]


def _one_command(draw: Any, engine: Any, ids: list[int]) -> tuple[str, Any]:
    everyone = [s.id for s in engine.org.staff]
    kind = draw(st.sampled_from(["advance"] * 6 + ["start", "record", "claim", "assign"])) if ids else "start"
    if kind == "start":
        proc = engine.library.get(draw(st.sampled_from(PROCEDURES)))
        who = draw(st.sampled_from(_staff_for(engine, proc.spec.start.roles)))
        data = draw(data_for(proc.form(proc.spec.start.form)))
        return kind, lambda at: engine.start(proc.id, who, data, at)
    iid = draw(st.sampled_from(ids))
    inst = engine.show(iid)
    proc = engine.library.get(inst.procedure)
    if kind == "advance":
        actions = engine.available_actions(inst)
        if not actions:
            return "none", None
        a = draw(st.sampled_from(actions))
        who = draw(st.sampled_from(_staff_for(engine, a["roles"]) if draw(st.integers(0, 9)) else everyone))
        data = draw(data_for(proc.form(a["form"])))
        return f"advance {a['name']}", lambda at: engine.advance(iid, a["name"], who, data, at)
    if kind == "record":
        name = draw(st.sampled_from(sorted(proc.fields)))
        value = draw(value_of(proc.fields[name]))
        who = draw(st.sampled_from(everyone))
        return kind, lambda at: engine.record(iid, who, {name: value}, at)
    if kind == "claim":
        who = draw(st.sampled_from(everyone))
        return kind, lambda at: engine.claim(iid, who, at)
    to = draw(st.sampled_from(everyone))
    return kind, lambda at: engine.assign(iid, to, draw(st.sampled_from(["li_qiang", "zhang_hua", "chen_jing"])), at)


@settings(SETTINGS, max_examples=12)
@given(st.data())
def test_replaying_any_random_command_sequence_gives_the_stored_state(data: st.DataObject) -> None:
    clock = Clock(T0)
    with tempfile.TemporaryDirectory() as folder:
        engine = fresh_engine(folder, clock)
        ids: list[int] = []
        for _ in range(data.draw(st.integers(3, 14), label="steps")):
            clock.t += timedelta(minutes=data.draw(st.integers(0, 600), label="minutes later"))
            kind, command = _one_command(data.draw, engine, ids)
            if command is None:
                continue
            before = {i: engine.show(i) for i in ids}
            try:
                inst = command(clock.t)
            except EngineError:
                assert {i: engine.show(i) for i in ids} == before, f"refused {kind} changed an instance"
                continue
            ids = sorted(set(ids) | {inst.id, *inst.children})
            assert clocks_to_json(inst.clocks) == _stored_clocks(folder, inst.id), f"{kind}: typed clocks"
            for i in [inst.id, *inst.children]:
                r = engine.replay(i)
                assert r.ok, f"after {kind}: #{i} replay differs at seq {r.seq}: {r.difference}"
                shown = engine.show(i).clocks
                assert all(type(c) is TypedClock for c in shown.values())
                assert clocks_to_json(shown) == _stored_clocks(folder, i), f"after {kind}: #{i} typed clocks"
        for i in ids:
            r = engine.replay(i)
            assert r.ok, f"#{i} replay differs at seq {r.seq}: {r.difference}"
        assert engine.verify()[2] is None
        engine.close()


def _stored_clocks(folder: str, iid: int) -> str:
    """The ``instances.clocks`` column as stored: the typed clocks must give it back byte for byte."""
    with sqlite3.connect(f"{folder}/sop.db") as con:
        return str(con.execute("SELECT clocks FROM instances WHERE id = ?", (iid,)).fetchone()[0])


# ------------------------------------------------------------------ 2. tampering is detected

@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small office history: a complaint with its callback, and an anonymous complaint."""
    folder = tmp_path_factory.mktemp("history")
    clock = Clock(T0)
    engine = fresh_engine(str(folder), clock)

    def at(minutes: int) -> datetime:
        clock.t += timedelta(minutes=minutes)
        return clock.t

    c = engine.start("complaint", "liu_fang", NAMED, at(10))
    engine.advance(c.id, "investigate", "chen_jing", at=at(30))
    engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"}, at=at(60))
    c = engine.advance(c.id, "resolve", "chen_jing", {"handling_result": "已修复"}, at=at(60))
    engine.advance(c.children[0], "record_callback", "li_qiang", {
        "method": "phone", "satisfaction": "satisfied", "callback_notes": "满意"}, at=at(60 * 24))
    a = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True}, at(10))
    engine.claim(a.id, "li_qiang", at(10))
    engine.close()
    path = folder / "sop.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _rows(path: Path, table: str) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        return con.execute(f"SELECT rowid AS _rowid, * FROM {table} ORDER BY rowid").fetchall()


STAMP = "%Y-%m-%d %H:%M:%S.%f"


@st.composite
def altered(draw: Any, value: Any, column: str, json_stays_json: bool = False) -> Any:
    """A different value for a stored cell, changed at one drawn position (keeping it readable)."""
    if column in ("occurred_at", "recorded_at", "started_at", "last_occurred_at"):
        shift = draw(st.integers(-10**12, 10**12).filter(bool))
        return (datetime.strptime(value, STAMP) + timedelta(microseconds=shift)).strftime(STAMP)
    if column in ("seq", "revision", "instance_id", "id", "parent_id"):
        return (value or 0) + draw(st.sampled_from([1, -1, 1000]))
    if value is None:
        return draw(st.sampled_from(["steward", "chen_jing", "x"]))
    if column in ("data", "clocks") and (json_stays_json or draw(st.booleans())):      # a readable JSON edit
        obj = json.loads(value)
        key = draw(st.sampled_from(sorted(obj) or ["k"]))
        obj[key] = draw(st.sampled_from(["", "已处理", 0, True, None, {"x": 1}]).filter(lambda v: v != obj.get(key)))
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = str(value)
    i = draw(st.integers(0, max(len(text) - 1, 0)))
    ch = draw(st.sampled_from("0a9fZ处{}\" :,").filter(lambda c: not text or c != text[i]))
    return text[:i] + ch + text[i + 1:]


def _detected(path: Path) -> bool:
    clock = Clock(T0 + timedelta(days=30))
    engine = build_engine(Settings(f"sqlite:///{path}", ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
    try:
        if engine.verify()[2] is not None:
            return True
        ids = [r["id"] for r in _rows(path, "instances")]
        return not all(engine.replay(i).ok for i in ids)
    finally:
        engine.close()


def _tamper(history_db: Path, table: str, rowid: int, column: str, value: Any) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / "sop.db"
    shutil.copyfile(history_db, path)
    try:
        with sqlite3.connect(path) as con:
            con.execute(f'UPDATE {table} SET "{column}" = ? WHERE rowid = ?', (value, rowid))
    except sqlite3.IntegrityError:
        assume(False)                     # e.g. a duplicate (instance_id, seq): the database refuses it
    return path


EVENT_COLUMNS = ["instance_id", "seq", "type", "actor", "role", "occurred_at", "recorded_at", "data",
                 "prev_hash", "hash"]
INSTANCE_COLUMNS = ["id", "procedure", "version", "state", "status", "assignee", "assignee_role", "data",
                    "clocks", "parent_id", "revision", "last_hash"]


@SETTINGS
@given(st.data())
def test_altering_any_stored_event_is_detected(history_db: Path, data: st.DataObject) -> None:
    rows = _rows(history_db, "events")
    row = data.draw(st.sampled_from(rows), label="event")
    column = data.draw(st.sampled_from(EVENT_COLUMNS), label="column")
    value = data.draw(altered(row[column], column), label="new value")
    assume(value != row[column])
    path = _tamper(history_db, "events", row["_rowid"], column, value)
    try:
        assert _detected(path), f"events #{row['instance_id']}/{row['seq']}.{column} = {value!r} went unnoticed"
    finally:
        shutil.rmtree(path.parent)


@SETTINGS
@given(st.data())
def test_altering_the_instances_row_is_detected(history_db: Path, data: st.DataObject) -> None:
    rows = _rows(history_db, "instances")
    row = data.draw(st.sampled_from(rows), label="instance")
    column = data.draw(st.sampled_from(INSTANCE_COLUMNS), label="column")
    value = data.draw(altered(row[column], column, json_stays_json=True), label="new value")
    assume(value != row[column])
    path = _tamper(history_db, "instances", row["_rowid"], column, value)
    try:
        assert _detected(path), f"instances #{row['id']}.{column} = {value!r} went unnoticed"
    finally:
        shutil.rmtree(path.parent)


def test_sop_audit_verify_names_the_first_broken_link(history_db: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner
    path = tmp_path / "sop.db"
    shutil.copyfile(history_db, path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE events SET data = replace(data, '已修复', '未修复') WHERE instance_id = 1")
    r = CliRunner(env={"SOP_DB": f"sqlite:///{path}"}).invoke(main, ["--json", "audit", "verify"])
    assert r.exit_code == 1
    broken = json.loads(r.stdout)["broken"]
    assert broken["instance"] == 1 and broken["reason"] == "hash does not match the event's content (altered)"


@pytest.mark.parametrize("column", ["started_at", "last_occurred_at"])
def test_altering_the_instances_times_is_detected(history_db: Path, column: str) -> None:
    row = _rows(history_db, "instances")[0]
    value = (datetime.strptime(row[column], STAMP) - timedelta(days=3)).strftime(STAMP)
    path = _tamper(history_db, "instances", row["_rowid"], column, value)
    try:
        assert _detected(path)
    finally:
        shutil.rmtree(path.parent)


UNREADABLE = [
    ("events", "occurred_at", "2025-19-30 01:00:00.000000"),       # not a date any more
    ("events", "recorded_at", 20250930),                           # not even text: a number
    ("events", "data", "{\"changes\":"),                           # not JSON any more: verify finds it, replay crashes
    ("instances", "data", "{"),
]


@pytest.mark.parametrize("table, column, value", UNREADABLE,
                         ids=[f"{t}.{c}.{type(v).__name__}" for t, c, v in UNREADABLE])
def test_tampering_that_makes_a_value_unreadable_is_reported_not_a_crash(history_db: Path, table: str, column: str,
                                                                         value: Any) -> None:
    path = _tamper(history_db, table, 2, column, value)
    try:
        clock = Clock(T0 + timedelta(days=30))
        engine = build_engine(Settings(f"sqlite:///{path}", ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
        try:
            for iid in (1, 2, 3):
                assert not engine.replay(iid).ok or engine.verify()[2] is not None
            if column.endswith("_at"):  # history says which time is unreadable instead of a traceback
                refused = []
                for iid in (1, 2, 3):
                    try:
                        engine.history(iid)
                    except EngineError as e:
                        refused.append(str(e))
                assert len(refused) == 1 and "unreadable" in refused[0]
        finally:
            engine.close()
    finally:
        shutil.rmtree(path.parent)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@given(_JSON_VALUES)
def test_hashed_serialisation_is_byte_for_byte_the_canonical_json_dumps(value: Any) -> None:
    """Chains hashed before the encoder was built once must still verify: same text for any value."""
    from engine.audit import canonical_json

    assert canonical_json(value) == json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------ remembered time texts

_ZONES = st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", "UTC", "Australia/Lord_Howe"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)),
                          _ZONES, st.sampled_from([0, 1])), min_size=1, max_size=40))
def test_remembered_time_texts_equal_the_formatted_ones(times: list[tuple[datetime, str, int]]) -> None:
    """The hashed and the stored text of a time are remembered per instant; two instants
    with one wall time (a DST fold) must never share one (the key holds fold and zone)."""
    from datetime import timezone
    from zoneinfo import ZoneInfo

    from engine.audit import iso_utc
    from engine.store.backends.sqlite import to_db

    folds = [(datetime(2025, 11, 2, 1, 30), "America/New_York", 0), (datetime(2025, 11, 2, 1, 30), "America/New_York", 1)]
    for wall, zone, fold in folds + times + folds[::-1] + times[::-1]:
        t = wall.replace(tzinfo=ZoneInfo(zone), fold=fold)
        utc = t.astimezone(timezone.utc)
        assert iso_utc(t) == utc.isoformat(timespec="microseconds")
        assert to_db(t) == utc.replace(tzinfo=None).isoformat(" ", "microseconds")
