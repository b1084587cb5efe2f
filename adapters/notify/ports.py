"""The notification port: what the outbox dispatcher hands an adapter, and how it fails.

An adapter delivers one :class:`Notification` to one person or raises
``engine.errors.AdapterError`` whose ``retryable`` says whether trying again later can help
(a timeout, a 5xx, a rate limit) or not (a refused address, a 4xx). Every notification
carries an ``idempotency_key`` that stays the same across retries; adapters pass it to the
receiver (``Idempotency-Key`` header, ``Message-ID``, the gateway's request id) so a
receiver that honours it never shows a retried message twice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Protocol

from engine.errors import AdapterError


@dataclass(frozen=True)
class Recipient:
    staff_id: str
    name: str
    phone: Optional[str] = None
    email: Optional[str] = None


@dataclass(frozen=True)
class Notification:
    idempotency_key: str
    recipient: Recipient
    text: str
    instance_id: int
    created_at: datetime
    site: str = ""

    def values(self) -> dict[str, Any]:
        """What templates may use: ``{message}``, ``{phone}``, ``{key}``, …"""
        r = self.recipient
        return {"message": self.text, "text": self.text, "key": self.idempotency_key, "staff": r.staff_id,
                "name": r.name, "phone": r.phone or "", "email": r.email or "", "instance_id": self.instance_id,
                "site": self.site, "created_at": self.created_at.isoformat()}


class Notifier(Protocol):
    """One delivery channel."""

    name: str

    def reaches(self, recipient: Recipient) -> bool:
        """Whether this channel has an address for the person (a phone for SMS, …)."""

    def send(self, notification: Notification) -> None:
        """Deliver, or raise AdapterError."""


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(template: Any, values: dict[str, Any]) -> Any:
    """``{name}`` placeholders in a string, or in every string of a JSON-like template.

    Unlike ``str.format`` there is no attribute or index access, and unknown names stay
    as written, so a template cannot reach into Python objects.
    """
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def http_failure(adapter: str, status: int, detail: str) -> AdapterError:
    """Rate limits, timeouts and server errors are worth retrying; other refusals are not."""
    retryable = status in (408, 409, 425, 429) or status >= 500
    return AdapterError(adapter, f"HTTP {status}: {detail[:200]}", retryable)
