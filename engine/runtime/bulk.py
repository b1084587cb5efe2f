"""Bulk start: many instances of one procedure in one transaction (a month's fee cycle).

Started one at a time, each instance costs decide + evolve + ``clocks.react`` + append (with its
timers rows) + a commit, and waiting for the commit's fsync is about half of it. Here
the whole batch is one transaction, and it runs in two passes:

1. **Decide every row**, writing nothing: validate it against the start form, decide the
   start, fold the events, let the clocks react. A refused row is collected with its
   row number (counting from 1) instead of stopping the pass, so one ``RowsInvalid``
   names every bad row and field; then nothing is written at all.
2. **Write** the instances, their events, timers and outbox rows with one
   ``executemany`` per table (``engine/store/bulk.py``), call the change hooks, commit.

What is the same for every row is worked out once: the procedure version (saved once),
the actor and their start role, the recording time, and the clocks' due times at the one
start instant (``clocks.react``'s memo). The per-row work is exactly the
one-at-a-time work — the same ``decide_start``, ``evolve`` and ``clocks.react`` — so
every instance gets the events, projection, timers, outbox rows and hash chain it would
have got from ``Engine.start`` at the same instant (``tests/test_bulk_start.py``
compares the two databases table by table).

External keys make a re-run idempotent: a row whose key is already stored is not started
again (nor validated, as ``Engine.start`` does not validate it); its instance is
returned as it is. A key that repeats within one batch is refused as a row error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Sequence

from sqlalchemy.engine import Connection

from engine.core import clocks as clk
from engine.core import decide as dc
from engine.core import evolve as ev
from engine.core.model import Actor, Decision, Event, GENESIS_HASH, Instance
from engine.errors import EngineError, InputError, NotAuthorized, RowsInvalid
from engine.spec.forms import FormSpec, instance_building
from engine.spec.library import CompiledProcedure
from engine.store import bulk as bulk_store
from engine.store import instances as instance_store
from engine.store import log as event_log


WRITE_CHUNK = 1_000  # instances written per round of executemany calls


@dataclass
class BulkStarted:
    """What a bulk start did: every row's instance, in row order, and which were there already."""

    instances: list[Instance]
    existing: list[int] = field(default_factory=list)  # row indexes (from 0) whose key was already stored

    @property
    def started(self) -> list[Instance]:
        present = set(self.existing)
        return [inst for i, inst in enumerate(self.instances) if i not in present]


@dataclass
class _Decided:
    """One row's new instance, decided but not yet written."""

    row: int
    inst: Instance
    events: list[Event]


def start_many(engine: Any, procedure: str, staff: str, rows: Sequence[dict[str, Any]],
               at: Optional[datetime] = None, external_keys: Optional[Sequence[Optional[str]]] = None) -> BulkStarted:
    """Start one instance of ``procedure`` per row, all or nothing, at one instant ``at``."""
    actor, when = engine.actor(staff), engine._time(at)
    proc = engine.library.get(procedure)
    keys = _check_request(proc, actor, rows, external_keys)
    if not rows:
        return BulkStarted([])
    recorded = engine.clock.now()
    with engine.transaction() as conn:
        engine._ensure_version(conn, proc, when)
        found = bulk_store.existing_keys(conn, [k for k in keys if k])
        todo = [i for i, k in enumerate(keys) if not (k and k in found)]
        ids = bulk_store.reserve_ids(conn, len(todo))
        decided = _decide_rows(engine, proc, actor, rows, todo, ids, when)
        started = _write(engine, conn, proc, decided, keys, recorded)
        out: list[Optional[Instance]] = [None] * len(rows)
        for d in started:
            out[d.row] = d.inst
        existing = [i for i, k in enumerate(keys) if k and k in found]
        for i in existing:
            out[i] = instance_store.load_instance(conn, found[keys[i]])  # type: ignore[index]  # existing rows all have keys
    return BulkStarted([inst for inst in out if inst is not None], existing)


def _check_request(proc: CompiledProcedure, actor: Actor, rows: Sequence[dict[str, Any]],
                   external_keys: Optional[Sequence[Optional[str]]]) -> list[Optional[str]]:
    """Refusals that concern the whole batch, before any row is looked at; the keys per row."""
    if actor.id != "system" and not set(proc.spec.start.roles) & actor.roles:
        raise NotAuthorized(actor.id, f"start {proc.id}", proc.spec.start.roles)
    if _start_spawns(proc):
        raise InputError("PROCEDURE", f"{proc.id} starts linked instances when it starts; "
                                      "bulk start does not handle that, start them one at a time")
    if external_keys is None:
        return [None] * len(rows)
    if len(external_keys) != len(rows):
        raise InputError("external_keys", f"{len(external_keys)} keys for {len(rows)} rows; give one per row")
    seen: dict[str, int] = {}
    errors: list[tuple[int, EngineError]] = []
    for n, key in enumerate(external_keys, 1):
        if key is not None and (not isinstance(key, str) or not key):
            errors.append((n, InputError("external key", f"must be non-empty text, not {key!r}")))
        elif key is not None and key in seen:
            errors.append((n, InputError("external key", f"{key!r} repeats row {seen[key]}")))
        elif key is not None:
            seen[key] = n
    if errors:
        raise RowsInvalid(proc.spec.start.form or f"{proc.id} start", errors, len(rows))
    return list(external_keys)


