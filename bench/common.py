"""What the benchmark needs besides the timing loops: the machine, the raw SQLite baseline,
the complaint workload, and a fast prefill of many stored instances.

Prefill: the engine itself writes a few dozen *template* complaints (different buildings,
channels, anonymous or not, left in different states), so every row is exactly what the
engine writes. Each template is then copied with a new instance id, table by table, in
one SQLite transaction: the instance row, its events (the hash chain is recomputed for the
new id, and each copy gets its ledger row, so ``sop audit verify`` passes on the copy), its
timers and outbox rows. The copies
keep their template's timestamps and data. 100k instances take seconds this way instead of
the minutes that 100k ``Engine.start`` calls would; the file is then copied for each
measurement so every repetition starts from the same state.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import sqlalchemy

from engine import audit, audit_ledger
from engine.clock import FakeClock
from engine.core.model import GENESIS_HASH
from engine.runtime.config import Settings, build_engine
from engine.store.db import SQLITE_PRAGMAS

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A working Tuesday (after the 2025 National Day holidays): nothing in the workload comes due.
T0 = datetime(2025, 10, 14, 9, 0, tzinfo=SHANGHAI)

STEWARDS = {"1": "wang_li", "2": "wang_li", "3": "chen_jing", "4": "chen_jing",
            "5": "zhao_lei", "6": "zhao_lei", "7": "sun_yan", "8": "sun_yan"}
SUPERVISOR = "li_qiang"
CHANNELS = ("phone", "visit", "online", "letter")
NAMES = ("王先生", "李女士", "张先生", "刘女士", "陈先生", "杨女士", "赵先生", "黄女士")
MATTERS = ("楼上漏水", "电梯经常停运", "夜间装修噪音", "地下车库照明不足", "垃圾清运不及时", "门禁卡失灵")
FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}


# ---------------------------------------------------------------- machine

def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {"nproc": str(usable), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "os": f"{platform.system()} {platform.release()}"}


def filesystem_of(path: Path) -> str:
    """Device and type of the filesystem holding ``path`` (from /proc/mounts)."""
    best = ("?", "?", "")
    try:
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[2]):
                best = (dev, fstype, mnt)
    except OSError:
        pass
    return f"{best[0]} ({best[1]}, mounted on {best[2] or '?'})"


# ---------------------------------------------------------------- raw SQLite

def raw_commit_rate(path: Path, n: int) -> float:
    """Commits per second: one small INSERT per BEGIN IMMEDIATE ... COMMIT, engine pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload TEXT NOT NULL)")
        payload = json.dumps({"unit": "3-1201", "content": "楼上漏水"}, ensure_ascii=False)
        for _ in range(5):  # warm-up: create the WAL, settle the first pages
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, payload) VALUES (?, ?)", ("warm-up", payload))
            conn.execute("COMMIT")
        begin = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, payload) VALUES (?, ?)", (str(i), payload))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - begin)
    finally:
        conn.close()


# ---------------------------------------------------------------- workload

