"""The stored form of clocks, typed: the clock half of :mod:`engine.codec`, which re-exports it.

An instance's clock is stored as a small JSON dict (in clock events, where it is hashed; in
the ``instances.clocks`` column; as ``timers`` rows). This module is the one place that
knows that form: :class:`Clock` reads it as typed fields and writes typed values back into
it byte for byte, so the rest of the engine works on datetimes, StrEnums and ClockSteps.
Import these names from ``engine.codec``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from functools import cached_property
from typing import Any, Callable, Generic, Mapping, Optional, TypeVar, overload


class StepKind(StrEnum):
    """What a clock's next step does when it comes due (stored in ``next_kind``)."""

    WARN = "warn"          # an SLA's warning at a percentage of its time: warn:<pct>
    BREACH = "breach"      # an SLA's due time
    ESCALATE = "escalate"  # a rung of an SLA's escalation ladder after the breach: escalate:<rung>
    FIRE = "fire"          # a timer's (next) firing
    JUDGE = "judge"        # a quota's window closes and is judged


_NUMBERED = (StepKind.WARN, StepKind.ESCALATE)  # the kinds whose step carries a number


@dataclass(frozen=True)
class ClockStep:
    """A clock's next step, typed: its kind and, for warn and escalate, its number.

    Stored as text in the clock's ``next_kind`` (``"warn:80"``, ``"breach"``), exactly as
    before, so clocks hashed into existing events keep their bytes; read back with
    :meth:`parse` instead of splitting the text wherever it is needed.
    """

    kind: StepKind
    number: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> "ClockStep":
        """The step a stored ``next_kind`` names (ValueError for text that names none).
        Read once per distinct text: a procedure's clocks have a handful of them."""
        try:
            return _PARSED[text]
        except (KeyError, TypeError):
            step = cls._parse(text)
        if len(_PARSED) < 1024:
            _PARSED[text] = step
        return step

    @classmethod
    def _parse(cls, text: str) -> "ClockStep":
        kind, sep, number = text.partition(":")
        step = cls(StepKind(kind), int(number) if sep else None)
        if step.text != text or (step.number is not None) != (step.kind in _NUMBERED):
            raise ValueError(f"not a clock step: {text!r}")
        return step

    @classmethod
    def of(cls, kind: StepKind, number: Optional[int] = None) -> "ClockStep":
        """The step of this kind and number (one object per distinct step, its text kept)."""
        return cls.parse(str(kind) if number is None else f"{kind}:{number}")

    @cached_property
    def text(self) -> str:
        """The stored form."""
        return str(self.kind) if self.number is None else f"{self.kind}:{self.number}"


_PARSED: dict[str, ClockStep] = {}


# ------------------------------------------------------------------ clocks, typed

class ClockKind(StrEnum):
    """What a clock is (stored in ``kind``)."""

    SLA = "sla"
    TIMER = "timer"
    QUOTA = "quota"


class ClockStatus(StrEnum):
    """Where a clock is (stored in ``status``): open, warned, met, breached, cancelled for
    SLAs; open, fired, cancelled for timers; open, ended for quotas."""

    OPEN = "open"
    WARNED = "warned"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"
    FIRED = "fired"
    ENDED = "ended"


def _decode_time(v: Any) -> Optional[datetime]:
    return None if v is None else datetime.fromisoformat(v)


def _encode_time(t: Optional[datetime]) -> Optional[str]:
    return None if t is None else t.astimezone(timezone.utc).isoformat()


