"""Issue 6: every performance goal measured side by side in one run.

    python -m bench.bench_suite            # full run (< 20 min); rewrites BENCHMARKS.md's issue 6 section
    python -m bench.bench_suite --quick    # small sizes, 1 repetition, prints only (< 60 s)
    python -m bench.bench_suite --only a,c # some goals only (prints only)

Goals (letters as in the issue; one module per concept: ``suite_commits`` a and d,
``suite_rivals`` b and c, ``suite_timers`` e, ``suite_scale`` f and g, ``suite_batch`` h;
``suite_report`` writes the section):

a. persisted actions/s on the complaint procedure >= 35% of the *same SQL statements*
   replayed raw with ``sqlite3`` (captured from the engine with the driver's trace hook);
b. the engine >= 5x SpiffWorkflow 3.x on the same 5-step procedure
   (``bench/five_steps.bpmn`` vs ``bench/fixtures/procedures/five_steps.yaml``), both
   persisted to SQLite after each step;
c. in-memory decisions (``decide`` + ``evolve``, no database) >= 1x the ``transitions`` library;
d. PostgreSQL actions/s with 1, 2, 4 client processes >= 50% of raw commits/s on the same server;
e. timer fire lag p99 <= 50 ms at 500 timers/s sustained, <= 250 ms for a 5,000 burst, and
   p99 with 1,000,000 pending <= 1.5x the p99 with 1,000;
f. actions/s with many stored instances >= 80% of that with 1,000; worker memory flat;
g. replay of one 50-event instance <= 1 ms p99; bulk replay of 1,000,000 events >= 25% of
   the raw read rate of those rows;
h. batch paths (a month's fee cycle for 10,000 units, a 10,000-timer backlog) >= 10x the
   one-at-a-time rate.

Every figure is a median over the repetitions (3 in the full run); raw and engine runs are
interleaved. The helpers come from ``bench.common`` and ``bench.bench_timers``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

from bench.common import ROOT, build_prefill, filesystem_of, machine_info
from bench.suite_batch import fee_form, goal_h, goal_h1, goal_h2  # noqa: F401  (the goals, by letter)
from bench.suite_commits import goal_a, goal_d
from bench.suite_common import FINANCE, FULL, QUICK, Sizes  # noqa: F401
from bench.suite_report import BEGIN_MARK, END_MARK, HEADING, render, write_section  # noqa: F401
from bench.suite_rivals import goal_b, goal_c
from bench.suite_scale import goal_f, goal_g
from bench.suite_timers import goal_e_run


def run(sz: Sizes, only: set[str], say: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix="bench-suite-") as d:
        tmp = Path(d)
        simple = {"a": goal_a, "b": goal_b, "c": goal_c, "d": goal_d, "e": goal_e_run, "h": goal_h}
        for key in "abcdeh":
            if key in only:
                begin = time.perf_counter()
                results[key] = simple[key](tmp, sz)
                say(f"{key}: {time.perf_counter() - begin:.0f} s {results[key]}")
        if only & {"f", "g"}:
            begin = time.perf_counter()
            big = tmp / "big.db"
            info, after = build_prefill(big, sz.f_big)
            say(f"prefill {sz.f_big:,}: {info.seconds:.0f} s, {info.events:,} events, {info.size_mb:,.0f} MB")
            if "f" in only:
                results["f"] = goal_f(tmp, sz, big, after, info.seconds)
                say(f"f: {time.perf_counter() - begin:.0f} s {results['f']}")
            if "g" in only:
                begin = time.perf_counter()
                results["g"] = goal_g(tmp, sz, big)
                say(f"g: {time.perf_counter() - begin:.0f} s {results['g']}")
    return results


def sized(base: Sizes, sets: list[str]) -> Sizes:
    """``base`` with ``SIZE=N`` overrides; an unknown size or a value that is no count exits
    with the size's name."""
    changes: dict[str, int] = {}
    for item in sets:
        name, _, value = item.partition("=")
        if name not in Sizes.__dataclass_fields__ or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--set {item}: expected SIZE=N with N ≥ 1, SIZE one of "
                             f"{', '.join(Sizes.__dataclass_fields__)}")
        changes[name] = int(value)
    return replace(base, **changes)


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition, print only")
    ap.add_argument("--only", default="abcdefgh", help="goal letters to run, e.g. a,c (prints only)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON to FILE")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SIZE=N",
                    help="override one size of the run, e.g. e_big=50000 (repeatable; prints only)")
    args = ap.parse_args(argv)
    sz = sized(QUICK if args.quick else FULL, args.sets)
    only = {c for c in args.only if c in "abcdefgh"}
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    begin = time.perf_counter()
    results = run(sz, only, lambda s: print(s, file=sys.stderr, flush=True))
    command = "python -m bench.bench_suite" + (" --quick" if args.quick else "") + "".join(
        f" --set {x}" for x in args.sets)
    section = render(results, machine_info(), command, sz, time.perf_counter() - begin, filesystem_of(Path.cwd()),
                     load)
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(results, default=str, ensure_ascii=False, indent=1), encoding="utf-8")
    if not args.quick and only == set("abcdefgh") and not args.sets:
        write_section(section, ROOT / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
