"""The instance cache changes what a command costs, never what it sees.

A command reuses the instance this engine last wrote only if the stored row is still the
very row it wrote; a row changed any other way is decoded as before. The whole suite runs
with ``SOP_CHECK_INSTANCE_CACHE=1`` (tests/conftest.py), which compares every hit with a
full decode of the row; the last test here shows that check can fail.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import ActionNotAllowed
from engine.store.instance_cache import InstanceCache
from tests.test_store_contract import db_url, other_engine  # noqa: F401  (db_url: every backend)
from tests.test_store_port import COMPLAINT, FINDINGS


def _started(engine):  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT)
    return c.id, engine.show(c.id).assignee


def test_a_command_after_this_engines_own_write_reuses_the_instance(engine) -> None:  # type: ignore[no-untyped-def]
    iid, steward = _started(engine)
    engine.advance(iid, "investigate", steward)
    engine.advance(iid, "record_findings", steward, FINDINGS)
    assert engine.instances.hits == 2 and engine.instances.misses == 0
    assert engine.replay(iid).ok


def test_a_write_by_another_process_is_read_as_it_is(engine) -> None:  # type: ignore[no-untyped-def]
    iid, steward = _started(engine)
    other = other_engine(engine)
    try:
        other.advance(iid, "investigate", steward)
    finally:
        other.close()
    after = engine.advance(iid, "record_findings", steward, FINDINGS)  # decided on the other's row
    assert engine.instances.misses == 1 and engine.instances.hits == 0
    assert after.state == "investigating" and after.revision == engine.history(iid)[-1].seq
    assert engine.replay(iid).ok and engine.verify()[2] is None


def test_a_projection_row_edited_by_hand_is_read_as_it_is(engine) -> None:  # type: ignore[no-untyped-def]
    iid, steward = _started(engine)
    with engine.transaction() as conn:
        conn.execute(sa.text("UPDATE instances SET state = 'closed' WHERE id = :i"), {"i": iid})
    with pytest.raises(ActionNotAllowed):  # from "closed" there is no investigate
        engine.advance(iid, "investigate", steward)
    assert engine.instances.hits == 0


def test_a_change_rolled_back_after_its_update_leaves_the_stored_instance_in_force(engine) -> None:  # type: ignore[no-untyped-def]
    iid, steward = _started(engine)

    def fail_once(*_args: object) -> None:
        engine.hooks.remove(fail_once)
        raise RuntimeError("a failure after the projection was written")

    engine.hooks.append(fail_once)
    with pytest.raises(RuntimeError):
        engine.advance(iid, "investigate", steward)
    assert engine.show(iid).state == "received" and engine.show(iid).revision == engine.history(iid)[-1].seq
    after = engine.advance(iid, "investigate", steward)  # decided on the stored row, not the rolled-back one
    assert after.state == "investigating" and engine.replay(iid).ok and engine.verify()[2] is None


def test_a_cache_entry_that_differs_from_its_row_is_caught_by_the_check(engine) -> None:  # type: ignore[no-untyped-def]
    iid, steward = _started(engine)
    cache: InstanceCache = engine.instances
    assert cache.check, "the suite runs with SOP_CHECK_INSTANCE_CACHE=1"
    row, inst, source = cache._entries[iid]
    cache._entries[iid] = (row, inst.with_(data={**inst.data, "unit": "9-9999"}), source)
    with pytest.raises(AssertionError, match="field 'data' differs"):
        engine.advance(iid, "investigate", steward)


def test_threads_sharing_one_engine_and_a_small_cache_lose_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    """The API runs one engine on a pool of threads: entries come and go under them."""
    import threading

    from engine.store.instances import INSTANCE_COLUMNS

    engine.instances = engine.store.cache = InstanceCache(INSTANCE_COLUMNS, size=3)
    started = [_started(engine) for _ in range(8)]
    errors: list[BaseException] = []

    def work(iid: int, steward: str) -> None:
        try:
            engine.advance(iid, "investigate", steward)
            engine.advance(iid, "record_findings", steward, FINDINGS)
        except BaseException as e:  # collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=pair) for pair in started]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    assert all(engine.show(iid).state == "investigating" and engine.replay(iid).ok for iid, _ in started)
    assert engine.verify()[2] is None
