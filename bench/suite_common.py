"""What every goal of the suite shares: the sizes of a run, medians and percentiles, the
procedures' fixtures and the raw SQLite connection the raw sides use."""
from __future__ import annotations

import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from bench import sqlite_floor
from bench.common import ROOT, copy_db
from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine
from engine.store.db import SQLITE_PRAGMAS

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "procedures"
BPMN = HERE / "five_steps.bpmn"
FRONT_DESK = "liu_fang"
FINANCE = "lin_cai"
MS = 1000.0


@dataclass(frozen=True)
class Sizes:
    reps: int
    a_complaints: int        # complaints advanced 3 times each (goal a)
    b_instances: int         # 5-step instances run to the end (goal b)
    c_loops: int             # in-memory 5-step runs (goal c)
    d_per_client: int        # complaints per PostgreSQL client (3 actions each)
    e_sustained: int         # timers coming due at 500/s
    e_small: int             # pending timers, small case (all due)
    e_big: int               # pending timers, big case
    f_big: int               # stored instances, big case
    f_actions: int           # actions per repetition (goal f)
    g_bulk_events: int       # events replayed in bulk
    h_units: int             # fee cycles started one at a time
    h_backlog: int           # overdue timers fired
    h_bulk: int              # fee cycles started by one Engine.start_many


FULL = Sizes(reps=3, a_complaints=200, b_instances=150, c_loops=5_000, d_per_client=100, e_sustained=5_000,
             e_small=1_000, e_big=1_000_000, f_big=1_000_000, f_actions=380, g_bulk_events=1_000_000,
             h_units=1_000, h_backlog=10_000, h_bulk=10_000)
QUICK = Sizes(reps=1, a_complaints=40, b_instances=20, c_loops=2_000, d_per_client=15, e_sustained=300,
              e_small=200, e_big=5_000, f_big=5_000, f_actions=40, g_bulk_events=20_000, h_units=100,
              h_backlog=300, h_bulk=1_000)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(len(s) * p)) - 1))] if s else 0.0


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def raw_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    return conn


def five_steps_engine(db_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    return build_engine(Settings(f"sqlite:///{db_path}", FIXTURES, ROOT / "org" / "demo.yaml"), clock)


def floor_seconds(work: Path, base: Optional[Path], open_engine: Callable[[Path], Any],
                  body: Callable[[Any], object]) -> float:
    """Wall seconds an engine spending no time of its own would take for ``body``'s work: the
    SQLite statements ``body`` sends (its commits and fsyncs included) recorded on one copy of
    ``base`` (or an empty database) and replayed on bare sqlite3 on another
    (bench/sqlite_floor.py). A goal needing less time than this cannot be met by any engine
    writing the same rows."""
    work.mkdir(parents=True, exist_ok=True)
    recorded, replayed = work / "recorded.db", work / "replayed.db"
    for db in (recorded, replayed):
        if base is not None:
            copy_db(base, db)
    log: list[Any] = []
    with sqlite_floor.record(log):
        engine = open_engine(recorded)
        opened = len(log)
        body(engine)
        engine.close()
    return sqlite_floor.replay_times(replayed, log, opened)[1]