def _start_spawns(proc: CompiledProcedure) -> bool:
    """Whether starting can start linked instances (a spawn effect at the start or on
    entering the first state): their ids would have to come between the batch's."""
    first = proc.spec.states[proc.spec.start.state]
    return any(e.spawn is not None for e in [*proc.spec.start.effects, *first.on_enter])


def _decide_rows(engine: Any, proc: CompiledProcedure, actor: Actor, rows: Sequence[dict[str, Any]],
                 todo: list[int], ids: list[int], at: datetime) -> list[_Decided]:
    """Decide every row to start; collect the refusals and raise them together.

    ``memo`` lets the clocks compute what is the same for every row once (see clocks.react).
    """
    decided: list[_Decided] = []
    errors: list[tuple[int, EngineError]] = []
    memo: dict[Any, Any] = {}
    for i, iid in zip(todo, ids):
        try:
            decided.append(_decide_one(engine, proc, actor, rows[i], at, i, iid, memo))
        except EngineError as e:
            errors.append((i + 1, e))
    if errors:
        raise RowsInvalid(proc.spec.start.form or f"{proc.id} start", errors, len(rows))
    return decided


def _decide_one(engine: Any, proc: CompiledProcedure, actor: Actor, data: Any, at: datetime, row: int,
                iid: int, memo: dict[Any, Any]) -> _Decided:
    """What ``Engine.start`` decides for one row: the start, its fold, the clocks' reaction."""
    if not isinstance(data, dict):
        raise InputError("row", "must be an object of start-form fields")
    decision = dc.decide_start(proc, engine.org, actor, data, at, None, iid)
    events = decision.events
    inst = _started(proc, iid, decision)
    blank = Instance(id=iid, procedure=proc.id, version=proc.version, state=proc.spec.start.state,
                     status="starting", started_at=at, last_occurred_at=at)
    for e in clk.react(proc, engine.calendar, blank, inst, events, events[-1].occurred_at, memo):
        events.append(e)
        inst = ev.evolve(proc, inst, e)
    return _Decided(row, inst, events)


def _started(proc: CompiledProcedure, iid: int, decision: Decision) -> Instance:
    """The instance after the start's events: decide's own fold when it covers them all
    (``Decision.folded``, the same fold ``Engine.start`` repeats), else the fold itself."""
    events = decision.events
    if decision.folded is not None and decision.folded[0] == len(events):
        return decision.folded[1]
    inst = ev.start(iid, proc, events[0])
    for e in events[1:]:
        inst = ev.evolve(proc, inst, e)
    return inst


def _write(engine: Any, conn: Connection, proc: CompiledProcedure, decided: list[_Decided],
           keys: list[Optional[str]], recorded: datetime) -> list[_Decided]:
    """Insert every decided instance, ``WRITE_CHUNK`` at a time, one executemany per table.

    Chunks bound the memory of the rows being built (a row of every table for 10,000
    instances is a few hundred MB of Python objects); a chunk's events are dropped once
    written. The change hooks see each instance as ``Engine.start`` would show them.
    """
    for first in range(0, len(decided), WRITE_CHUNK):
        chunk = decided[first:first + WRITE_CHUNK]
        instances, events, timers, outbox = [], [], [], []
        stored_by_row = []
        for d in chunk:
            rows, stored = event_log.event_rows(d.inst.id, d.events, recorded, GENESIS_HASH)
            events += rows
            last = stored[-1]
            instances.append(bulk_store.instance_row(d.inst, last.seq, last.hash, keys[d.row],
                                                     instance_building(d.inst.data)))
            timers += bulk_store.timer_rows(d.inst.id, proc.id, d.inst.clocks)
            outbox += bulk_store.notification_rows(d.inst.id, stored, d.events, recorded)
            d.inst = d.inst.with_(revision=last.seq, last_hash=last.hash)
            d.events = []
            stored_by_row.append(stored)
        engine.store.insert_many(conn, instances, events, timers, outbox)
        for d, stored in zip(chunk, stored_by_row):
            for hook in engine.hooks:
                hook(engine, conn, proc, None, d.inst, stored)
    return decided


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def keys_from_template(template: str, rows: Sequence[dict[str, Any]], form: Optional[FormSpec] = None) -> list[str]:
    """One external key per row from ``{field}`` placeholders (``fee_cycle:{period}:{unit}``).

    A placeholder that is no field of the start ``form`` is refused at once; a row that
    lacks a field the template names is refused with its row number.
    """
    names = _PLACEHOLDER.findall(template)
    if not names:
        raise InputError("--key", f"{template!r} names no field; e.g. 'fee_cycle:{{period}}:{{unit}}'")
    unknown = [n for n in names if form is not None and n not in form.fields]
    if unknown and form is not None:
        raise InputError("--key", f"{', '.join(unknown)}: no such field of the start form {form.id}")
    keys, errors = [], []
    for n, row in enumerate(rows, 1):
        missing = [f for f in names if not isinstance(row, dict) or row.get(f) in (None, "")]
        if missing:
            errors.append((n, InputError("--key", f"needs field(s) {', '.join(missing)} of the row")))
            continue
        keys.append(_PLACEHOLDER.sub(lambda found: str(row[found.group(1)]), template))
    if errors:
        raise RowsInvalid(form.id if form else "rows", errors, len(rows))
    return keys
