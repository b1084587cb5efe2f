"""Instances an engine wrote recently, reused while their stored row is still the same.

Loading an instance for a command reads its row, then parses its times and decodes its
data and clocks into an Instance: about a tenth of an action's CPU (BENCHMARKS.md),
although this engine wrote that row moments ago. An entry here is the projection row
exactly as the UPDATE that wrote it returned it, with the instance that row stands for.
A command still reads the row (locking it on PostgreSQL, as before) and uses the entry
only if the row is the very same, value for value; anything else — another process's
write, a rolled-back transaction, a hand-edited projection — is a miss, and the row is
decoded as before. So the cache never changes what a command sees, only what it costs.

An entry's instance is what decoding its row gives: no children (loads never carry
them), times in UTC, typed clocks (``engine.codec.Clock``, so a hit decodes nothing),
and data and the clocks' stored dicts holding only values JSON gives back as they are
(an instance holding a tuple, a Decimal or a date is not kept). Callers must treat
the instances they get as the immutable records they are meant to be, dicts included.
With ``SOP_CHECK_INSTANCE_CACHE=1`` (the test suite sets it) every hit is also decoded
and compared with the entry, value and type, and a difference raises.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from engine.codec import Clock, clocks_to_stored
from engine.core.model import Instance
from engine.instants import per_instant

CHECK_ENV = "SOP_CHECK_INSTANCE_CACHE"


class InstanceCache:
    """A bounded, least-recently-used map of instance id to its stored row and instance.

    ``columns`` names the row's columns in order (those ``instances`` loads); rows are
    the driver's values (SQLite's stored text; psycopg's values, whose times compare as
    instants with the UTC times bound). An entry holds a row and an instance of a
    few kB, so the default 1,024 keeps a long-running worker's share to a few MB. One
    engine serves the API's worker threads, so the map changes under a lock.
    """

    def __init__(self, columns: tuple[str, ...], size: int = 1024) -> None:
        self.columns, self.size = columns, size
        self._index = {c: i for i, c in enumerate(columns)}
        # id -> (row, instance as decoded, the object it was remembered from)
        self._entries: "OrderedDict[int, tuple[Sequence[Any], Instance, Instance]]" = OrderedDict()
        self.check = os.environ.get(CHECK_ENV) == "1"
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    def get(self, instance_id: int, row: Sequence[Any]) -> Optional[Instance]:
        """The instance for this stored row, if it is the row remembered for it."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None or entry[0] != row:
                self.misses += 1
                return None
            self._entries.move_to_end(instance_id)
            self.hits += 1
            return entry[1]

    def remember(self, row: Sequence[Any], inst: Instance) -> None:
        """Remember a row and the instance it decodes to."""
        entry = (row, inst.with_(children=(), started_at=_utc(inst.started_at),
                                 last_occurred_at=_utc(inst.last_occurred_at)), inst)
        with self._lock:
            self._entries[inst.id] = entry
            self._entries.move_to_end(inst.id)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def inserted(self, inst: Instance, sent: dict[str, Any]) -> None:
        """A row just inserted with the values ``sent`` (NULL elsewhere), standing for ``inst``."""
        if sent:
            self.remember(tuple(inst.id if c == "id" else sent.get(c) for c in self.columns), inst)

    def updated(self, before: Instance, after: Instance, sent: dict[str, Any]) -> None:
        """``before``'s row just updated with the values ``sent``, now standing for ``after``.

        Known only if ``before`` is the instance remembered (or decoded) for the row; the
        values ``after`` shares with ``before`` by identity were plain JSON already."""
        entry = self._entries.get(before.id)
        if (not sent or entry is None or (entry[1] is not before and entry[2] is not before)
                or not _plain_changes(after.data, before.data) or not _plain_changes(clocks_to_stored(after.clocks), clocks_to_stored(before.clocks))
                or not _plain_changes(after.branches, before.branches)):
            with self._lock:
                self._entries.pop(before.id, None)
            return
        row = list(entry[0])
        index = self._index
        for name, value in sent.items():  # the SET columns; the WHERE parameters are no columns
            i = index.get(name)
            if i is not None:
                row[i] = value
        self.remember(tuple(row), after)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _utc(t: Optional[datetime]) -> Optional[datetime]:
    return t if t is None or t.tzinfo is timezone.utc else _in_utc(t)


# Remembered per instant: the instances of one batch share their command's time.
_in_utc = per_instant(lambda t: t.astimezone(timezone.utc), 16)


_SCALARS = (str, int, float, bool, type(None))


def _plain_changes(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether every value of ``new`` not taken over from ``old`` as it is is plain JSON."""
    if new is old:
        return True
    for k, v in new.items():
        if type(k) is not str or (old.get(k, _ABSENT) is not v and not _json_plain(v)):
            return False
    return True


_ABSENT = object()


def _json_plain(value: Any) -> bool:
    """Whether JSON gives this value back as it is: str-keyed dicts, lists, and scalars
    (no tuples, Decimals or dates, which a load would return as lists and strings)."""
    t = type(value)
    if t in _SCALARS:
        return t is not float or value == value and value not in (float("inf"), float("-inf"))
    if t is dict:
        return all(type(k) is str and _json_plain(v) for k, v in value.items())
    if t is list:
        return all(_json_plain(v) for v in value)
    return False


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type all the way down (1 == 1.0 == True, but not here)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is datetime:
        return a == b and a.tzinfo is b.tzinfo
    if type(a) is Clock:  # equal stored dicts, types and all
        return same(a.to_stored(), b.to_stored())
    return bool(a == b)


def check_entry(cached: Instance, loaded: Instance) -> None:
    """Raise AssertionError naming the first field where a cache hit differs from a load."""
    for name in loaded.__dict__:
        if not same(getattr(cached, name), getattr(loaded, name)):
            raise AssertionError(f"instance cache: instance {loaded.id} field {name!r} differs from the stored row: "
                                 f"{getattr(cached, name)!r} != {getattr(loaded, name)!r}")
