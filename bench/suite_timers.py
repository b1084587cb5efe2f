"""Goal e: timer fire lag, sustained at 500 steps a second, in a burst, and with 1,000,000 pending."""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import bench_timers
from bench.common import T0, complaint, copy_db, open_engine
from bench.suite_common import FRONT_DESK, Sizes, floor_seconds, med, pct
from engine.clock import FakeClock


class ScaledClock:
    """Simulated time running ``scale`` times faster than the wall clock from ``origin``."""

    def __init__(self, origin: datetime, scale: float) -> None:
        self.origin, self.scale, self.wall0 = origin, scale, time.perf_counter()

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.perf_counter() - self.wall0) * self.scale)

    def wall_of(self, at: datetime) -> float:
        return self.wall0 + (at - self.origin).total_seconds() / self.scale


def _phone(i: int) -> dict[str, Any]:
    data = complaint(i)
    data["channel"] = "phone"  # 1 workday: every first warning falls on the same afternoon
    return data


def _sustained(path: Path, first_due: datetime, n: int, rate: float, spacing_s: float) -> dict[str, Any]:
    clock = ScaledClock(first_due - timedelta(seconds=0.1 * rate * spacing_s), rate * spacing_s)
    engine = open_engine(path, clock)  # type: ignore[arg-type]
    clock.wall0 = time.perf_counter()
    lags: list[float] = []
    deadline = clock.wall0 + n / rate + 10
    while len(lags) < n and time.perf_counter() < deadline:
        batch = engine.tick(clock.now(), limit=50)
        t = time.perf_counter()
        lags += [t - clock.wall_of(f.due) for f in batch]
        if not batch:
            time.sleep(0.001)
    engine.close()
    return {"p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "fired": len(lags)}


def _burst(path: Path, until: datetime) -> dict[str, Any]:
    engine = open_engine(path, FakeClock(until))
    lags: list[float] = []
    begin = time.perf_counter()
    while True:
        batch = engine.tick(until, limit=50)
        if not batch:
            break
        lags += [time.perf_counter() - begin] * len(batch)
    engine.close()
    return {"p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "fired": len(lags),
            "rate": len(lags) / (time.perf_counter() - begin)}


def _burst_floor(base: Path, work: Path, until: datetime) -> float:
    """Seconds an engine spending no time of its own would take to drain the burst
    (``floor_seconds``: the sweep's own statements, every batch with its commit, replayed
    raw). The burst's p99 lag cannot fall below about 0.99 of it."""
    def drain(engine: Any) -> None:
        while engine.tick(until, limit=50):
            pass
    return floor_seconds(work, base, lambda db: open_engine(db, FakeClock(until)), drain)


def _due_times(path: Path) -> list[datetime]:
    engine = open_engine(path, FakeClock(T0))
    from engine.store import timers as timer_store
    with engine.read() as conn:
        rows = timer_store.due(conn, T0 + timedelta(days=30), 10_000_000)
    engine.close()
    return sorted(r.next_fire_at for r in rows)


def goal_e_run(tmp: Path, sz: Sizes) -> dict[str, Any]:
    rate, spacing = 500.0, 1.0
    base = tmp / "e-base.db"
    clock = FakeClock(T0)
    engine = open_engine(base, clock)
    for i in range(sz.e_sustained):
        engine.start("complaint", FRONT_DESK, _phone(i))
        clock.advance(timedelta(seconds=spacing))
    engine.close()
    dues = _due_times(base)[:sz.e_sustained]
    gaps = [(b - a).total_seconds() for a, b in zip(dues, dues[1:])]
    sustained, burst = [], []
    for rep in range(sz.reps):
        work = tmp / "e-work.db"
        copy_db(base, work)
        sustained.append(_sustained(work, dues[0], len(dues), rate, spacing))
        copy_db(base, work)
        burst.append(_burst(work, dues[-1] + timedelta(seconds=1)))
    floor = _burst_floor(base, tmp / "e-floor", dues[-1] + timedelta(seconds=1))
    pending = bench_timers.run(sz.e_small, sz.e_big, sz.reps)
    s99, b99 = med([r["p99"] for r in sustained]), med([r["p99"] for r in burst])
    small, big = pending
    return {"n": len(dues), "rate": rate / (statistics.mean(gaps) / spacing) if gaps else rate,
            "s_p50": med([r["p50"] for r in sustained]), "s_p99": s99,
            "s_fired": min(r["fired"] for r in sustained),
            "b_p50": med([r["p50"] for r in burst]), "b_p99": b99, "b_rate": med([r["rate"] for r in burst]),
            "b_floor_s": floor, "b_floor_rate": len(dues) / floor,
            "small": small, "big": big, "p_ratio": big["lag_p99_s"] / small["lag_p99_s"],
            "met_s": s99 <= 0.050, "met_b": b99 <= 0.250,
            "met_p": big["lag_p99_s"] <= 1.5 * small["lag_p99_s"]}
