"""Queuing notifications: the ``outbox`` rows a command's ``NotificationQueued`` event
asks for, written in the command's transaction (engine/store/outbox.py delivers them)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.prepared import Prepared
from engine.store.tables import outbox as O

_ENQUEUE = Prepared(sa.insert(O))


def enqueue(conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
            channel: Optional[str], at: datetime) -> None:
    if recipients:
        _ENQUEUE.executemany(conn, [
            {"instance_id": instance_id, "seq": seq, "recipient": r, "channel": channel, "message": message,
             "idempotency_key": f"{instance_id}:{seq}:{r}", "created_at": at, "next_attempt_at": at}
            for r in recipients])
