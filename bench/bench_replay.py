"""Goal g of the issue 6 suite on its own, at a size you choose, for iterating on replay.

    python -m bench.bench_replay                        # 50,000 complaints (~311k events), 3 repetitions
    python -m bench.bench_replay --complaints 1000000 --events 1000000  # the suite's full sizes
    python -m bench.bench_replay --keep big.db          # reuse (or build once) the prefilled store
    python -m bench.bench_replay --profile              # cProfile of one single-instance replay loop
                                                        # and one bulk pass, top functions

It runs ``bench.bench_suite.goal_g`` itself, so the figures are measured exactly as the
suite measures them; only the sizes differ (the suite's full run: ``bench_suite.FULL``'s
``f_big`` complaints, of which the first ``g_bulk_events`` events). Prints only.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from bench import bench_suite as suite
from bench.common import build_prefill


def _prefill(path: Path, complaints: int) -> None:
    if path.exists():
        return
    begin = time.perf_counter()
    info, _ = build_prefill(path, complaints)
    print(f"prefill {complaints:,}: {info.seconds:.0f} s, {info.events:,} events, {info.size_mb:,.0f} MB "
          f"({time.perf_counter() - begin:.0f} s)")


def _show(g: dict[str, Any]) -> None:
    print(f"g1: {g['events']} events, Engine.replay p99 {g['full_p99']:.3f} ms (p50 {g['full_p50']:.3f}), "
          f"fold alone p99 {g['fold_p99']:.3f} ms -> {'met' if g['met_one'] else 'not met'} (<= 1 ms)")
    print(f"g2: {g['bulk_events']:,} events, replay {g['replay']:,.0f} vs raw {g['raw']:,.0f} events/s = "
          f"{g['ratio']:.1%} -> {'met' if g['met_bulk'] else 'not met'} (>= 25%)")


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--complaints", type=int, default=50_000, help="complaints in the prefilled store")
    ap.add_argument("--events", type=int, default=1_000_000, help="events replayed in bulk (at most all)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the bulk pass (the suite uses 3)")
    ap.add_argument("--keep", metavar="FILE", help="prefilled store to reuse, built there if missing")
    ap.add_argument("--profile", action="store_true", help="profile one run and print the top functions")
    args = ap.parse_args(argv)
    sz = dataclasses.replace(suite.FULL, reps=args.reps, f_big=args.complaints, g_bulk_events=args.events)
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix="bench-replay-") as d:
        tmp = Path(d)
        big = Path(args.keep) if args.keep else tmp / "big.db"
        _prefill(big, args.complaints)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            g = suite.goal_g(tmp, sz, big)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        else:
            g = suite.goal_g(tmp, sz, big)
        _show(g)


if __name__ == "__main__":
    main()