def _maybe(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


def _same(v: Any) -> Any:
    return v


def _ints(v: Any) -> tuple[int, ...]:
    if type(v) is not list:
        raise TypeError("not a list of integers")
    for i in v:
        if type(i) is not int:
            raise TypeError("not a list of integers")
    return tuple(v)


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise TypeError("not a boolean")
    return v


def _int(v: Any) -> int:
    if type(v) is not int:
        raise TypeError("not an integer")
    return v


def _text(v: Any) -> str:
    if type(v) is not str:
        raise TypeError("not text")
    return v


_TIME = (_decode_time, _encode_time)
# Every stored key of a clock dict: (decode stored JSON value -> typed, encode typed -> stored).
_CLOCK_KEYS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "kind": (_maybe(ClockKind), _maybe(str.__str__)),
    "status": (_maybe(ClockStatus), _maybe(str.__str__)),
    "running": (_maybe(_bool), _same),
    "started_at": _TIME, "due": _TIME, "next": _TIME, "ended_at": _TIME, "breached_at": _TIME,
    "acknowledged_at": _TIME, "period_start": _TIME,
    "next_kind": (_maybe(ClockStep.parse), _maybe(lambda s: s.text)),
    "goal": (_maybe(_text), _same), "goal_kind": (_maybe(_text), _same),
    "assignee": (_maybe(_text), _same), "acknowledged_by": (_maybe(_text), _same),
    "warned": (_ints, list), "provisional": (_ints, list),  # a null list stays raw
    "paused_remaining": (_same, _same),  # seconds as stored (a float from total_seconds)
    "fired": (_maybe(_int), _same), "count": (_maybe(_int), _same), "required": (_maybe(_int), _same),
    "met": (_maybe(_int), _same), "missed": (_maybe(_int), _same), "escalated": (_maybe(_int), _same),
}


def _decode_enum(enum: Any) -> Callable[[Any], Any]:
    members = enum._value2member_map_
    return lambda v: members[v]  # KeyError (unknown text) or TypeError (unhashable): not typed


def _decode_step(v: Any) -> ClockStep:
    if type(v) is not str:
        raise TypeError("not text")
    return ClockStep.parse(v)


_TIMES = ("started_at", "due", "next", "ended_at", "breached_at", "acknowledged_at", "period_start")
# A field's typed value from its stored value (a null or absent key reads as the default).
_DECODE: dict[str, Callable[[Any], Any]] = {
    "kind": _decode_enum(ClockKind), "status": _decode_enum(ClockStatus), "running": _bool,
    **{k: datetime.fromisoformat for k in _TIMES},
    "next_kind": _decode_step, "goal": _text, "goal_kind": _text, "assignee": _text, "acknowledged_by": _text,
    "warned": _ints, "provisional": _ints, "paused_remaining": _same,
    **{k: _int for k in ("fired", "count", "required", "met", "missed", "escalated")},
}
_DEFAULT: dict[str, Any] = {k: None for k in _DECODE} | {"warned": (), "provisional": ()}
_UTC = timezone.utc


_TEXT_OF: dict[datetime, str] = {}  # UTC instants' stored text: a command writes the same few again and again


def _text_of(u: datetime) -> str:
    """A UTC instant's stored text (remembered)."""
    if len(_TEXT_OF) >= 4096:
        _TEXT_OF.clear()
    text = _TEXT_OF[u] = u.isoformat()
    return text


def instant_text(t: datetime) -> str:
    """An instant's stored text: UTC, ``isoformat`` (remembered for the last few thousand)."""
    u = t if t.tzinfo is _UTC else t.astimezone(_UTC)
    text = _TEXT_OF.get(u)
    return text if text is not None else _text_of(u)


def _encode_instant(t: datetime) -> tuple[str, datetime]:
    u = t if t.tzinfo is _UTC else t.astimezone(_UTC)
    text = _TEXT_OF.get(u)
    return (text if text is not None else _text_of(u)), u


_TIME_KEYS = frozenset(_TIMES)
_AS_IS = frozenset({"running", "goal", "goal_kind", "assignee", "acknowledged_by", "paused_remaining", "fired", "count",
                    "required", "met", "missed", "escalated"})  # stored as given, read back as stored


def _encode_member(enum: Any) -> Callable[[Any], tuple[str, Any]]:
    return lambda v: (str.__str__(v), v if type(v) is enum else enum(v))


def _as_is(v: Any) -> tuple[Any, Any]:
    return v, v


