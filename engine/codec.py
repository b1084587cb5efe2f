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

Clocks are stored as small JSON dicts and typed by :class:`Clock` (``engine/clock_codec.py``,
re-exported here): the engine reads and writes them as typed values and meets their stored
form only through these functions (``clocks_from_json``, ``clocks_to_json``,
``clock_payload``, ``timer_row_values``); ``tests/test_clock_codec.py`` proves the round trip.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional

from engine.instants import per_instant

_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False)
# The C encoder behind json.dumps, built once: json.dumps builds an encoder object and then
# the C encoder on every call. Same arguments, hence the same text, byte for byte.
_MAKE_ENCODER: Optional[Callable[..., Callable[[Any, int], list[str]]]] = (
    json.encoder.c_make_encoder)  # type: ignore[attr-defined]  # _json's factory (None without it): not in typeshed
_C_ENCODE = (_MAKE_ENCODER(None, _CANONICAL.default, json.encoder.encode_basestring, None,
                           ":", ",", True, False, True)
             if _MAKE_ENCODER is not None else None)


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


# The clock half of the codec (typed clocks and their stored form), re-exported here: the
# codec is the one place that knows what is stored. Last, since it is a module of its own.
from engine.clock_codec import (Clock, ClockKind, ClockStatus, ClockStep, StepKind, clock_of_payload,  # noqa: E402
                                clock_payload, clocks_from_json, clocks_of, clocks_to_stored, instant_text,
                                timer_row_changes, timer_row_values)


def clocks_to_json(clocks: Mapping[str, Clock]) -> str:
    """The ``instances.clocks`` column of these clocks: canonical JSON of their stored dicts."""
    return canonical_json(clocks_to_stored(clocks))


__all__ = ["canonical_json", "canonical_bytes", "iso_utc", "event_hash", "encode_event", "Clock", "ClockKind",
           "ClockStatus", "ClockStep", "StepKind", "clock_of_payload", "clock_payload", "clocks_from_json",
           "clocks_of", "clocks_to_json", "clocks_to_stored", "instant_text", "timer_row_changes",
           "timer_row_values"]
