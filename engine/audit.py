"""Tamper evidence: the per-instance hash chain, its verification, and replay.

Each event's hash covers its predecessor's hash and every stored field, serialised in one
canonical form. Verification recomputes the chain from the stored rows and also checks the
instance row's ``last_hash`` and ``revision``, so deleting the newest events is caught
too, not only editing them. Replay folds the log through the pinned procedure version and
compares the result with the stored projection, naming the first difference.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, NamedTuple, Optional

# The codec is the one place events are serialised and hashed; the names stay importable
# from here, where the rest of the engine and its tools have always found them.
from engine.codec import canonical_json, event_hash, iso_utc  # noqa: F401
from engine.core import evolve as ev
from engine.core.model import GENESIS_HASH, Event, Instance
from engine.errors import ReplayMismatch
from engine.spec.library import CompiledProcedure


class StoredEvent(NamedTuple):
    """An event row as read back from the store (data still as its stored text).

    A named tuple rather than a frozen dataclass: replay and verification build one per
    stored event, and ``StoredEvent._make(values)`` builds it in one step where a frozen
    ``__init__`` sets ten attributes one ``object.__setattr__`` at a time.
    """

    instance_id: int
    seq: int
    type: str
    actor: str
    role: Optional[str]
    occurred_at: datetime
    recorded_at: datetime
    data_json: str
    prev_hash: str
    hash: str

    def to_event(self) -> Event:
        """The event, its data decoded (a ValueError, as from ``json.loads``, if it no longer parses)."""
        return decode_event(self.type, self.actor, self.role, self.occurred_at, self.data_json, self.seq,
                            self.recorded_at, self.prev_hash, self.hash)


# what json.loads runs, without its two whitespace scans
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, not in typeshed


def loads(text: Any) -> Any:
    """``json.loads`` of stored JSON: the same value, or the same error.

    Stored JSON is canonical (no surrounding whitespace), so the decoder's scanner alone
    reads it whole; anything else — whitespace, trailing text, an error, not text — goes
    to ``json.loads`` itself, which then gives its own value or raises its own error.
    """
    if type(text) is str:
        try:
            value, end = _SCAN(text, 0)
        except Exception:  # noqa: BLE001  (json.loads below raises its own error for it)
            pass
        else:
            if end == len(text):
                return value
    return json.loads(text)


_EVENT_FIELDS = ("type", "actor", "role", "occurred_at", "data", "seq", "recorded_at", "prev_hash", "hash")


def _event_decoder() -> Any:
    """``decode_event``, filling the new Event's attribute dict in one step.

    The frozen dataclass ``__init__`` sets nine fields one ``object.__setattr__`` at a
    time, the dearest part of turning a stored row into an event after the JSON. Should
    ``Event`` ever have other fields, or stop being a plain record (slots,
    ``__post_init__``), or the result differ from ``__init__``'s for a sample, events are
    made by the constructor.
    """
    def by_constructor(type_: str, actor: str, role: Optional[str], occurred_at: datetime, data_json: str,
                       seq: int, recorded_at: datetime, prev_hash: str, hash_: str) -> Event:
        """The Event of one stored event's values, its data decoded (ValueError as from ``json.loads``)."""
        return Event(type_, actor, role, occurred_at, loads(data_json), seq=seq, recorded_at=recorded_at,
                     prev_hash=prev_hash, hash=hash_)

    probe = by_constructor("", "", None, None, "{}", 0, None, "", "")  # type: ignore[arg-type]  # a probe of the constructor's fields, with nothing to compare
    if tuple(getattr(probe, "__dict__", ())) != _EVENT_FIELDS or hasattr(Event, "__post_init__"):
        return by_constructor
    new, set_dict = object.__new__, object.__setattr__

    def in_one_step(type_: str, actor: str, role: Optional[str], occurred_at: datetime, data_json: str,
                    seq: int, recorded_at: datetime, prev_hash: str, hash_: str) -> Event:
        """The Event of one stored event's values, its data decoded (ValueError as from ``json.loads``)."""
        e = new(Event)
        set_dict(e, "__dict__", {"type": type_, "actor": actor, "role": role, "occurred_at": occurred_at,
                                 "data": loads(data_json), "seq": seq, "recorded_at": recorded_at,
                                 "prev_hash": prev_hash, "hash": hash_})
        return e

    at = datetime(2025, 10, 14, 1, 5, 20, tzinfo=timezone.utc)
    sample = ("ActionTaken", "a", "r", at, '{"k":1}', 3, at, "p" * 64, "h" * 64)
    a, b = in_one_step(*sample), by_constructor(*sample)
    if a != b or list(vars(a).items()) != list(vars(b).items()):
        return by_constructor
    return in_one_step


