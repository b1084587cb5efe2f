"""How an instance and its events look to the outside (CLI ``--json`` and the HTTP API)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from engine.audit import StoredEvent
from engine.core.model import Instance


def iso(t: Optional[datetime], zone: Optional[ZoneInfo] = None) -> Optional[str]:
    if t is None:
        return None
    return (t.astimezone(zone) if zone else t).isoformat()


def instance_view(engine: Any, inst: Instance) -> dict[str, Any]:
    zone = ZoneInfo(engine.org.site.zone)
    return {
        "id": inst.id,
        "procedure": inst.procedure,
        "version": inst.version,
        "state": inst.state,
        "status": inst.status,
        "assignee": inst.assignee,
        "assignee_role": inst.assignee_role,
        "revision": inst.revision,
        "data": inst.data,
        "actions": engine.available_actions(inst),
        "deadlines": engine.deadlines(inst.id),
        "parent": inst.parent_id,
        "children": list(inst.children),
        "watchers": list(inst.watchers),
        "branches": inst.branches,
        "started_at": iso(inst.started_at, zone),
        "last_occurred_at": iso(inst.last_occurred_at, zone),
    }


def event_view(e: StoredEvent, zone: Optional[ZoneInfo] = None) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "type": e.type,
        "actor": e.actor,
        "role": e.role,
        "occurred_at": iso(e.occurred_at, zone),
        "recorded_at": iso(e.recorded_at, zone),
        "data": json.loads(e.data_json),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }
