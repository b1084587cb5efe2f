"""Goals a and d: the engine's persisted actions against raw commits of the same database,
SQLite (its own statements replayed raw) and PostgreSQL (1, 2, 4 client processes)."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional

from bench.common import FINDINGS, ROOT, T0, build_prefill, complaint, copy_db, interim, open_engine, worker_for
from bench.suite_common import FRONT_DESK, Sizes, med, raw_sqlite
from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine


def _complaint_actions(engine: Any, clock: FakeClock, ids: list[int], first: int) -> int:
    n = 0
    for k, iid in enumerate(ids):
        who = worker_for(complaint(first + k))
        engine.advance(iid, "investigate", who)
        clock.advance(timedelta(seconds=1))
        engine.advance(iid, "record_findings", who, FINDINGS)
        clock.advance(timedelta(seconds=1))
        engine.advance(iid, "interim_reply", who, interim(clock))
        clock.advance(timedelta(seconds=1))
        n += 3
    return n


def _kind(sql: str) -> str:
    """``INSERT INTO events``, ``SELECT … FROM instances``, ``… ON CONFLICT`` for an upsert."""
    words = sql.replace('"', "").replace("(", " ").split()
    verb = words[0].upper()
    if verb == "SELECT":
        table = words[[w.upper() for w in words].index("FROM") + 1]
        kind = f"SELECT … FROM {table}"
    elif verb == "INSERT":
        kind = f"INSERT INTO {words[2]}"
    else:
        kind = f"{verb} {words[1]}"
    return kind + (" … ON CONFLICT" if "ON CONFLICT" in sql.upper() else "")


def goal_a(tmp: Path, sz: Sizes) -> dict[str, Any]:
    base = tmp / "a-base.db"
    _, after = build_prefill(base, 1_000)
    clock = FakeClock(after + timedelta(minutes=1))
    engine = open_engine(base, clock)
    first = 10_000
    ids = [engine.start("complaint", FRONT_DESK, complaint(first + k)).id for k in range(sz.a_complaints)]
    engine.close()
    t_actions = clock.now() + timedelta(minutes=1)

    # Capture: the statements of every write transaction the engine runs for these actions.
    cap = tmp / "a-capture.db"
    copy_db(base, cap)
    trace: list[str] = []
    engine = open_engine(cap, FakeClock(t_actions))
    engine.close()
    import sqlalchemy as sa
    sa.event.listen(engine.db, "connect", lambda dbapi, _rec: dbapi.set_trace_callback(trace.append))
    _complaint_actions(engine, engine.clock, ids, first)
    engine.close()
    txs: list[list[str]] = []
    cur: Optional[list[str]] = None
    for s in trace:
        if s.startswith("BEGIN IMMEDIATE"):
            cur = []
        elif s.startswith("COMMIT") and cur is not None:
            txs.append(cur)
            cur = None
        elif cur is not None:
            cur.append(s)
    counts: dict[str, int] = {}
    for tx in txs:
        for s in tx:
            counts[_kind(s)] = counts.get(_kind(s), 0) + 1
    kinds = [f"{k} ×{v / len(txs):.2f}" for k, v in counts.items()]

    engine_rates, raw_rates = [], []
    for rep in range(sz.reps):
        for which in (("engine", "raw") if rep % 2 == 0 else ("raw", "engine")):
            work = tmp / f"a-{which}.db"
            copy_db(base, work)
            if which == "engine":
                eng = open_engine(work, FakeClock(t_actions))
                begin = time.perf_counter()
                n = _complaint_actions(eng, eng.clock, ids, first)
                engine_rates.append(n / (time.perf_counter() - begin))
                eng.close()
            else:
                conn = raw_sqlite(work)
                begin = time.perf_counter()
                for tx in txs:
                    conn.execute("BEGIN IMMEDIATE")
                    for s in tx:
                        conn.execute(s).fetchall()
                    conn.execute("COMMIT")
                raw_rates.append(len(txs) / (time.perf_counter() - begin))
                conn.close()
    e, r = med(engine_rates), med(raw_rates)
    return {"engine": e, "raw": r, "ratio": e / r, "met": e / r >= 0.35, "actions": 3 * len(ids),
            "txs": len(txs), "stmts": sum(map(len, txs)) / max(1, len(txs)), "kinds": kinds}


def _pg_client(kind: str, url: str, ids: list[int], first: int, start_at: datetime, barrier: Any, out: Any) -> None:
    try:
        if kind == "raw":
            import psycopg
            conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            barrier.wait()
            begin = time.perf_counter()
            for i in range(3 * len(ids)):
                conn.execute("INSERT INTO bench_raw (at, payload) VALUES (%s, %s)", (str(i), '{"unit": "3-1201"}'))
                conn.commit()
            out.put(("ok", 3 * len(ids), time.perf_counter() - begin))
            conn.close()
        else:
            clock = FakeClock(start_at)
            engine = build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
            barrier.wait()
            begin = time.perf_counter()
            n = _complaint_actions(engine, clock, ids, first)
            out.put(("ok", n, time.perf_counter() - begin))
            engine.close()
    except Exception as e:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        out.put(("error", repr(e), 0.0))


def _pg_floor(server: Any, seeded: str, prefix: str, ids: list[int], start_at: datetime) -> float:
    """Actions/s of the engine's own statements for one client's actions, sent again by a bare
    psycopg client to a copy of the same database (bench/pg_floor.py): the server's work, the
    round trips and the WAL flushes of an engine spending no time of its own."""
    from bench import pg_floor

    log: list[Any] = []
    for name in (f"{prefix}_rec", f"{prefix}_rep"):
        server.admin(f"CREATE DATABASE {name} TEMPLATE {seeded} STRATEGY FILE_COPY")
    try:
        clock = FakeClock(start_at)
        with pg_floor.record(log):
            engine = build_engine(Settings(server.url(f"{prefix}_rec"), ROOT / "procedures", ROOT / "org" / "demo.yaml"),
                                  clock)
            opened = len(log)
            n = _complaint_actions(engine, clock, ids, 0)
            engine.close()
        url = server.url(f"{prefix}_rep").replace("postgresql+psycopg://", "postgresql://")
        return n / pg_floor.replay_seconds(url, log, opened)
    finally:
        for name in (f"{prefix}_rec", f"{prefix}_rep"):
            server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def goal_d(tmp: Path, sz: Sizes) -> dict[str, Any]:
    """Persisted actions: a server with PostgreSQL's durability (the goal); then the same
    with fsync off, where "raw" is the bare round-trip rate (reported, not judged)."""
    sys.path.insert(0, str(ROOT))
    from tests.pg import DURABLE_SETTINGS, SERVER_SETTINGS, find_bindir

    bindir = find_bindir()
    if bindir is None:
        return {"skipped": "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine"}
    durable = _goal_d_on(bindir, DURABLE_SETTINGS, sz)
    durable["no_fsync"] = _goal_d_on(bindir, SERVER_SETTINGS, sz)
    return durable


def _goal_d_on(bindir: Path, settings: dict[str, str], sz: Sizes) -> dict[str, Any]:
    from tests.pg import Databases, PgServer

    server = PgServer(bindir, settings).start()
    try:
        dbs = Databases(server, f"sopbench{os.getpid()}")
        dbs.prepare()
        seeded = dbs.new()
        url = server.url(seeded)
        clock = FakeClock(T0)
        engine = build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
        total = 4 * sz.d_per_client
        ids = []
        for k in range(total):
            ids.append(engine.start("complaint", FRONT_DESK, complaint(k)).id)
            clock.advance(timedelta(seconds=1))
        with engine.db.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, at text NOT NULL, payload text NOT NULL)")
        engine.close()
        start_at = clock.now() + timedelta(minutes=1)
        ctx = mp.get_context("fork")  # children inherit the loaded procedure library
        rows = []
        for clients in (1, 2, 4):
            per = total // clients if clients > 1 else sz.d_per_client
            rates: dict[str, list[float]] = {"engine": [], "raw": []}
            for rep in range(sz.reps):
                for kind in (("engine", "raw") if rep % 2 == 0 else ("raw", "engine")):
                    name = f"{dbs.prefix}_c{clients}_{rep}_{kind}"
                    server.admin(f"CREATE DATABASE {name} TEMPLATE {seeded} STRATEGY FILE_COPY")
                    curl = server.url(name)
                    barrier, out = ctx.Barrier(clients), ctx.Queue()
                    procs = [ctx.Process(target=_pg_client, args=(kind, curl, ids[c * per:(c + 1) * per], c * per,
                                                                  start_at, barrier, out)) for c in range(clients)]
                    for p in procs:
                        p.start()
                    got = [out.get(timeout=600) for _ in procs]
                    for p in procs:
                        p.join()
                    errors = [g[1] for g in got if g[0] != "ok"]
                    if errors:
                        raise RuntimeError(f"PostgreSQL client failed: {errors[0]}")
                    rates[kind].append(sum(g[1] for g in got) / max(g[2] for g in got))
                    server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            e, r = med(rates["engine"]), med(rates["raw"])
            rows.append({"clients": clients, "engine": e, "raw": r, "ratio": e / r})
        floor = _pg_floor(server, seeded, f"{dbs.prefix}_floor", ids[:sz.d_per_client], start_at)
        rows[0]["floor"] = floor
        rows[0]["bound"] = floor / rows[0]["raw"]
        ver = "?"
        import psycopg
        with psycopg.connect(host=str(server.root), user="sop", dbname="postgres") as c:
            ver = c.execute("SHOW server_version").fetchone()[0]
        shown = ("fsync", "synchronous_commit", "full_page_writes")
        return {"rows": rows, "met": all(r["ratio"] >= 0.5 for r in rows), "version": ver,
                "settings": ", ".join(f"{k}={settings.get(k, 'on (default)')}" for k in shown)}
    finally:
        server.stop()