decode_event = _event_decoder()


@dataclass(frozen=True)
class BrokenLink:
    instance_id: int
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"instance {self.instance_id} seq {self.seq}: {self.reason}"


def verify_chain(instance_id: int, rows: Iterable[StoredEvent], last_hash: str,
                 revision: int) -> Optional[BrokenLink]:
    """The first broken link of one instance's chain, or None if it is intact."""
    prev, expected_seq = GENESIS_HASH, 1
    for r in rows:
        if r.seq != expected_seq:
            return BrokenLink(instance_id, expected_seq, f"event seq {expected_seq} is missing (found {r.seq})")
        if r.prev_hash != prev:
            return BrokenLink(instance_id, r.seq, "prev_hash does not match the previous event's hash")
        actual = event_hash(r.instance_id, r.seq, r.type, r.actor, r.role, r.occurred_at, r.recorded_at,
                            r.data_json, r.prev_hash)
        if actual != r.hash:
            return BrokenLink(instance_id, r.seq, "hash does not match the event's content (altered)")
        prev, expected_seq = r.hash, expected_seq + 1
    if expected_seq - 1 != revision:
        return BrokenLink(instance_id, expected_seq, f"log ends at seq {expected_seq - 1} but the instance "
                                                     f"is at revision {revision} (events missing)")
    if prev != last_hash:
        return BrokenLink(instance_id, max(expected_seq - 1, 1), "the instance's last_hash does not match its log")
    return None


def link_checks(rows: Iterable[StoredEvent]) -> list[tuple[StoredEvent, bool, bool]]:
    """Each event with (linked: its prev_hash is its predecessor's hash, intact: its hash is
    its content's) — what :func:`verify_chain` checks, event by event, for showing."""
    out, prev = [], GENESIS_HASH
    for r in rows:
        actual = event_hash(r.instance_id, r.seq, r.type, r.actor, r.role, r.occurred_at, r.recorded_at,
                            r.data_json, r.prev_hash)
        out.append((r, r.prev_hash == prev, actual == r.hash))
        prev = r.hash
    return out


def replay(proc: CompiledProcedure, instance_id: int, events: list[Event],
           versions: Optional[Callable[[str], CompiledProcedure]] = None) -> Instance:
    """Re-derive an instance from its log with the pinned version (ReplayMismatch if impossible).

    ``proc`` is the version the log starts on (its ``InstanceStarted`` names it); after a
    ``VersionMigrated`` event the rest folds under the version ``versions(to)`` gives.
    """
    if not events:
        raise ReplayMismatch(instance_id, None, "the instance has no events")
    last = events[-1]
    return ev.fold(proc, instance_id, events, versions, revision=last.seq, last_hash=last.hash)


def started_version(events: list[Event], default: str) -> str:
    """The version an instance's log starts on: its ``InstanceStarted`` names it (the
    instance row names the version it is on now, which a migration changes)."""
    return str(events[0].data.get("version") or default) if events else default


COMPARED = ("procedure", "version", "state", "status", "assignee", "assignee_role", "data", "clocks", "watchers",
            "branches", "parent_id", "revision", "last_hash", "started_at", "last_occurred_at")


def first_difference(derived: Instance, stored: Instance) -> Optional[str]:
    for name in COMPARED:
        a, b = getattr(derived, name), getattr(stored, name)
        if a != b:
            if name in ("data", "clocks", "branches"):
                keys = sorted(set(a) | set(b), key=str)
                k = next(k for k in keys if a.get(k) != b.get(k))
                return f"{name}.{k}: replay gives {a.get(k)!r}, stored {b.get(k)!r}"
            return f"{name}: replay gives {a!r}, stored {b!r}"
    if sorted(derived.children) != sorted(stored.children):
        return f"children: replay gives {sorted(derived.children)}, stored {sorted(stored.children)}"
    return None
