"""Notifications into a file (one JSON line each) or onto the console: for the demo and tests."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from adapters.notify.ports import Notification, Recipient
from engine.errors import AdapterError


class FileNotifier:
    """``path: "-"`` prints a readable line on stdout; a file path appends JSON lines."""

    def __init__(self, name: str, path: str = "-") -> None:
        self.name, self.path = name, path
        self._lock = threading.Lock()

    def reaches(self, recipient: Recipient) -> bool:
        return True

    def send(self, n: Notification) -> None:
        r = n.recipient
        if self.path == "-":
            print(f"[通知 {n.idempotency_key}] → {r.name}（{r.staff_id}）：{n.text}", file=sys.stdout, flush=True)
            return
        line = json.dumps({"key": n.idempotency_key, "to": r.staff_id, "name": r.name, "phone": r.phone,
                           "email": r.email, "instance_id": n.instance_id, "text": n.text,
                           "created_at": n.created_at.isoformat()}, ensure_ascii=False)
        try:
            with self._lock, Path(self.path).open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as e:
            raise AdapterError(self.name, f"cannot write {self.path}: {e.strerror}", retryable=True) from None
