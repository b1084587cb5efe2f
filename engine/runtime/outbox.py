"""The outbox dispatcher: deliver queued notifications, with retries, outside the workflow.

The engine writes a notification to the ``outbox`` in the transaction that caused it and
is done; delivering it is this module's business, in transactions of its own, so a
channel that is down never blocks or undoes a step. One pass:

1. claim the due rows under a lease, counting and recording the attempt (committed)
   *before* anything is sent;
2. pick a channel: the one the procedure named, else the configured default order, the
   first that can reach the person (an e-mail address for e-mail, a phone for SMS);
3. send, passing the row's idempotency key to the receiver;
4. record the outcome: sent; or retry later with exponential backoff (a retryable
   failure, attempts left); or failed (a permanent refusal, or out of attempts).

A worker that dies between 1 and 4 leaves the row ``sending``; once its lease has run out
the next pass claims it again and, by configuration, sends it again under the same key
(the receiver drops the duplicate) or holds it for a person (``sop outbox retry ID``).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from adapters.notify.config import Delivery
from adapters.notify.ports import Notification, Notifier, Recipient
from engine.errors import AdapterError
from engine.store import outbox as store

log = logging.getLogger("sop.outbox")


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0


_TALLY = {store.SENT: "sent", store.PENDING: "retrying", store.FAILED: "failed", store.HELD: "held"}


class Dispatcher:
    def __init__(self, engine: Any, delivery: Delivery) -> None:
        self.engine, self.delivery = engine, delivery
        self.spec = delivery.spec

    def backoff(self, attempt: int, key: str) -> timedelta:
        """Exponential, capped, plus up to 25% jitter that is fixed per key and attempt."""
        r = self.spec.retry
        base = min(r.max_backoff_seconds, r.backoff_seconds * 2 ** (attempt - 1))
        spread = int(hashlib.sha256(f"{key}#{attempt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return timedelta(seconds=base * (1 + 0.25 * spread))

    def run_once(self) -> PassResult:
        """Claim what is due now and deliver it; returns what happened."""
        now = self.engine.clock.now()
        with self.engine.transaction() as conn:
            claimed = store.claim_due(conn, now, now + timedelta(seconds=self.spec.lease_seconds), self.spec.batch)
        result = PassResult(claimed=len(claimed))
        for c in claimed:
            outcome = _TALLY[self._deliver(c)]
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def _recipient(self, staff_id: str) -> Optional[Recipient]:
        org = self.engine.org
        if not org.has(staff_id):
            if "@" in staff_id and not staff_id.startswith("@"):  # an address outside the org (an auditor's)
                return Recipient(staff_id, staff_id, None, staff_id)
            return None
        p = org.person(staff_id)
        return Recipient(p.id, p.name, p.phone, p.email)

    def _channel(self, wanted: Optional[str], person: Recipient) -> Optional[tuple[str, Notifier]]:
        order = ([wanted] if wanted else []) + list(self.spec.default)
        for name in dict.fromkeys(order):
            adapter = self.delivery.adapters.get(name)
            if adapter is not None and adapter.reaches(person):
                return name, adapter
        return None

    def _deliver(self, c: store.Claimed) -> str:
        if c.interrupted and self.spec.after_crash == "hold":
            return self._finish(c, store.HELD, "the previous attempt was interrupted; it may or may not have "
                                               "arrived, so it is held (sop outbox retry to send it again)")
        person = self._recipient(c.recipient)
        if person is None:
            return self._finish(c, store.FAILED, f"{c.recipient} is not in the organisation file")
        chosen = self._channel(c.channel, person)
        if chosen is None:
            return self._finish(c, store.FAILED, f"no configured channel reaches {c.recipient}")
        name, adapter = chosen
        note = Notification(c.idempotency_key, person, c.message, c.instance_id, c.created_at,
                            self.engine.org.site.name)
        try:
            adapter.send(note)
        except AdapterError as e:
            return self._failed(c, name, e.retryable, self.delivery.redact(str(e)))
        except Exception as e:  # a bug in an adapter must not stop the other deliveries
            message = self.delivery.redact(f"{name}: {type(e).__name__}: {e}")
            log.error("adapter error (will retry): %s", message)
            return self._failed(c, name, True, message)
        return self._finish(c, store.SENT, channel=name)

    def _failed(self, c: store.Claimed, channel: str, retryable: bool, error: str) -> str:
        if retryable and c.attempt < self.spec.retry.max_attempts:
            later = self.engine.clock.now() + self.backoff(c.attempt, c.idempotency_key)
            log.warning("notification %s attempt %d failed, retry at %s: %s", c.id, c.attempt, later.isoformat(),
                        error)
            return self._finish(c, store.PENDING, error, later, channel)
        log.error("notification %s failed after %d attempt(s): %s", c.id, c.attempt, error)
        return self._finish(c, store.FAILED, error, channel=channel)

    def _finish(self, c: store.Claimed, status: str, error: Optional[str] = None,
                next_attempt_at: Optional[datetime] = None, channel: Optional[str] = None) -> str:
        with self.engine.transaction() as conn:
            if not store.finish(conn, c, status, self.engine.clock.now(), error, next_attempt_at, channel):
                log.warning("notification %s: lease ran out before attempt %d finished", c.id, c.attempt)
        return status


class OutboxWorker:
    """Runs dispatcher passes in a background thread until :meth:`stop`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sop-outbox", daemon=True)

    def start(self) -> "OutboxWorker":
        self._thread.start()
        return self

    def _run(self) -> None:
        spec = self.dispatcher.spec
        while not self._stop.is_set():
            try:
                result = self.dispatcher.run_once()
            except Exception:  # the database was busy or down: try again next pass
                log.exception("outbox pass failed")
                result = PassResult()
            if result.claimed < spec.batch:
                self._stop.wait(spec.poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
