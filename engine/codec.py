"""The one codec of what is hashed and stored: canonical JSON, and an event's bytes and hash.

Canonical JSON is what ``json.dumps(value, sort_keys=True, ensure_ascii=False,
separators=(",", ":"))`` gives, byte for byte: every chain ever hashed depends on it, so
it can never change. An event is encoded once (:func:`encode_event`): its data's
canonical text, which is stored as is, and the hash over that same text.

The hash body (instance id, seq, type, actor, role, two instants, the data's text, the
previous hash) has fixed types — integers and strings, no float — so ``orjson`` (when
installed) writes its canonical bytes directly, about twice as fast as the standard
encoder with the data's text escaped inside; anything else goes to the standard encoder.
orjson is not used for arbitrary values: it writes floats differently (``1e16`` against
``1e+16``, NaN as null), and ruling them out costs as much as it saves on an event's
small data (measured: BENCHMARKS.md, issue 16). ``tests/test_codec.py`` proves the bytes
and hashes equal to the standard encoder's for every event of the golden histories.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Callable, Optional

from engine.instants import per_instant

_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False)
# The C encoder behind json.dumps, built once: json.dumps builds an encoder object and then
# the C encoder on every call. Same arguments, hence the same text, byte for byte.
_C_ENCODE = (json.encoder.c_make_encoder(None, _CANONICAL.default, json.encoder.encode_basestring, None,
                                         ":", ",", True, False, True)
             if json.encoder.c_make_encoder is not None else None)


def canonical_json(data: Any) -> str:
    """The one serialisation that is hashed and stored: sorted keys, no spaces, UTF-8 as is."""
    if _C_ENCODE is None:
        return _CANONICAL.encode(data)
    return "".join(_C_ENCODE(data, 0))


def canonical_bytes(data: Any) -> bytes:
    """The canonical JSON of ``data`` as UTF-8: what is hashed."""
    return canonical_json(data).encode("utf-8")


def _iso_utc(t: datetime) -> str:
    """The instant as hashed."""
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds")


# Remembered for the last few instants: every event of a command hashes the same two.
iso_utc = per_instant(_iso_utc, 16)


def event_hash(instance_id: int, seq: int, type_: str, actor: str, role: Optional[str],
               occurred_at: datetime, recorded_at: datetime, data_json: str, prev_hash: str) -> str:
    """The hash of one event: SHA-256 of the canonical JSON of its fields in a fixed order,
    its data as the stored text (a string inside the list) and its predecessor's hash.
    A typed kind (``EventKind``, a str subclass) is hashed as its plain text."""
    if type(type_) is not str:
        type_ = str.__str__(type_)
    fields = [instance_id, seq, type_, actor, role, iso_utc(occurred_at), iso_utc(recorded_at), data_json,
              prev_hash]
    if _dumps_list is not None and _typed_as_stored(instance_id, seq, type_, actor, role, data_json, prev_hash):
        try:
            return hashlib.sha256(_dumps_list(fields)).hexdigest()
        except TypeError:  # an integer beyond 64 bits
            pass
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()


def _typed_as_stored(instance_id: Any, seq: Any, type_: Any, actor: Any, role: Any, data_json: Any,
                     prev_hash: Any) -> bool:
    """Whether the hashed fields have the stored types (ints and strings, no float): then
    orjson's text of them is the canonical one without further checks."""
    return (type(instance_id) is int and type(seq) is int and type(type_) is str and type(actor) is str
            and (role is None or type(role) is str) and type(data_json) is str and type(prev_hash) is str)


