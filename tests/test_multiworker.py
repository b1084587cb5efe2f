"""Several processes on one PostgreSQL database (issue 6).

1. Four ``sop worker`` processes sweep 5,000 due timers; one is killed with SIGKILL in the
   middle of the run. Every timer fires exactly once: one ``TimerFired`` event per
   (instance, timer, due time), none missing, none doubled.
2. Two ``sop serve`` API processes (a client on each, recording notes round the same
   twenty instances in opposite orders, half the requests with ``If-Match``) and two
   ``sop worker`` processes race; the instances' timer comes due every second. No lost
   update (every write answered 200 is in the log, once; nothing answered 409/422 is), no
   duplicated clock event, every chain verifies and replays.

The workers are the real ``sop worker`` command on the real clock; the procedures are two
small fixtures (``tests/fixtures/multiworker``). Timers are made due by starting the
instances an hour in the past. 5,000 instances are written as copies of one the engine
started (its event chain recomputed for each new id), which takes a second or two where
5,000 ``Engine.start`` calls would take half a minute; the workers start up meanwhile.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import sqlalchemy as sa

from engine import audit
from engine.clock import FakeClock, SystemClock
from engine.runtime.config import Settings, build_engine
from engine.store.tables import events as E
from engine.store.tables import instances as I
from engine.store.tables import procedure_versions as V
from engine.store.tables import timers as T
from tests.conftest import ROOT

PROCEDURES = ROOT / "tests" / "fixtures" / "multiworker" / "procedures"
REFUSAL_STATUS = {"conflict": 409, "time_order": 422}  # the API's status per refusal code
SOP = [sys.executable, "-c", "from cli import main; main()"]
TIMERS = 5000
CLOCK_EVENTS = ("TimerFired", "SlaWarned", "SlaBreached")


def settings_for(url: str) -> Settings:
    return Settings(url, PROCEDURES, ROOT / "org" / "demo.yaml")


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "SOP_DB": url, "SOP_PROCEDURES": str(PROCEDURES), "PYTHONUNBUFFERED": "1"}


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> None:
    """Poll a real process's progress, bounded in time."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def scalar(engine: Any, stmt: Any) -> int:
    with engine.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def clock_events(engine: Any) -> list[tuple[int, str, str]]:
    """(instance, clock, due) of every clock firing in the log."""
    with engine.read() as conn:
        rows = conn.execute(sa.select(E.c.instance_id, E.c.data).where(E.c.type.in_(CLOCK_EVENTS))).all()
    return [(r.instance_id, json.loads(r.data)["name"], json.loads(r.data)["due"]) for r in rows]


def copy_instances(source: Any, target: Any, template_id: int, n: int) -> list[int]:
    """``n`` copies of an instance stored in ``source``, written to ``target`` under ids 1..n
    in one transaction (rows exactly as the engine wrote them, each chain recomputed)."""
    with source.read() as conn:
        versions = [r._asdict() for r in conn.execute(sa.select(V))]
        inst = conn.execute(sa.select(I).where(I.c.id == template_id)).one()._asdict()
        events = [r._asdict() for r in conn.execute(sa.select(E).where(E.c.instance_id == template_id)
                                                      .order_by(E.c.seq))]
        timers = [r._asdict() for r in conn.execute(sa.select(T).where(T.c.instance_id == template_id))]
    ids = list(range(1, n + 1))
    inst_rows, event_rows, timer_rows = [], [], []
    for iid in ids:
        prev = events[0]["prev_hash"]
        for e in events:
            h = audit.event_hash(iid, e["seq"], e["type"], e["actor"], e["role"], e["occurred_at"],
                                 e["recorded_at"], e["data"], prev)
            event_rows.append({**e, "instance_id": iid, "prev_hash": prev, "hash": h})
            prev = h
        inst_rows.append({**inst, "id": iid, "last_hash": prev})
        timer_rows += [{**t, "instance_id": iid} for t in timers]
    with target.transaction() as conn:
        for table, rows in ((V, versions), (I, inst_rows), (E, event_rows), (T, timer_rows)):
            for i in range(0, len(rows), 2000):
                conn.execute(sa.insert(table), rows[i:i + 2000])
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('instances', 'id'), :n)"), {"n": ids[-1]})
    return ids


# ------------------------------------------------------------------ 4 workers, 5,000 timers, one killed

def test_four_workers_fire_5000_timers_exactly_once_though_one_is_killed(pg_url: str, tmp_path: Path) -> None:
    begin = time.monotonic()
    # The workers start up (imports, definitions) while the timers are written.
    workers = [spawn(SOP + ["worker", "--interval", "0.2"], env_for(pg_url), tmp_path / f"worker{i}.log")
               for i in range(4)]
    try:
        # One instance started an hour ago on a scratch SQLite file, copied 5,000 times: all due.
        hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        scratch = build_engine(settings_for(f"sqlite:///{tmp_path / 'template.db'}"), FakeClock(hour_ago))
        template = scratch.start("nudge", "liu_fang")
        setup = build_engine(settings_for(pg_url), SystemClock())
        ids = copy_instances(scratch, setup, template.id, TIMERS)
        prefill_s = time.monotonic() - begin
        fired_so_far = sa.select(sa.func.count()).select_from(E).where(E.c.type == "TimerFired")
        wait_for("the workers to start firing", lambda: scalar(setup, fired_so_far) > 0, 60)
        started_s = time.monotonic() - begin
        wait_for("the workers to get going", lambda: scalar(setup, fired_so_far) >= TIMERS // 4, 60)
        workers[0].send_signal(signal.SIGKILL)  # in the middle of a batch: its transaction never commits
        workers[0].wait(10)
        pending = sa.select(sa.func.count()).select_from(T).where(T.c.next_fire_at.is_not(None))
        wait_for("every timer to fire", lambda: scalar(setup, pending) == 0, 60)
        fired_s = time.monotonic() - begin
    finally:
        stop(workers)
    assert workers[0].returncode == -signal.SIGKILL
    for i, w in enumerate(workers[1:], 1):
        log = (tmp_path / f"worker{i}.log").read_text(errors="replace")
        assert w.returncode == 0 and "Traceback" not in log, log

    fired = clock_events(setup)
    doubled = [k for k, n in Counter(fired).items() if n > 1]
    assert doubled == [] and len(fired) == TIMERS
    assert {iid for iid, _, _ in fired} == set(ids)
    assert setup.verify()[2] is None
    elapsed = time.monotonic() - begin
    print(f"\n{TIMERS} timers, 4 workers (one killed): prefill {prefill_s:.1f}s, first firing at {started_s:.1f}s, "
          f"all fired at {fired_s:.1f}s, checked at {elapsed:.1f}s")


# ------------------------------------------------------------------ 2 API processes and 2 workers racing

def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``sop serve`` process (API only) on a free port, and its base URL."""
    proc = spawn(SOP + ["serve", "--port", "0", "--no-scheduler", "--no-outbox"], env, log)
    found: list[str] = []

    def banner() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        found.extend(re.findall(r"sop serve: (http://\S+)/docs", log.read_text(errors="replace")))
        return bool(found)

    wait_for("sop serve to listen", banner, 60)
    return proc, found[0]


def client_loop(base: str, token: str, name: str, ids: list[int], seconds: float) -> dict[str, Any]:
    """Record notes round the instances for a while; every other request names the revision
    it last saw (If-Match), so stale ones must be refused. What the server answered, by kind."""
    done, refused, seen = [], Counter(), {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            iid, note = ids[n % len(ids)], f"{name}-{n}"
            headers = {"If-Match": f'"{seen[iid]}"'} if n % 2 and iid in seen else {}
            n += 1
            r = http.post(f"/v1/instances/{iid}/data", json={"data": {"note": note}}, headers=headers)
            if r.status_code == 200:
                done.append((iid, note))
                seen[iid] = r.json()["revision"]
            else:
                # Which refusal depends on the race (a stale If-Match, or another write landed
                # later in time); each must come with its own status, and nothing is written.
                code = r.json()["code"]
                assert r.status_code == REFUSAL_STATUS[code], r.text
                refused[code] += 1
                seen.pop(iid, None)
    return {"done": done, "refused": refused}


def test_two_api_processes_and_two_workers_racing_lose_nothing_and_double_nothing(pg_url: str, runner: Any,
                                                                                   tmp_path: Path) -> None:
    from cli import main

    setup = build_engine(settings_for(pg_url), SystemClock())
    ids = [setup.start("race", "liu_fang").id for _ in range(20)]
    env = env_for(pg_url)
    token = runner.invoke(main, ["--db", pg_url, "staff", "token", "create", "liu_fang"], env=env).stdout.strip()
    workers = [spawn(SOP + ["worker", "--interval", "0.1"], env, tmp_path / f"worker{i}.log") for i in range(2)]
    apis: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for i in range(2):
            proc, url = serve(env, tmp_path / f"api{i}.log")
            apis.append(proc)
            urls.append(url)
        results: list[Any] = [None, None]

        def run(k: int) -> None:  # the two clients meet on every instance, one on each API process
            try:
                results[k] = client_loop(urls[k], token, f"c{k}", ids if k == 0 else ids[::-1], 6)
            except BaseException as e:  # judged below
                results[k] = e

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        stop(workers + apis)
    assert not [r for r in results if not isinstance(r, dict)], results
    for name in [f"worker{i}" for i in range(2)] + [f"api{i}" for i in range(2)]:
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert "Traceback" not in log and "not fired" not in log, log

    done = [d for r in results for d in r["done"]]
    assert len(done) > 50 and sum(r["refused"]["conflict"] for r in results) > 0, results
    with setup.read() as conn:
        notes = Counter((r.instance_id, json.loads(r.data)["changes"]["note"])
                        for r in conn.execute(sa.select(E.c.instance_id, E.c.data).where(E.c.type == "DataRecorded")))
    assert sorted(notes) == sorted(done)  # every write answered 200 landed, and nothing refused did
    assert max(notes.values()) == 1
    fired = clock_events(setup)
    assert len(fired) > len(ids) and max(Counter(fired).values()) == 1  # the timers did fire, each step once
    for iid in ids:
        assert setup.replay(iid).ok
    checked, _, broken = setup.verify()
    assert checked == len(ids) and broken is None
    refused = sum((r["refused"] for r in results), Counter())
    print(f"\n2 API processes + 2 workers: {len(done)} writes landed, refused {dict(refused)}, "
          f"{len(fired)} timer firings")
