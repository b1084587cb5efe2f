"""Several sweeper processes sharing one timer backlog, on SQLite and on PostgreSQL.

    python -m bench.bench_sweepers                 # 1,000 complaints' steps, 1 and 2 sweepers, both backends
    python -m bench.bench_sweepers --complaints 300 --sweepers 1,2,4

Every sweep chooses its batch inside the write transaction that fires it (engine/runtime/
sweep.py): on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets sweepers fire disjoint batches at
once; on SQLite the one write lock makes them take turns. Each run starts the complaints
one day back, then k processes call ``Engine.tick`` until nothing is due; the drain rate
is all steps fired / the wall time until the last process is done, and every step must
have fired exactly once (the events are counted afterwards).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import ROOT, T0, complaint
from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine

FIRED_TYPES = ("SlaWarned", "SlaBreached")


def _engine(url: str, clock: Any):  # type: ignore[no-untyped-def]
    return build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)


def _sweeper(url: str, until_iso: str, barrier: Any, out: Any) -> None:
    from datetime import datetime

    until = datetime.fromisoformat(until_iso)
    engine = _engine(url, FakeClock(until))
    barrier.wait()
    n = 0
    while batch := engine.tick(until, limit=50):
        n += len(batch)
    out.put((n, time.perf_counter()))
    engine.close()


def drain(url: str, complaints: int, sweepers: int) -> dict[str, Any]:
    """Fill ``url`` with a day-old backlog, drain it with ``sweepers`` processes."""
    clock = FakeClock(T0)
    engine = _engine(url, clock)
    for i in range(complaints):
        engine.start("complaint", "liu_fang", complaint(i))
    until = T0 + timedelta(days=10)
    engine.close()
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(sweepers + 1), ctx.Queue()
    procs = [ctx.Process(target=_sweeper, args=(url, until.isoformat(), barrier, out)) for _ in range(sweepers)]
    for p in procs:
        p.start()
    barrier.wait()
    begin = time.perf_counter()
    got = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    fired = sum(g[0] for g in got)
    engine = _engine(url, FakeClock(until))
    with engine.read() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM events WHERE type IN ('SlaWarned', 'SlaBreached')")).scalar()
    engine.close()
    wall = max(g[1] for g in got) - begin
    return {"sweepers": sweepers, "fired": fired, "events": events, "per_s": fired / wall, "wall_s": wall}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--complaints", type=int, default=1_000)
    ap.add_argument("--sweepers", default="1,2")
    args = ap.parse_args(argv)
    counts = [int(k) for k in args.sweepers.split(",")]
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(ROOT))
    from tests.pg import SERVER_SETTINGS, Databases, PgServer, find_bindir

    print("| backend | sweepers | steps fired | events | fired/s |\n|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-sweepers-") as d:
        for k in counts:
            r = drain(f"sqlite:///{Path(d) / f's{k}.db'}", args.complaints, k)
            print(f"| SQLite | {k} | {r['fired']} | {r['events']} | {r['per_s']:,.0f} |", flush=True)
    bindir = find_bindir()
    if bindir is None:
        print("| PostgreSQL | — | no server binaries | | |")
        return
    server = PgServer(bindir, SERVER_SETTINGS).start()
    try:
        dbs = Databases(server, f"sopsweep{os.getpid()}")
        dbs.prepare()
        for k in counts:
            r = drain(str(server.url(dbs.new())), args.complaints, k)
            print(f"| PostgreSQL (fsync off) | {k} | {r['fired']} | {r['events']} | {r['per_s']:,.0f} |", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
