"""One measurement of CPU per command, run against the source tree named on the command line.

    python bench/cpu_worker.py TREE WORKDIR [--starts N] [--fires N]

Run by ``bench.bench_cpu`` as a subprocess, once for the tree under test and once for a
baseline checkout, so both run the very same workload with the same interpreter and
packages. ``TREE`` goes first on ``sys.path``: its ``engine`` and ``bench.common`` are the
ones imported (the editable install's finder comes after the path). Prints one JSON object:
CPU ms per start, per action and per fired timer (each timer step the sweep fires), and each phase's exclusive CPU per
component (wrappers around the named functions; a component a tree lacks is left out).
"""
from __future__ import annotations

import functools
import importlib
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

# What each label wraps: (module, attribute path). Both trees are searched for every entry,
# so a component moved to another module in one of them is still counted there.
COMPONENTS: list[tuple[str, str, str]] = [
    ("engine.runtime.service", "Engine.advance", "service glue"),
    ("engine.runtime.service", "Engine.start", "service glue"),
    ("engine.runtime.service", "Engine.tick", "service glue"),
    ("engine.runtime.sweep", "_fire_row", "service glue"),
    ("contextlib", "_GeneratorContextManager.__enter__", "store: transaction BEGIN/COMMIT"),
    ("contextlib", "_GeneratorContextManager.__exit__", "store: transaction BEGIN/COMMIT"),
    ("engine.store.prepared", "Prepared.execute", "store: SQL statements"),
    ("engine.store.prepared", "Prepared.executemany", "store: SQL statements"),
    ("engine.store.prepared", "Prepared.first", "store: SQL statements"),
    ("engine.store.prepared", "Prepared.first_unprocessed", "store: SQL statements"),
    # The storage port's backends (this tree; the names above are the baseline's).
    ("engine.store.backends.sqlite", "_run", "store: SQL statements"),
    ("engine.store.backends.sqlite", "_run_many", "store: SQL statements"),
    ("engine.store.backends.sqlite", "SqliteStore.load_for_write", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.append", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.new_instance_id", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore._sync_timers", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.due_steps", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.claim_step", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.enqueue", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.load_many_for_write", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.append_many", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.sync_timers_many", "store: load/cache/append/timers"),
    ("engine.store.backends.sqlite", "SqliteStore.insert_outbox", "store: load/cache/append/timers"),
    # The baseline trees' (2e6761d, 32ce024): the re-export shim and prepared statements.
    ("engine.store.repository", "load_for_write", "store: load/cache/append/timers"),
    ("engine.store.repository", "append", "store: load/cache/append/timers"),
    ("engine.store.repository", "new_instance_id", "store: load/cache/append/timers"),
    ("engine.store.instance_cache", "InstanceCache.updated", "store: load/cache/append/timers"),
    ("engine.store.timers", "sync", "store: load/cache/append/timers"),
    ("engine.store.timers", "due", "store: load/cache/append/timers"),
    ("engine.store.timers", "lock_due", "store: load/cache/append/timers"),
    ("engine.store.timers", "claim", "store: load/cache/append/timers"),
    ("engine.store.repository", "canonical_json", "encode: canonical JSON + hash"),
    ("engine.store.repository", "event_hash", "encode: canonical JSON + hash"),
    ("engine.store.repository", "encode_event", "encode: canonical JSON + hash"),
    ("engine.store.ledger", "canonical_json", "encode: canonical JSON + hash"),
    ("engine.core.decide", "decide_action", "core: decide"),
    ("engine.core.decide", "decide_start", "core: decide"),
    ("engine.runtime.service", "decide_fire", "core: decide"),
    ("engine.core.clocks", "fire_events", "core: clocks"),
    ("engine.store.ledger", "note", "store: load/cache/append/timers"),
    ("engine.store.repository", "enqueue", "store: load/cache/append/timers"),
    ("engine.core.decide", "_validate", "core: form validation"),
    ("engine.core.evolve", "evolve", "core: evolve + Instance.with_"),
    ("engine.core.evolve", "start", "core: evolve + Instance.with_"),
    ("engine.core.model", "Instance.with_", "core: evolve + Instance.with_"),
    ("engine.core.clocks", "react", "core: clocks"),
    ("engine.core.clocks", "fire", "core: clocks"),
    ("engine.runtime.service", "Engine._catch_up", "core: clocks"),
    # the concept modules (in 32ce024 and the batch paths' tree; engine/store/repository.py re-exported them)
    ("engine.store.instances", "load_for_write", "store: load/cache/append/timers"),
    ("engine.store.instances", "load_many_for_write", "store: load/cache/append/timers"),
    ("engine.store.log", "append", "store: load/cache/append/timers"),
    ("engine.store.log", "append_many", "store: load/cache/append/timers"),
    ("engine.store.log", "projection_changes", "store: load/cache/append/timers"),
    ("engine.store.timers", "sync_many", "store: load/cache/append/timers"),
    ("engine.store.queue", "enqueue", "store: load/cache/append/timers"),
    ("engine.store.log", "encode_event", "encode: canonical JSON + hash"),
    ("engine.store.log", "canonical_json", "encode: canonical JSON + hash"),
    ("engine.store.prepared", "Prepared.update_many", "store: SQL statements"),
    ("engine.store.prepared", "Prepared.all_unprocessed", "store: SQL statements"),
    ("engine.runtime.batch", "act_many", "service glue"),
    ("engine.runtime.batch", "BatchWriter.write", "service glue"),
    ("engine.runtime.batch", "BatchWriter.flush", "service glue"),
    ("engine.runtime.service", "Engine._change_in", "service glue"),
]


def exclusive_cpu(fn: Callable[..., Any], label: str, acc: dict[str, float],
                  stack: list[float]) -> Callable[..., Any]:
    """``fn`` wrapped to add its process CPU, less that of wrapped calls inside it, to
    ``acc[label]``: exclusive time, so nested components are not counted twice. Lives here,
    not in bench/common.py, because this worker also runs with a baseline tree first on the
    import path, whose bench/ may not have it."""
    @functools.wraps(fn)
    def timed(*a: Any, **kw: Any) -> Any:
        t = time.process_time()
        stack.append(0.0)
        try:
            return fn(*a, **kw)
        finally:
            spent, inner = time.process_time() - t, stack.pop()
            acc[label] = acc.get(label, 0.0) + spent - inner
            if stack:
                stack[-1] += spent
    return timed


class Profiler:
    """Exclusive process CPU per label (wrappers, not cProfile: its per-call cost inflates
    the many small functions of one command)."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = {}
        self._stack: list[float] = []
        self._wrapped: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        for module, attr, label in COMPONENTS:
            try:
                owner: Any = importlib.import_module(module)
            except ImportError:
                continue
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            if owner is not None and name in getattr(owner, "__dict__", {}):
                self._wrap(owner, name, label)

    def _wrap(self, owner: Any, name: str, label: str) -> None:
        fn = owner.__dict__[name]
        self._wrapped.append((owner, name, fn))
        acc, stack = self.acc, self._stack

        setattr(owner, name, exclusive_cpu(fn, label, acc, stack))

    def measure(self, body: Callable[[], int]) -> dict[str, Any]:
        """CPU ms per command of ``body`` (which returns how many commands it ran), with its components."""
        self.acc.clear()
        begin = time.process_time()
        count = max(body(), 1)
        total = time.process_time() - begin
        parts = {k: v * 1e3 / count for k, v in self.acc.items()}
        if parts:
            parts["other (outside the wrapped functions)"] = total * 1e3 / count - sum(parts.values())
        return {"cpu_ms": total * 1e3 / count, "count": count, "parts": parts}


def main(argv: list[str]) -> dict[str, Any]:
    tree, workdir = Path(argv[0]).resolve(), Path(argv[1])
    starts = int(argv[argv.index("--starts") + 1]) if "--starts" in argv else 200
    fires = int(argv[argv.index("--fires") + 1]) if "--fires" in argv else 200
    profiled = "--no-components" not in argv
    per = int(argv[argv.index("--per") + 1]) if "--per" in argv else 100
    sys.path.insert(0, str(tree))
    import engine  # noqa: F401  (checked below: must come from the tree)
    if not Path(engine.__file__).resolve().is_relative_to(tree):
        raise SystemExit(f"engine imported from {engine.__file__}, not from {tree}")
    from bench.common import FINDINGS, build_prefill, complaint, copy_db, interim, open_engine, worker_for
    from engine.clock import FakeClock

    workdir.mkdir(parents=True, exist_ok=True)
    base = workdir / "base.db"
    _, after = build_prefill(base, fires)
    prof = Profiler()
    out: dict[str, Any] = {"tree": str(tree)}

    # starts and actions, on a copy of the prefilled store
    copy_db(base, workdir / "commands.db")
    clock = FakeClock(after + timedelta(minutes=1))
    eng = open_engine(workdir / "commands.db", clock)
    step = timedelta(seconds=1)

    def start(i: int) -> tuple[int, str]:
        data = complaint(fires + i)
        iid = eng.start("complaint", "liu_fang", data).id
        clock.advance(step)
        return iid, worker_for(data)

    for i in range(20):
        start(i)
    if profiled:
        prof.install()
    made: list[tuple[int, str]] = []
    out["start"] = prof.measure(lambda: len([made.append(start(20 + i)) for i in range(starts)]))

    def actions() -> int:
        for iid, who in made:
            for action, data in (("investigate", None), ("record_findings", FINDINGS), ("interim_reply", None)):
                eng.advance(iid, action, who, data if action != "interim_reply" else interim(clock))
                clock.advance(step)
        return 3 * len(made)
    out["action"] = prof.measure(actions)
    out["action_batched"] = _batched_actions(eng, prof, clock, start, starts, per) if has_batches(eng) \
        else dict(out["action"], batched=False)
    eng.close()

    # timers: every prefilled complaint has a reply-clock step due within the day
    copy_db(base, workdir / "timers.db")
    until = after + timedelta(days=1)
    eng = open_engine(workdir / "timers.db", FakeClock(until))

    def sweep() -> int:
        fired = 0
        while batch := eng.tick(until, limit=200):
            fired += len(batch)
        return fired
    out["fire"] = prof.measure(sweep)
    eng.close()
    out.update(fire_floors(base, workdir, until, out["fire"]["count"]))
    out["raw_commit"] = {"cpu_ms": raw_commit_cpu_ms(workdir / "raw.db", 500), "parts": {}}
    return out


def fire_floors(base: Path, workdir: Path, until: Any, fired: int) -> dict[str, Any]:
    """What the same sweep costs below the engine (bench/sqlite_floor.py), per fired step:
    SQLite running the very statements the sweep sent (recorded in a second sweep of a fresh
    copy, replayed on a third), and the standard library encoding and hashing the events it
    inserted. The recording run's own CPU is not counted anywhere."""
    from bench.common import copy_db, open_engine
    from engine.clock import FakeClock
    floor = _floor_module()
    log: list[Any] = []
    copy_db(base, workdir / "recorded.db")
    with floor.record(log):
        eng = open_engine(workdir / "recorded.db", FakeClock(until))
        opened = len(log)
        while eng.tick(until, limit=200):
            pass
        eng.close()
    copy_db(base, workdir / "replayed.db")
    sql_s = floor.replay(workdir / "replayed.db", log, opened)
    hash_s = floor.hash_floor(floor.event_rows(log[opened:]))
    return {"fire_floor_sql": {"cpu_ms": sql_s * 1e3 / fired, "parts": {}},
            "fire_floor_hash": {"cpu_ms": hash_s * 1e3 / fired, "parts": {}}}


def _floor_module() -> Any:
    """This file's bench/sqlite_floor.py, whichever tree is first on the path (a baseline
    tree's bench/ has none): loaded by its path, the same code for both trees."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("sop_bench_sqlite_floor", Path(__file__).with_name("sqlite_floor.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def has_batches(eng: Any) -> bool:
    """Whether the tree under test has batch actions (the baseline has not: its column is
    its one-at-a-time action, the only way it can persist a complaint action)."""
    return hasattr(eng, "act_many")


def _batched_actions(eng: Any, prof: Profiler, clock: Any, start: Callable[[int], tuple[int, str]],
                     starts: int, per: int) -> dict[str, Any]:
    """The same three actions on as many fresh complaints, ``per`` items per transaction
    through ``Engine.act_many``: each batch takes one action on each of ``per`` complaints
    (as a supervisor's batch does), the next batch the next action."""
    from bench.common import FINDINGS, interim
    from engine.runtime.batch import ActItem
    fresh = [start(10_000 + i) for i in range(starts)]
    step = timedelta(seconds=1)

    def batches() -> int:
        for group in range(0, len(fresh), per):
            cases = fresh[group:group + per]
            for action, data in (("investigate", None), ("record_findings", FINDINGS), ("interim_reply", None)):
                eng.act_many([ActItem(iid, action=action, staff=who,
                                      data=data if action != "interim_reply" else interim(clock))
                              for iid, who in cases])
                clock.advance(step)
        return 3 * len(fresh)
    return dict(prof.measure(batches), batched=True, per=per)


def raw_commit_cpu_ms(path: Path, n: int) -> float:
    """CPU ms of one bare SQLite write transaction with the engine's pragmas (one small
    INSERT per BEGIN IMMEDIATE … COMMIT): the floor under any command that commits alone."""
    import sqlite3
    from engine.store.db import SQLITE_PRAGMAS
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload TEXT NOT NULL)")
        payload = json.dumps({"unit": "3-1201", "content": "楼上漏水"}, ensure_ascii=False)
        begin = -1.0
        for i in range(n + 10):  # ten to warm up: create the WAL, settle the first pages
            if i == 10:
                begin = time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, payload) VALUES (?, ?)", (str(i), payload))
            conn.execute("COMMIT")
        return (time.process_time() - begin) * 1e3 / n
    finally:
        conn.close()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