def _list_dumper() -> Optional[Callable[[list[Any]], bytes]]:
    """orjson's ``dumps``, or None without orjson (the standard encoder then writes every hash body)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover
        return None
    return orjson.dumps


_dumps_list = _list_dumper()


def encode_event(instance_id: int, seq: int, type_: str, actor: str, role: Optional[str],
                 occurred_at: datetime, recorded_at: datetime, data: Any, prev_hash: str) -> tuple[str, str]:
    """An event encoded once: (its data's canonical JSON as stored, its hash over that text)."""
    data_json = canonical_json(data)
    return data_json, event_hash(instance_id, seq, type_, actor, role, occurred_at, recorded_at, data_json,
                                 prev_hash)


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

    @property
    def text(self) -> str:
        """The stored form."""
        return str(self.kind) if self.number is None else f"{self.kind}:{self.number}"


_PARSED: dict[str, ClockStep] = {}


def warn_step(pct: int) -> str:
    """The stored ``next_kind`` of an SLA warning at ``pct`` percent."""
    return ClockStep(StepKind.WARN, pct).text


def escalate_step(rung: int) -> str:
    """The stored ``next_kind`` of the escalation ladder's rung ``rung`` (0 first)."""
    return ClockStep(StepKind.ESCALATE, rung).text


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
    if not isinstance(v, list) or not all(type(i) is int for i in v):
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


@dataclass(frozen=True)
class Clock:
    """One clock of an instance, typed: what ``Instance.clocks[name]`` holds as a JSON dict.

    The stored dict is hashed into clock events and compared by replay, so it is the
    authority: :meth:`from_stored` reads it, :meth:`to_stored` gives it back byte for byte.
    A key's absence differs from its null in the stored form (a non-provisional clock has
    no ``provisional`` key; an SLA's ``breached_at`` is null until it breaches), so
    ``keys`` records which keys the dict has; fields of absent keys read as None (or
    ``()``). A value the typed field would not give back exactly is kept as stored in
    ``raw`` and written back as is: a key this engine does not know, a value that does not
    decode (its field reads None: a status of an older engine), a time not in UTC form
    (its field holds the instant). Reading a clock never fails and never changes it.
    """

    kind: Optional[ClockKind] = None
    status: Optional[ClockStatus] = None
    running: Optional[bool] = None
    started_at: Optional[datetime] = None
    due: Optional[datetime] = None
    next: Optional[datetime] = None
    next_kind: Optional[ClockStep] = None
    ended_at: Optional[datetime] = None
    breached_at: Optional[datetime] = None
    acknowledged_at: Optional[datetime] = None
    acknowledged_by: Optional[str] = None
    period_start: Optional[datetime] = None
    goal: Optional[str] = None
    goal_kind: Optional[str] = None
    assignee: Optional[str] = None
    warned: tuple[int, ...] = ()
    provisional: tuple[int, ...] = ()
    paused_remaining: Optional[float] = None
    fired: Optional[int] = None
    count: Optional[int] = None
    required: Optional[int] = None
    met: Optional[int] = None
    missed: Optional[int] = None
    escalated: Optional[int] = None
    keys: frozenset[str] = frozenset()
    raw: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "Clock":
        """The typed clock of a stored dict (never fails: see ``raw``)."""
        typed: dict[str, Any] = {}
        raw: list[tuple[str, Any]] = []
        for key, value in stored.items():
            codec = _CLOCK_KEYS.get(key)
            if codec is None:
                raw.append((key, value))
                continue
            try:
                decoded = codec[0](value)
            except (TypeError, ValueError, AttributeError):
                raw.append((key, value))
                continue
            typed[key] = decoded
            encoded = codec[1](decoded)  # the decoders check types, so == is exact here
            if type(encoded) is not type(value) or encoded != value:
                raw.append((key, value))
        return cls(**typed, keys=frozenset(stored), raw=tuple(raw))

    def to_stored(self) -> dict[str, Any]:
        """The stored dict: the keys the clock has, each as stored, raw values as they were."""
        raw = dict(self.raw)
        return {key: raw[key] if key in raw else _CLOCK_KEYS[key][1](getattr(self, key))
                for key in sorted(self.keys)}

    def stored(self, key: str) -> Any:
        """One key's value as stored (None when absent): for a view that shows text an older
        engine wrote, which the typed field could not read."""
        for k, value in self.raw:
            if k == key:
                return value
        return _CLOCK_KEYS[key][1](getattr(self, key)) if key in self.keys and key in _CLOCK_KEYS else None

def clocks_of(stored: dict[str, dict[str, Any]]) -> dict[str, Clock]:
    """An instance's clocks, typed: the one function the reading side (views, API, web,
    reports) gets them through."""
    return {name: Clock.from_stored(clock) for name, clock in stored.items()}
