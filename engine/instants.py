"""Functions of a time, remembered per instant.

A command handles the same few instants many times over (each event's occurred_at and
recorded_at, the projection's last_occurred_at), and turning one into the text that is
stored or hashed costs a zone conversion and a formatting each time.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def per_instant(fn: Callable[[Any], T], size: int) -> Callable[[Any], T]:
    """``fn``, remembering its result for the last ``size`` or so date-times it was given.

    The key is the value, its tzinfo and its fold: equal with the same tzinfo and fold is
    the same wall time and the same instant (equality alone ignores fold, so two instants
    of a DST fold would otherwise share a result). Anything but a plain ``datetime`` goes
    to ``fn`` every time; an error is raised every time and nothing is kept for it.
    """
    memo: dict[tuple[Any, Any, int], T] = {}
    # The very object given last, with its result: a batch binds one instant object for
    # every row, and hashing an aware datetime for the key asks its zone for the offset.
    # One tuple, replaced whole, so a thread never reads one value with another's result;
    # it keeps the object alive, so ``is`` cannot match a new object at a reused address.
    last: list[tuple[Any, Any]] = [(None, None)]

    def remembered(value: Any) -> T:
        seen = last[0]
        if value is seen[0] and value is not None:
            return seen[1]
        if type(value) is not datetime:
            return fn(value)
        key = (value, value.tzinfo, value.fold)
        try:
            out = memo[key]
        except KeyError:
            out = fn(value)
            if len(memo) >= size:
                memo.clear()
            memo[key] = out
        last[0] = (value, out)
        return out

    remembered.__doc__ = fn.__doc__
    return remembered


FIRST_YEAR, LAST_YEAR = 1970, 2999  # the times a command or an imported row may carry


def out_of_range(t: datetime) -> "str | None":
    """Why an aware time is refused (outside FIRST_YEAR..LAST_YEAR, in UTC and in its own
    zone), or None. Times near the ends of ``datetime``'s range would overflow later, when
    deadlines and schedules are computed from them (year 10000 is no year to Python)."""
    from datetime import timezone

    try:
        utc = t.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return f"outside the years {FIRST_YEAR}–{LAST_YEAR}"
    if not (FIRST_YEAR <= utc.year <= LAST_YEAR and FIRST_YEAR <= t.year <= LAST_YEAR):
        return f"outside the years {FIRST_YEAR}–{LAST_YEAR}"
    return None