# A typed value as (stored, typed as a read of the stored value gives it back).
_ENCODE: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    **{k: _as_is for k in _DECODE},
    "kind": _encode_member(ClockKind), "status": _encode_member(ClockStatus),
    "next_kind": lambda s: (s.text, s), "warned": lambda v: (list(v), tuple(v)),
    "provisional": lambda v: (list(v), tuple(v)), **{k: _encode_instant for k in _TIMES},
}
_UNREADABLE = (TypeError, ValueError, KeyError, AttributeError)
_T = TypeVar("_T")


class _Field(Generic[_T]):
    """A typed field of :class:`Clock`, decoded from the stored dict the first time it is
    read and then kept in the clock's own attributes: a non-data descriptor, so every later
    read is a plain attribute read that never reaches it."""

    __slots__ = ("key", "decode", "default")

    def __set_name__(self, owner: type, name: str) -> None:
        self.key, self.decode, self.default = name, _DECODE[name], _DEFAULT[name]

    @overload
    def __get__(self, obj: None, owner: Any = None) -> "_Field[_T]": ...
    @overload
    def __get__(self, obj: "Clock", owner: Any = None) -> _T: ...

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        values = obj.__dict__
        value = values["_s"].get(self.key)
        if value is None:
            typed = self.default
        else:
            try:
                typed = self.decode(value)
            except _UNREADABLE:
                typed = self.default
        values[self.key] = typed
        return typed


class Clock:
    """One clock of an instance, typed: what ``Instance.clocks[name]`` holds.

    The stored dict (hashed into every clock event, compared by replay, written to the
    ``instances.clocks`` column) is the authority, and a Clock is an immutable view of it:
    a field decodes its key the first time it is read (a time as an aware datetime,
    ``status`` as a :class:`ClockStatus`, ``next_kind`` as a :class:`ClockStep`) and keeps
    the value; :meth:`with_` encodes the typed values it is given into a new stored dict
    (and keeps them as read, so the new clock decodes nothing it was given). So
    :meth:`from_stored` and :meth:`to_stored` give the dict back byte for byte, equality is
    the stored dicts' equality (replay compares the same values it always compared), and
    loading an instance costs one dict per clock, not a decode of all 24 fields (~15 µs).

    A key's absence differs from its null in the stored form (a non-provisional clock has
    no ``provisional`` key; an SLA's ``breached_at`` is null until it breaches): ``keys``
    says which keys the dict has; fields of absent keys read as None (or ``()``). A value a
    field cannot type (a key this engine does not know, a status of an older engine, a time
    not in UTC form) is kept as stored, listed in ``raw``, and written back as is; its field
    reads None (a time not in UTC form reads as its instant). Reading never fails.
    """

    # The fields (each kept in the instance's attributes once read or given to with_).
    kind: _Field[Optional[ClockKind]] = _Field()
    status: _Field[Optional[ClockStatus]] = _Field()
    running: _Field[Optional[bool]] = _Field()
    started_at: _Field[Optional[datetime]] = _Field()
    due: _Field[Optional[datetime]] = _Field()
    next: _Field[Optional[datetime]] = _Field()
    next_kind: _Field[Optional[ClockStep]] = _Field()
    ended_at: _Field[Optional[datetime]] = _Field()
    breached_at: _Field[Optional[datetime]] = _Field()
    acknowledged_at: _Field[Optional[datetime]] = _Field()
    acknowledged_by: _Field[Optional[str]] = _Field()
    period_start: _Field[Optional[datetime]] = _Field()
    goal: _Field[Optional[str]] = _Field()
    goal_kind: _Field[Optional[str]] = _Field()
    assignee: _Field[Optional[str]] = _Field()
    warned: _Field[tuple[int, ...]] = _Field()
    provisional: _Field[tuple[int, ...]] = _Field()
    paused_remaining: _Field[Optional[float]] = _Field()
    fired: _Field[Optional[int]] = _Field()
    count: _Field[Optional[int]] = _Field()
    required: _Field[Optional[int]] = _Field()
    met: _Field[Optional[int]] = _Field()
    missed: _Field[Optional[int]] = _Field()
    escalated: _Field[Optional[int]] = _Field()
    _s: dict[str, Any]

    def __init__(self, stored: Optional[dict[str, Any]] = None) -> None:
        """The clock of a stored dict (copied); ``Clock()`` has no keys: every field None."""
        _set(self, "__dict__", {"_s": dict(stored) if stored else {}})

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "Clock":
        """The typed clock of a stored dict (a copy of it: never fails, see ``raw``)."""
        return _wrap(dict(stored))

    @classmethod
    def of(cls, **fields: Any) -> "Clock":
        """A new clock with these typed fields (the keys it has are exactly those given)."""
        return _encoded({}, {}, fields)

    def to_stored(self) -> dict[str, Any]:
        """The stored dict: the keys the clock has, each as stored, raw values as they were."""
        return dict(self._s)

    def with_(self, **changes: Any) -> "Clock":
        """A copy with some typed fields set (a field given None is stored as null). Several
        per command: two dict copies, the given values kept as typed."""
        values = self.__dict__
        return _encoded(values["_s"].copy(), values.copy(), changes)

    def without(self, key: str) -> "Clock":
        """A copy without ``key`` (absent, not null)."""
        if key not in self._s:
            return self
        values = dict(self.__dict__)
        values.pop(key, None)
        values["_s"] = {k: v for k, v in self._s.items() if k != key}
        return _made(values)

    def stored(self, key: str) -> Any:
        """One key's value as stored (None when absent): for a view that shows text an older
        engine wrote, which the typed field could not read, and for text columns."""
        return self._s.get(key)

    @property
    def keys(self) -> frozenset[str]:
        """The keys the stored dict has."""
        return frozenset(self._s)

    @property
    def raw(self) -> tuple[tuple[str, Any], ...]:
        """The (key, stored value) pairs a field does not give back exactly, in stored order."""
        out = []
        for key, value in self._s.items():
            codec = _CLOCK_KEYS.get(key)
            try:
                if codec is None:
                    raise KeyError(key)
                encoded = codec[1](codec[0](value))
            except _UNREADABLE:
                out.append((key, value))
                continue
            if type(encoded) is not type(value) or encoded != value:  # decoders check types: == is exact
                out.append((key, value))
        return tuple(out)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Clock:
            return NotImplemented
        return self._s == other._s

    def __hash__(self) -> int:
        from engine.codec import canonical_json  # the codec re-exports this module: imported when used
        return hash(canonical_json(self._s))

    def __repr__(self) -> str:
        return f"Clock({self._s!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Clock is immutable: use with_({name}=…)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Clock is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return _wrap, (dict(self._s),)


_new, _set = object.__new__, object.__setattr__


def _made(values: dict[str, Any]) -> Clock:
    clock = _new(Clock)
    _set(clock, "__dict__", values)
    return clock


def _wrap(stored: dict[str, Any]) -> Clock:
    """A Clock over ``stored``, which only the clock holds from now on (no copy)."""
    clock = _new(Clock)
    _set(clock, "__dict__", {"_s": stored})
    return clock


def _refuse_unknown(changes: dict[str, Any]) -> None:
    unknown = sorted(changes.keys() - _ENCODE.keys())
    if unknown:
        raise TypeError(f"Clock has no field {unknown[0]!r}") from None


def _encoded(stored: dict[str, Any], typed: dict[str, Any], changes: dict[str, Any]) -> Clock:
    """The clock of ``stored`` and its read fields ``typed`` (both the new clock's own) with
    the typed ``changes`` encoded in and kept as read."""
    try:
        for key, value in changes.items():
            if value is None:
                stored[key] = None
                typed[key] = _DEFAULT[key]
            elif key in _AS_IS:
                stored[key] = typed[key] = value
            elif key in _TIME_KEYS:  # the common case, inline: several per clock event
                u = value if value.tzinfo is _UTC else value.astimezone(_UTC)
                text = _TEXT_OF.get(u)
                stored[key] = text if text is not None else _text_of(u)
                typed[key] = u
            else:
                stored[key], typed[key] = _ENCODE[key](value)
    except KeyError:
        _refuse_unknown(changes)
        raise
    typed["_s"] = stored
    clock = _new(Clock)
    _set(clock, "__dict__", typed)
    return clock