def open_engine(db_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    settings = Settings(f"sqlite:///{db_path}", ROOT / "procedures", ROOT / "org" / "demo.yaml")
    return build_engine(settings, clock)


def complaint(i: int) -> dict[str, Any]:
    """The intake form of the i-th complaint: buildings 1-8, four channels, 1 in 8 anonymous."""
    channel = CHANNELS[i % len(CHANNELS)]
    matter = MATTERS[i % len(MATTERS)]
    if i % 8 == 7:
        return {"anonymous": True, "channel": channel, "content": matter}
    building = str(i % 8 + 1)
    return {"unit": f"{building}-{(i // 8) % 30 + 1}{i % 4 + 1:02d}", "owner_name": NAMES[i % len(NAMES)],
            "contact": f"139{i % 100_000_000:08d}", "channel": channel, "content": matter, "anonymous": False}


def worker_for(data: dict[str, Any]) -> str:
    """Who handles a complaint: the steward of its building, the supervisor if anonymous."""
    unit = data.get("unit")
    return STEWARDS.get(unit.split("-", 1)[0], SUPERVISOR) if unit else SUPERVISOR


def interim(clock: FakeClock) -> dict[str, Any]:
    return {"interim_message": "已联系相关部门，正在跟进处理", "next_reply_at": (clock.now() + timedelta(days=1)).isoformat()}


# ---------------------------------------------------------------- prefill

@dataclass
class Prefill:
    path: Path
    instances: int
    events: int
    seconds: float
    size_mb: float


def build_prefill(path: Path, n_instances: int, templates: int = 48, step: timedelta = timedelta(seconds=20)
                  ) -> tuple[Prefill, datetime]:
    """A database holding ``n_instances`` complaints; returns it and the time after its last event."""
    begin = time.perf_counter()
    templates = max(1, min(templates, n_instances))
    clock = FakeClock(T0)
    engine = open_engine(path, clock)
    for i in range(templates):
        data = complaint(i)
        who = worker_for(data)
        inst = engine.start("complaint", "liu_fang", data)
        clock.advance(step)
        # Leave the templates spread over the states an open complaint is usually in.
        if i % 10 >= 4:
            engine.advance(inst.id, "investigate", who)
            clock.advance(step)
        if i % 10 >= 7:
            engine.advance(inst.id, "record_findings", who, FINDINGS)
            clock.advance(step)
        if i % 10 == 9:
            engine.advance(inst.id, "interim_reply", who, interim(clock))
            clock.advance(step)
    chains = {iid: engine.history(iid) for iid in range(1, templates + 1)}
    engine.close()
    _replicate(path, chains, n_instances)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        n_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    _fsync(path)  # so the kernel is not still writing it back while something is measured
    info = Prefill(path, n_instances, n_events, time.perf_counter() - begin, path.stat().st_size / 1e6)
    return info, clock.now()


class _Hasher:
    """``audit.event_hash`` for copies of one stored event that differ only in instance id
    and predecessor: the constant middle of the hashed body is serialised once. Checked
    against ``audit.event_hash`` on first use; on any difference it falls back to it."""

    def __init__(self, e: audit.StoredEvent) -> None:
        self.e = e
        middle = audit.canonical_json([e.seq, e.type, e.actor, e.role, audit.iso_utc(e.occurred_at),
                                       audit.iso_utc(e.recorded_at), e.data_json])
        self.middle = middle[1:-1]
        self.exact: Optional[bool] = None

    def __call__(self, instance_id: int, prev: str) -> str:
        e = self.e
        if self.exact is not False:
            fast = hashlib.sha256(f'[{instance_id},{self.middle},"{prev}"]'.encode("utf-8")).hexdigest()
            if self.exact:
                return fast
            slow = audit.event_hash(instance_id, e.seq, e.type, e.actor, e.role, e.occurred_at, e.recorded_at,
                                    e.data_json, prev)
            self.exact = fast == slow
            return slow
        return audit.event_hash(instance_id, e.seq, e.type, e.actor, e.role, e.occurred_at, e.recorded_at,
                                e.data_json, prev)


def _replicate(path: Path, chains: dict[int, list[audit.StoredEvent]], n_instances: int) -> None:
    """Copy templates 1..T round-robin into ids T+1..n, every table that holds instance rows."""
    t = len(chains)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A scratch file being loaded: no journal, no fsync, a big page cache. The engine's
        # own connections switch it back to WAL when they open it.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                             "AND name NOT LIKE 'sqlite_%'")]

        def columns(table: str) -> list[tuple[str, bool]]:
            return [(r[1], bool(r[5])) for r in conn.execute(f'PRAGMA table_info("{table}")')]

        def rows(table: str, where: str) -> dict[int, list[tuple[Any, ...]]]:
            out: dict[int, list[tuple[Any, ...]]] = {i: [] for i in range(1, t + 1)}
            for r in conn.execute(f'SELECT * FROM "{table}" WHERE {where} BETWEEN 1 AND {t} ORDER BY 1, 2'):
                out[r[0]].append(r)
            return out

        inst_cols = [c for c, _ in columns("instances")]
        ev_cols = [c for c, _ in columns("events")]
        assert inst_cols[0] == "id" and ev_cols[:2] == ["instance_id", "seq"], "unexpected table layout"
        templ_inst = rows("instances", "id")
        templ_ev = rows("events", "instance_id")
        hashers = {iid: [_Hasher(e) for e in chains[iid]] for iid in chains}
        i_last_hash, i_parent = inst_cols.index("last_hash"), inst_cols.index("parent_id")
        i_key = inst_cols.index("external_key") if "external_key" in inst_cols else None
        e_prev, e_hash = ev_cols.index("prev_hash"), ev_cols.index("hash")

        # Other tables keyed by instance (timers, outbox, whatever comes next): copied with
        # the new id; an INTEGER PRIMARY KEY other than instance_id is left to autoincrement.
        others = []
        for table in tables:
            cols = columns(table)
            names = [c for c, _ in cols]
            if table in ("instances", "events") or "instance_id" not in names:
                continue
            keep = [c for c, pk in cols if not (pk and c == "id")]
            src = rows(table, "instance_id") if names[0] == "instance_id" else None
            if src is None:
                src = {i: [] for i in range(1, t + 1)}
                for r in conn.execute(f'SELECT {", ".join(keep)} FROM "{table}" WHERE instance_id '
                                      f'BETWEEN 1 AND {t}'):
                    src[r[keep.index("instance_id")]].append(r)
            else:
                src = {i: [tuple(r[names.index(c)] for c in keep) for r in rs] for i, rs in src.items()}
            others.append((table, keep, src))

        conn.execute("BEGIN IMMEDIATE")
        # Each copy gets its ledger row, as if it had been started alone (engine/store/ledger.py).
        top = conn.execute("SELECT seq, head FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        ledger_seq, ledger_head = top if top is not None else (0, audit_ledger.LEDGER_GENESIS)
        batch_l: list[tuple[Any, ...]] = []
        ledger_at = conn.execute("SELECT max(recorded_at) FROM ledger").fetchone()[0]
        batch_i: list[tuple[Any, ...]] = []
        batch_e: list[tuple[Any, ...]] = []
        batch_o: dict[str, list[tuple[Any, ...]]] = {name: [] for name, _, _ in others}
        ins_i = f'INSERT INTO instances ({", ".join(inst_cols)}) VALUES ({", ".join("?" * len(inst_cols))})'
        ins_e = f'INSERT INTO events ({", ".join(ev_cols)}) VALUES ({", ".join("?" * len(ev_cols))})'

        def flush() -> None:
            conn.executemany(ins_i, batch_i)
            conn.executemany(ins_e, batch_e)
            conn.executemany("INSERT INTO ledger (seq, entries, leaf, prev, head, recorded_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", batch_l)
            batch_l.clear()
            for name, keep, _ in others:
                conn.executemany(f'INSERT INTO "{name}" ({", ".join(keep)}) VALUES ({", ".join("?" * len(keep))})',
                                 batch_o[name])
                batch_o[name].clear()
            batch_i.clear()
            batch_e.clear()

        for new_id in range(t + 1, n_instances + 1):
            src_id = (new_id - 1) % t + 1
            prev = GENESIS_HASH
            entries = []
            for r, h in zip(templ_ev[src_id], hashers[src_id]):
                row = list(r)
                row[0] = new_id
                row[e_prev] = prev
                prev = row[e_hash] = h(new_id, prev)
                batch_e.append(tuple(row))
                entries.append((new_id, row[1], prev))
            text = audit_ledger.entries_json(entries)
            leaf = audit_ledger.leaf_hash(text)
            ledger_seq += 1
            ledger_head_new = audit_ledger.head_hash(ledger_seq, ledger_head, leaf)
            batch_l.append((ledger_seq, text, leaf, ledger_head, ledger_head_new, ledger_at))
            ledger_head = ledger_head_new
            inst = list(templ_inst[src_id][0])
            inst[0] = new_id
            inst[i_last_hash] = prev
            assert inst[i_parent] is None and (i_key is None or inst[i_key] is None), "templates are top-level"
            batch_i.append(tuple(inst))
            for name, keep, src in others:
                k_id = keep.index("instance_id")
                for r in src[src_id]:
                    row = list(r)
                    row[k_id] = new_id
                    if name == "outbox" and "idempotency_key" in keep:
                        k = keep.index("idempotency_key")
                        row[k] = f"{new_id}:" + str(row[k]).split(":", 1)[1]
                    batch_o[name].append(tuple(row))
            if len(batch_i) >= 5000:
                flush()
        flush()
        # … and the head row the engine appends after (engine/store/ledger.py)
        conn.execute("DELETE FROM ledger_head")
        conn.execute("INSERT INTO ledger_head (key, seq, prev, head) SELECT 1, seq, prev, head FROM ledger "
                     "ORDER BY seq DESC LIMIT 1")
        conn.execute("COMMIT")
    finally:
        conn.close()


def copy_db(src: Path, dst: Path, sync: bool = True) -> None:
    """A fresh copy of a checkpointed database file (no -wal/-shm beside it).

    With ``sync`` the copy is flushed to disk before returning: otherwise the kernel writes
    the copy back while the measurement runs, and every fsync of the engine waits behind it
    (a 380 MB copy made the first minute after it look ~40% slower)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    if sync:
        _fsync(dst)
        # And the filesystem's journal: unlinking the previous 380 MB copy leaves the
        # freeing of its blocks to the next journal commit, which otherwise lands in the
        # measured run and holds up its fsyncs.
        os.sync()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
