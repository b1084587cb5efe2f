"""The store's reading and writing, by name, for call sites written before it was split.

What this module once did alone now lives in one module per concept:
``engine.store.instances`` (the projection rows: load, children, keys, queues),
``engine.store.log`` (appending events with their projection, reading logs, verification's
stream), ``engine.store.versions`` (procedure snapshots) and ``engine.store.queue``
(notifications into the outbox). The runtime's commands go through the storage port
(``engine.store.port``). New code imports the concept module; this one only re-exports.
"""
from __future__ import annotations

from engine.store.instances import (INSTANCE_COLUMNS, _INSTANCE_COLS, _instance, active_on_version,  # noqa: F401
                                    child_procedures, children_of, count_instances, find_by_key,
                                    in_buildings, instances_started_since, load_for_write, load_instance,
                                    new_instance_id, procedure_of, task_rows)
from engine.store.log import (_sqlite_vouches, _vouched, append, decoded_events, event_rows,  # noqa: F401
                              events_of, iter_chains, latest_occurred_at)
from engine.store.queue import enqueue  # noqa: F401
from engine.store.versions import ensure_version, list_versions, load_snapshot  # noqa: F401
