"""Batch actions: many commands on many instances decided and written in one transaction.

A supervisor closing a day's call-backs (批量回访结案) or a bank file closing many dunning
cases is dozens of actions at once. One at a time each pays a write transaction (its
BEGIN/COMMIT alone is most of an action's CPU on SQLite, BENCHMARKS.md) and its own
statements. ``Engine.act_many`` runs them like the bulk start (engine/runtime/bulk.py):

1. **Load** every instance the batch names in one statement per 512 ids (row-locked in
   id order on PostgreSQL, ``store.load_many_for_write``).
2. **Decide every item**, in order, against the instance as the previous items left it,
   through the very code a single command runs (``Engine._change_in``: revision and time
   checks, catch-up firing, decide, ``clocks.react``, spawns, hooks). Its writes go to a
   :class:`BatchWriter` instead of the database. A refused item is collected with its
   number (counting from 1) and the rest are still decided, so one ``ItemsInvalid``
   names every bad item and field; then nothing is written at all.
3. **Write** what the writer collected: all events in one multi-row INSERT (hash chains
   from ``log.event_rows``, as every append), one revision-guarded projection UPDATE per
   instance (``store.append_many``), the timers (``store.sync_timers_many``), the outbox rows,
   one ledger row, one commit.

The tables end exactly as the same commands one at a time at the same instants leave
them (``tests/test_act_many.py`` compares them, on SQLite and PostgreSQL). The sweep
fires its batches through the same writer (engine/runtime/sweep.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, NamedTuple, Optional, Sequence

from sqlalchemy.engine import Connection

from engine.core.model import Event, Instance
from engine.errors import EngineError, InputError, ItemsInvalid
from engine.spec.library import CompiledProcedure
from engine.store import log as event_log
from engine.store.bulk import notification_rows

COMMANDS = ("advance", "record", "claim", "assign")


class ActItem(NamedTuple):
    """One command of a batch: ``advance`` (``action`` with its ``data``), ``record``
    (``data``), ``claim`` or ``assign`` (``assignee``); by ``staff`` if given (else the
    batch's), at ``at`` (else the batch's time), refused unless the instance is at
    ``expected_revision`` when given (as the items before it left it). A named tuple: an
    import of a thousand payments builds a thousand of them (a frozen dataclass costs
    three times as much to make)."""

    instance_id: int
    command: str = "advance"
    action: Optional[str] = None
    data: Optional[dict[str, Any]] = None
    assignee: Optional[str] = None
    staff: Optional[str] = None
    at: Optional[datetime] = None
    expected_revision: Optional[int] = None


@dataclass(slots=True)
class _Pending:
    """An instance the batch changed: as stored (the UPDATE's revision guard) and as now."""

    first: Instance
    procedure: str
    last: Instance


class BatchWriter:
    """Collects the writes of a batch's commits (``Engine._commit``) and writes them at once.

    Set on the connection (``sop_batch``) while the batch runs, so every commit inside it —
    the item's own, its catch-up firings, a spawned child's — comes here. What a command
    reads of other instances is answered as the batch has left them (``children``, for
    guards reading the linked instances). ``flush`` may run more than once (before loading
    an instance the batch did not load, or claiming a step the sweep does not fire): each
    writes what is pending and starts from there. Once an item is refused the batch will
    roll back, and nothing more is written.
    """

    def __init__(self, engine: Any, conn: Connection) -> None:
        self.engine, self.conn = engine, conn
        self.current: dict[int, Instance] = {}
        self.pending: dict[int, _Pending] = {}
        self.events: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.failed = False  # an item was refused: the batch will roll back, write nothing more
        # while an item runs: what it changed, as it found it (instance, pending's last or None)
        self._saved: Optional[dict[int, tuple[Optional[Instance], Optional[Instance]]]] = None
        self._lengths = (0, 0)
        self._kids: dict[int, list[tuple[int, str, str]]] = {}  # parent id -> its children (see children)
        self.memo: dict[Any, Any] = {}  # clocks.react's: due times worked out once per batch and instant

    def load(self, instance_ids: Sequence[int]) -> None:
        """Load (and on PostgreSQL lock) every instance the batch names, in one statement."""
        self.current.update(self.engine.store.load_many_for_write(self.conn, list(instance_ids)))

    def instance(self, instance_id: int) -> Instance:
        """An instance as the batch has left it so far; one it did not load (a child it
        spawned) read from the database after writing what is pending."""
        inst = self.current.get(instance_id)
        if inst is None:
            self.flush()
            inst = self.current[instance_id] = self.engine.store.load_for_write(self.conn, instance_id)
        return inst

    def children(self, parent_id: int) -> list[tuple[str, str]]:
        """(procedure, status) of the instances ``parent_id`` started, as the batch has left
        them: read for every loaded instance at once, the first time a guard asks."""
        if parent_id not in self._kids:
            wanted = [i for i in self.current if i not in self._kids]
            self._kids.update(self.engine.store.children_of_many(self.conn, wanted or [parent_id]))
        out = []
        for iid, procedure, status in self._kids.get(parent_id, []):
            inst = self.current.get(iid)
            out.append((procedure, status if inst is None else inst.status))
        return out

    def write(self, proc: CompiledProcedure, before: Instance, events: list[Event], recorded: datetime) -> list[Any]:
        """One commit's events, hash-chained after ``before``'s: rows kept for the flush."""
        rows, stored = event_log.event_rows(before.id, events, recorded, before.last_hash, before.revision)
        if rows:
            self.events += rows
            self.outbox += notification_rows(before.id, stored, events, recorded)
            self._keep(before.id)
            if before.revision == 0 and before.parent_id in self._kids:  # a child this batch spawned
                self._kids[before.parent_id].append((before.id, proc.id, before.status))
            if before.id not in self.pending:
                self.pending[before.id] = _Pending(before, proc.id, before)
        return stored

    def settled(self, after: Instance) -> None:
        """The instance after one commit (its revision and hash set): what follows sees it,
        as a load would give it (a loaded instance carries no children; a command that
        spawns reads them itself), so every item returns what it would one at a time."""
        self._keep(after.id)
        self.current[after.id] = after.with_(children=()) if after.children else after
        p = self.pending.get(after.id)
        if p is not None:
            p.last = after

    def flush(self) -> None:
        """Write everything pending: events, projections, timers, outbox (see module doc)."""
        if not self.pending or self.failed:
            return
        store = self.engine.store
        updates = [(p.first.id, p.first.revision,
                    event_log.projection_changes(p.first, p.last, p.last.revision, p.last.last_hash, store.building_of))
                   for p in self.pending.values()]
        sents: list[dict[str, Any]] = []
        store.append_many(self.conn, self.events, updates, sents)
        store.sync_timers_many(self.conn, [(i, p.procedure, p.first.clocks, p.last.clocks)
                                           for i, p in self.pending.items()])
        store.insert_outbox(self.conn, self.outbox)
        for p, sent in zip(self.pending.values(), sents):
            self.engine.instances.updated(p.first, p.last, sent)
        self.pending, self.events, self.outbox = {}, [], []

    # -- one item at a time: a refused item leaves the batch as it found it

    def begin_item(self) -> None:
        self._saved, self._lengths = {}, (len(self.events), len(self.outbox))

    def undo_item(self) -> None:
        """Forget a refused item's commits (the instances as the item found them)."""
        for iid, (inst, last) in (self._saved or {}).items():
            _restore(self.current, iid, inst)
            if last is None:
                self.pending.pop(iid, None)
            else:
                self.pending[iid].last = last
        del self.events[self._lengths[0]:], self.outbox[self._lengths[1]:]
        self._saved, self.failed = None, True

    def _keep(self, iid: int) -> None:
        if self._saved is not None and iid not in self._saved:
            p = self.pending.get(iid)
            self._saved[iid] = (self.current.get(iid), None if p is None else p.last)


def _restore(table: dict[int, Any], key: int, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def writer_of(conn: Connection) -> Optional[BatchWriter]:
    """The batch writer holding this transaction's writes, if a batch runs in it."""
    return getattr(conn, "sop_batch", None)


class _Batch:
    """A BatchWriter set on a connection for the length of a ``with`` block."""

    def __init__(self, engine: Any, conn: Connection) -> None:
        self.writer = BatchWriter(engine, conn)

    def __enter__(self) -> BatchWriter:
        self.writer.conn.sop_batch = self.writer  # type: ignore[attr-defined]  # db.DirectConnection's
        return self.writer

    def __exit__(self, *exc: Any) -> None:
        self.writer.conn.sop_batch = None  # type: ignore[attr-defined]  # db.DirectConnection's


def batch(engine: Any, conn: Connection) -> _Batch:
    """``with batch(engine, conn) as writer:`` commits inside go to ``writer``."""
    return _Batch(engine, conn)


def act_many(engine: Any, items: Sequence[ActItem], staff: Optional[str], at: Optional[datetime] = None
             ) -> list[Instance]:
    """Run every item in one transaction, all or nothing; each item's instance as that item
    left it (in item order). See the module docstring."""
    if not items:
        return []
    when = engine._time(at)
    _check_items(engine, items, staff)
    out: list[Instance] = []
    with engine.transaction() as conn, batch(engine, conn) as writer:
        writer.load([it.instance_id for it in items])
        errors: list[tuple[int, EngineError]] = []
        for n, it in enumerate(items, 1):
            writer.begin_item()
            try:
                out.append(_act_one(engine, conn, it, staff, when))
            except EngineError as err:
                writer.undo_item()
                errors.append((n, err))
        if errors:
            raise ItemsInvalid(errors, len(items))
        writer.flush()
    return out


def _check_items(engine: Any, items: Sequence[ActItem], staff: Optional[str]) -> None:
    """Refusals of an item's shape, before anything is loaded: every one, with its number."""
    errors: list[tuple[int, EngineError]] = []
    for n, it in enumerate(items, 1):
        try:
            if it.command not in COMMANDS:
                raise_input("command", f"must be one of {', '.join(COMMANDS)}, not {it.command!r}")
            if it.command == "advance" and not it.action:
                raise_input("action", "names the action to take")
            if it.command == "assign" and not it.assignee:
                raise_input("assign", "names the staff member to assign")
            if (it.staff or staff) is None:
                raise_input("as", "names who acts (no staff for the batch)")
            if it.at is not None:
                engine._time(it.at)
        except EngineError as err:
            errors.append((n, err))
    if errors:
        raise ItemsInvalid(errors, len(items))


def raise_input(field: str, reason: str) -> None:
    raise InputError(field, reason)


def _act_one(engine: Any, conn: Connection, it: ActItem, staff: Optional[str], when: datetime) -> Instance:
    """One item through the single command's path (``Engine._change_in``)."""
    actor = engine.actor(it.staff or staff)
    at = engine._time(it.at) if it.at is not None else when
    decide = engine._decider(it.command, actor, action=it.action, data=it.data or {}, assignee=it.assignee)
    return engine._change_in(conn, it.instance_id, at, it.expected_revision, decide)


_ITEM_KEYS = {"instance", "action", "data", "record", "claim", "assign", "as", "at", "revision"}


def item_from_json(obj: Any, parse_time: Callable[[str, str], Optional[datetime]]) -> ActItem:
    """One item as written in a batch file or an HTTP body (``docs/api.md``):
    ``{"instance": 12, "action": "check_effect", "data": {…}}``, ``{"instance": 12,
    "record": {…}}``, ``{"instance": 12, "claim": true}`` or ``{"instance": 12, "assign":
    "wang_li"}``, with optional ``as`` (who acts), ``at`` and ``revision``. InputError names
    the field; ``parse_time(text, field)`` reads ``at``."""
    if not isinstance(obj, dict):
        raise InputError("item", "must be an object such as {\"instance\": 12, \"action\": \"investigate\"}")
    unknown = sorted(set(obj) - _ITEM_KEYS)
    if unknown:
        raise InputError(unknown[0], f"unknown key; an item has {', '.join(sorted(_ITEM_KEYS))}")
    iid = obj.get("instance")
    if type(iid) is not int or not 1 <= iid <= 2**62:
        raise InputError("instance", f"must be an instance number, not {iid!r}")
    given = [k for k in ("action", "record", "claim", "assign") if k in obj]
    if len(given) != 1:
        raise InputError("action", "give exactly one of action, record, claim, assign"
                         + (f" (got {', '.join(given)})" if given else ""))
    kind = given[0]
    if kind != "action" and "data" in obj:
        raise InputError("data", f"only an action takes data (a {kind} item has none; record takes its data "
                                 "as \"record\")")
    data = obj.get("record") if kind == "record" else obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise InputError(kind if kind == "record" else "data", "must be an object of form fields")
    if kind == "record" and data is None:
        raise InputError("record", "must be an object of form fields")
    if kind in ("action", "assign") and (not isinstance(obj[kind], str) or not obj[kind]):
        raise InputError(kind, "must be a name" if kind == "action" else "must be a staff id")
    if kind == "claim" and obj["claim"] is not True:
        raise InputError("claim", "must be true")
    revision = obj.get("revision")
    if revision is not None and (type(revision) is not int or revision < 0):
        raise InputError("revision", f"must be a revision number, not {revision!r}")
    staff, at = obj.get("as"), obj.get("at")
    if staff is not None and (not isinstance(staff, str) or not staff):
        raise InputError("as", "must be a staff id")
    if at is not None and not isinstance(at, str):
        raise InputError("at", "must be an ISO 8601 time")
    return ActItem(iid, "advance" if kind == "action" else kind, obj.get("action"), data,
                   obj.get("assign"), staff, parse_time(at, "at") if at else None, revision)


def items_from_json(values: Sequence[Any], parse_time: Callable[[str, str], Optional[datetime]]) -> list[ActItem]:
    """Every item of a batch, or ItemsInvalid naming each malformed one (nothing run)."""
    items, errors = [], []
    for n, obj in enumerate(values, 1):
        try:
            items.append(item_from_json(obj, parse_time))
        except EngineError as err:
            errors.append((n, err))
    if errors:
        raise ItemsInvalid(errors, len(values))
    return items
