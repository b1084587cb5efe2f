"""Goals f and g: actions and memory with many stored instances, and replay (one instance, in bulk)."""
from __future__ import annotations

import multiprocessing as mp
import random
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import FINDINGS, T0, build_prefill, complaint, copy_db, interim, open_engine, worker_for
from bench.suite_common import FRONT_DESK, MS, Sizes, med, pct
from engine.clock import FakeClock


def _rss_kb() -> tuple[int, int]:
    rss = hwm = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def _scale_child(path: str, ids: list[int], start_at: datetime, out: Any) -> None:
    clock = FakeClock(start_at)
    engine = open_engine(Path(path), clock)
    engine.advance(ids[0], "investigate", worker_for(complaint(_template(ids[0]))))  # warm-up
    rss0 = _rss_kb()[0]
    begin = time.perf_counter()
    for iid in ids[1:]:
        clock.advance(timedelta(milliseconds=10))
        engine.advance(iid, "investigate", worker_for(complaint(_template(iid))))
    rate = (len(ids) - 1) / (time.perf_counter() - begin)
    rss1, hwm = _rss_kb()
    engine.close()
    out.put((rate, rss0, rss1, hwm))


def _template(iid: int, templates: int = 48) -> int:
    return (iid - 1) % templates


def _received_ids(n_instances: int, rng: random.Random, count: int, used: set[int]) -> list[int]:
    """Random stored complaints still in ``received`` (templates with index % 10 < 4)."""
    out: list[int] = []
    while len(out) < count:
        iid = rng.randint(1, n_instances)
        if _template(iid) % 10 < 4 and iid not in used:
            used.add(iid)
            out.append(iid)
    return out


def goal_f(tmp: Path, sz: Sizes, big_path: Path, big_after: datetime, big_build_s: float) -> dict[str, Any]:
    small = tmp / "f-small.db"
    _, small_after = build_prefill(small, 1_000)
    ctx = mp.get_context("spawn")
    rng = random.Random(6)
    sizes = {1_000: (small, small_after, set()), sz.f_big: (big_path, big_after, set())}
    res: dict[int, list[tuple[float, int, int, int]]] = {1_000: [], sz.f_big: []}
    for rep in range(sz.reps):
        for n in (list(sizes) if rep % 2 == 0 else list(sizes)[::-1]):
            path, after, used = sizes[n]
            if n == 1_000:  # a fresh copy each time: the small store has only ~400 complaints to act on
                path, used = tmp / "f-small-run.db", set()
                copy_db(small, path)
            ids = _received_ids(n, rng, min(sz.f_actions, 380) if n == 1_000 else sz.f_actions, used)
            out = ctx.Queue()
            p = ctx.Process(target=_scale_child, args=(str(path), ids, after + timedelta(minutes=1), out))
            p.start()
            res[n].append(out.get(timeout=600))
            p.join()
    s, b = med([r[0] for r in res[1_000]]), med([r[0] for r in res[sz.f_big]])
    rs, rb = med([r[2] for r in res[1_000]]), med([r[2] for r in res[sz.f_big]])
    return {"big": sz.f_big, "small_rate": s, "big_rate": b, "ratio": b / s, "met": b / s >= 0.8,
            "rss_small_mb": rs / 1024, "rss_big_mb": rb / 1024,
            "rss_growth_small_mb": med([(r[2] - r[1]) / 1024 for r in res[1_000]]),
            "rss_growth_big_mb": med([(r[2] - r[1]) / 1024 for r in res[sz.f_big]]),
            "met_mem": rb <= rs * 1.1 + 5 * 1024, "build_s": big_build_s,
            "size_mb": big_path.stat().st_size / 1e6}


def goal_g(tmp: Path, sz: Sizes, big_path: Path) -> dict[str, Any]:
    from engine import audit

    # One instance with ~50 events: a complaint answered with interim replies until it has 50.
    db = tmp / "g-one.db"
    clock = FakeClock(T0)
    engine = open_engine(db, clock)
    data = complaint(0)
    who = worker_for(data)
    inst = engine.start("complaint", FRONT_DESK, data)
    clock.advance(timedelta(minutes=1))
    inst = engine.advance(inst.id, "investigate", who)
    clock.advance(timedelta(minutes=1))
    inst = engine.advance(inst.id, "record_findings", who, FINDINGS)
    while inst.revision < 50:
        clock.advance(timedelta(minutes=1))
        inst = engine.advance(inst.id, "interim_reply", who, interim(clock))
    n_events = inst.revision
    full, fold = [], []
    with engine.read() as conn:
        proc = engine.procedure_for(conn, inst.procedure, inst.version)
        rows = engine.store.events_of(conn, inst.id)
    events = [r.to_event() for r in rows]
    for _ in range(50):
        engine.replay(inst.id)
    for _ in range(1000 if sz.reps > 1 else 200):
        t = time.perf_counter()
        assert engine.replay(inst.id).ok
        full.append((time.perf_counter() - t) * MS)
        t = time.perf_counter()
        audit.replay(proc, inst.id, events)
        fold.append((time.perf_counter() - t) * MS)
    engine.close()

    # Bulk: the first g_bulk_events events of the big store, raw read vs replayed.
    conn = sqlite3.connect(big_path)
    hi = conn.execute("SELECT instance_id FROM events ORDER BY instance_id, seq LIMIT 1 OFFSET ?",
                      (sz.g_bulk_events - 1,)).fetchone()
    hi_id = hi[0] if hi else 10 ** 12
    conn.close()
    raw_rates, replay_rates = [], []
    engine = open_engine(big_path, FakeClock(T0))
    for rep in range(sz.reps):
        conn = sqlite3.connect(big_path)
        begin = time.perf_counter()
        n_raw = 0
        for _row in conn.execute("SELECT * FROM events WHERE instance_id <= ? ORDER BY instance_id, seq", (hi_id,)):
            n_raw += 1
        raw_rates.append(n_raw / (time.perf_counter() - begin))
        conn.close()
        begin = time.perf_counter()
        n_rep = 0
        with engine.read() as rconn:
            procs: dict[tuple[str, str], Any] = {}
            for iid, _last, _rev, chain in engine.store.iter_chains(rconn):
                if iid > hi_id:
                    break
                assert not isinstance(chain, Exception)
                if not chain:
                    continue
                head = engine.store.load(rconn, iid) if not procs else None
                if head is not None:
                    procs["p"] = engine.procedure_for(rconn, head.procedure, head.version)
                audit.replay(procs["p"], iid, [r.to_event() for r in chain])
                n_rep += len(chain)
        replay_rates.append(n_rep / (time.perf_counter() - begin))
    engine.close()
    r, p = med(raw_rates), med(replay_rates)
    return {"events": n_events, "full_p99": pct(full, 0.99), "full_p50": pct(full, 0.5),
            "fold_p99": pct(fold, 0.99), "met_one": pct(full, 0.99) <= 1.0, "bulk_events": n_raw,
            "raw": r, "replay": p, "ratio": p / r, "met_bulk": p / r >= 0.25}