def timer_row_values(procedure: str, clock: Clock) -> dict[str, Any]:
    """A clock's ``timers`` row but its key: kind, status and next step as the text the
    clock stores, its times as datetimes. Read from the stored dict (two per changed clock
    and command, most of whose fields no other code reads)."""
    c = clock._s
    return {"procedure": procedure, "kind": c.get("kind"), "status": c.get("status"), "due_at": _instant(c.get("due")),
            "next_fire_at": _instant(c.get("next")), "next_kind": c.get("next_kind"),
            "started_at": _instant(c.get("started_at")), "ended_at": _instant(c.get("ended_at")),
            "breached_at": _instant(c.get("breached_at")), "assignee": c.get("assignee"),
            "provisional": bool(c.get("provisional"))}


# The stored keys each ``timers`` column is read from (``timer_row_values``): a column can
# only change when one of its keys does, so only the new clock is converted, never the old.
_COLUMN_KEYS = (("kind", "kind"), ("status", "status"), ("due_at", "due"), ("next_fire_at", "next"),
                ("next_kind", "next_kind"), ("started_at", "started_at"), ("ended_at", "ended_at"),
                ("breached_at", "breached_at"), ("assignee", "assignee"), ("provisional", "provisional"))


def timer_row_changes(procedure: str, old: Clock, new: Clock) -> dict[str, Any]:
    """The columns of a clock's ``timers`` row that differ between two versions of the clock."""
    was, now = old._s, new._s
    changed = [col for col, key in _COLUMN_KEYS if was.get(key) != now.get(key)]
    if not changed:
        return {}
    values = timer_row_values(procedure, new)
    return {col: values[col] for col in changed}


def _instant(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text) if text else None


# The clocks whose own stored dicts went into events lately, by the dict's id: folding such
# an event gets the very clock back, with the fields it has read, instead of a copy that
# reads them again. A clock holds its dict, so an id here names no other dict meanwhile.
_PAYLOADS: dict[int, Clock] = {}


def clock_payload(clock: Clock) -> dict[str, Any]:
    """The stored dict a clock event carries (hashed and stored as is, never changed)."""
    stored = clock._s
    if len(_PAYLOADS) >= 1024:
        _PAYLOADS.clear()
    _PAYLOADS[id(stored)] = clock
    return stored


def clock_of_payload(stored: dict[str, Any]) -> Clock:
    """The clock a clock event's stored dict stands for (as :meth:`Clock.from_stored`)."""
    clock = _PAYLOADS.get(id(stored))
    if clock is not None and clock._s is stored:
        return clock
    return Clock.from_stored(stored)


def clocks_of(stored: dict[str, dict[str, Any]]) -> dict[str, Clock]:
    """An instance's clocks, typed, from their stored dicts (copied)."""
    return {name: _wrap(dict(clock)) for name, clock in stored.items()}


def clocks_from_json(text: str) -> dict[str, Clock]:
    """An instance's clocks from the ``instances.clocks`` column: decoded once per load
    (ValueError for text that is not a JSON object of objects)."""
    stored = json.loads(text)
    if type(stored) is not dict or not all(type(c) is dict for c in stored.values()):
        raise ValueError("clocks are not an object of objects")
    return {name: _wrap(clock) for name, clock in stored.items()}


def clocks_to_stored(clocks: Mapping[str, Clock]) -> dict[str, dict[str, Any]]:
    """An instance's clocks as stored (the dicts are the clocks' own: read, do not change)."""
    return {name: clock._s for name, clock in clocks.items()}
