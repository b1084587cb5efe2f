"""Failed logins slow a guesser down: after a few failures a staff id rests a while.

A token is 32 random bytes, nothing to guess; a password is at least 8 characters and each
check costs ~0.1 s of scrypt, which a guesser with many connections still multiplies. So
after ``LIMIT`` failed logins for one staff id from one address within ``WINDOW``, further
attempts for that pair are refused without checking anything until the oldest of those
failures is ``WINDOW`` old; a successful login clears the pair. Keyed by address too, so
someone typing a colleague's id wrong from another desk cannot lock the colleague out.
Per process (``sop serve``), in memory: a restart forgets, several processes each count.
Times come from the engine's clock, so tests need no sleeping.
"""
from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Optional

LIMIT = 5
WINDOW = timedelta(minutes=15)
MAX_KEYS = 10_000  # bounded memory under a spray of made-up ids: the oldest pairs are forgotten


class LoginThrottle:
    """Failed logins per (staff id, client address) in the last ``WINDOW``."""

    def __init__(self, limit: int = LIMIT, window: timedelta = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, staff_id: str, address: str, now: datetime) -> Optional[timedelta]:
        """How long this pair must still wait before trying again, or None when it may try."""
        with self._lock:
            recent = self._recent((staff_id, address), now)
            if recent is None or len(recent) < self.limit:
                return None
            return recent[0] + self.window - now

    def failed(self, staff_id: str, address: str, now: datetime) -> None:
        with self._lock:
            key = (staff_id, address)
            recent = self._recent(key, now)
            if recent is None:
                if len(self._failures) >= MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))
                recent = self._failures[key] = deque()
            recent.append(now)

    def succeeded(self, staff_id: str, address: str) -> None:
        with self._lock:
            self._failures.pop((staff_id, address), None)

    def _recent(self, key: tuple[str, str], now: datetime) -> Optional[deque[datetime]]:
        """The pair's failures within the window (older ones dropped), or None if none."""
        recent = self._failures.get(key)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            del self._failures[key]
            return None
        return recent
