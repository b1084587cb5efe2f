"""Goal h: the batch paths (a month's fee cycle by ``Engine.start_many``, a timer backlog by
the sweep) against the same work one transaction at a time."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import T0, build_prefill, copy_db, open_engine
from bench.suite_common import FINANCE, MS, Sizes, floor_seconds, med
from engine.clock import FakeClock


def fee_form(i: int) -> dict[str, Any]:
    return {"unit": f"{i % 8 + 1}-{(i // 8) % 30 + 1}{i % 4 + 1:02d}", "owner_name": "王先生",
            "contact": f"139{i:08d}", "period": "2025-10", "management_fee": "180.00", "water_usage": 12,
            "water_unit_price": "3.50", "service_fees": "0.00", "other_fees": "0.00",
            "payment_method": "bank_debit"}


def goal_h(tmp: Path, sz: Sizes) -> dict[str, Any]:
    return {**goal_h1(tmp, sz), **goal_h2(tmp, sz)}


def goal_h1(tmp: Path, sz: Sizes) -> dict[str, Any]:
    """A month's fee cycle: ``Engine.start`` per unit (one transaction each) vs one
    ``Engine.start_many`` of every unit, each on a fresh database, interleaved."""
    one: list[tuple[float, float]] = []   # (starts/s, CPU ms per start)
    bulk: list[tuple[float, float]] = []
    rows = [fee_form(i) for i in range(sz.h_bulk)]
    for rep in range(sz.reps):
        for mode in (("one", "bulk") if rep % 2 == 0 else ("bulk", "one")):
            clock = FakeClock(T0)
            engine = open_engine(tmp / f"h-fee-{mode}-{rep}.db", clock)
            begin, cpu = time.perf_counter(), time.process_time()
            if mode == "one":
                for i in range(sz.h_units):
                    engine.start("fee_cycle", FINANCE, fee_form(i))
                    clock.advance(timedelta(milliseconds=100))
                n = sz.h_units
            else:
                n = len(engine.start_many("fee_cycle", FINANCE, rows))
            wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
            (one if mode == "one" else bulk).append((n / wall, cpu / n * MS))
            engine.close()
    fee, bulk_rate = med([r for r, _ in one]), med([r for r, _ in bulk])
    floor = floor_seconds(tmp / "h-fee-floor", None, lambda db: open_engine(db, FakeClock(T0)),
                          lambda engine: engine.start_many("fee_cycle", FINANCE, rows))
    return {"fee_rate": fee, "fee_cpu_ms": med([c for _, c in one]), "units": sz.h_units,
            "bulk_rate": bulk_rate, "bulk_cpu_ms": med([c for _, c in bulk]), "bulk_units": sz.h_bulk,
            "bulk_ratio": bulk_rate / fee, "met_bulk": bulk_rate / fee >= 10,
            "bulk_floor_rate": sz.h_bulk / floor, "bulk_bound": sz.h_bulk / floor / fee}


def goal_h2(tmp: Path, sz: Sizes) -> dict[str, Any]:
    """A backlog of overdue timer steps: the sweep's batches vs one firing per commit."""
    base = tmp / "h-backlog.db"
    _, after = build_prefill(base, sz.h_backlog)
    until = after + timedelta(days=1)
    batched, single = [], []
    n_b = n_s = 0
    for rep in range(sz.reps):
        for mode in (("batched", "single") if rep % 2 == 0 else ("single", "batched")):
            work = tmp / "h-work.db"
            copy_db(base, work)
            engine = open_engine(work, FakeClock(until))
            begin = time.perf_counter()
            n = 0
            if mode == "batched":
                n = len(engine.tick(until))
                batched.append(n / (time.perf_counter() - begin))
                n_b = n
            else:
                while n < max(300, sz.h_backlog // 5):  # a fifth of the backlog: its rate is steady
                    if not engine.tick(until, limit=1):
                        break
                    n += 1
                single.append(n / (time.perf_counter() - begin))
                n_s = n
            engine.close()
    b, s = med(batched), med(single)

    def sweep(engine: Any) -> None:
        engine.tick(until)
    floor = n_b / floor_seconds(tmp / "h-backlog-floor", base, lambda db: open_engine(db, FakeClock(until)), sweep)
    return {"complaints": sz.h_backlog, "backlog": n_b, "backlog_single": n_s, "batched": b, "single": s,
            "ratio": b / s, "met_t": b / s >= 10, "floor_rate": floor, "bound": floor / s}
