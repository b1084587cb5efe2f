"""Goals of the suite measured side by side with a baseline commit, in one run.

    python -m bench.compare --baseline 2e6761d --only deh --quick      # quick sizes, 2 rounds
    python -m bench.compare --baseline 2e6761d --only h --rounds 3

A speed claim holds only against the code it replaces measured on the same machine in the
same half hour (the host's CPU speed swings by up to half within an hour, BENCHMARKS.md).
The baseline is exported with ``git archive`` into a temporary folder (no worktree, nothing
in the repository changes) and both checkouts run ``bench.bench_suite`` with the same
interpreter, alternating (baseline, this checkout, baseline, …); each prints its table rows
and the medians of the figures the goals are judged on.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT

# The judged figure of each goal, in the JSON bench_suite writes: (goal, key path, label).
FIGURES = [("d", ("rows", 0, "ratio"), "d: 1 client, engine / raw"),
           ("d", ("rows", 1, "ratio"), "d: 2 clients, engine / raw"),
           ("d", ("rows", 2, "ratio"), "d: 4 clients, engine / raw"),
           ("e", ("b_p99",), "e2: burst lag p99 (s)"),
           ("e", ("b_rate",), "e2: burst fired/s"),
           ("e", ("s_p99",), "e1: sustained lag p99 (s)"),
           ("h", ("bulk_ratio",), "h1: start_many / one at a time"),
           ("h", ("bulk_cpu_ms",), "h1: bulk CPU ms per start"),
           ("h", ("ratio",), "h2: sweep batches / one per commit"),
           ("h", ("batched",), "h2: fired/s in batches")]


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` as plain files under ``into`` (``git archive``)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_suite(checkout: Path, only: str, quick: bool, out: Path) -> str:
    """One ``bench.bench_suite`` run in ``checkout`` (its own ``engine`` first on the path)."""
    cmd = [sys.executable, "-m", "bench.bench_suite", "--only", only, "--json", str(out)] + (["--quick"] if quick else [])
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if line.startswith("| ") and line[2] in only)


def figure(results: dict[str, Any], goal: str, path: tuple[Any, ...]) -> float | None:
    value: Any = results.get(goal)
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return float(value) if isinstance(value, (int, float)) else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="the commit to compare with, e.g. main or 2e6761d")
    ap.add_argument("--only", default="deh", help="goal letters, as bench.bench_suite --only")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating")
    ap.add_argument("--quick", action="store_true", help="bench_suite's quick sizes")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as d:
        tmp = Path(d)
        sides = {"baseline": export(args.baseline, tmp / "baseline"), "this checkout": ROOT}
        got: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
        for k in range(args.rounds):
            for name, checkout in sides.items():
                out = tmp / f"{name.replace(' ', '-')}-{k}.json"
                print(f"== {name}, round {k + 1}\n{run_suite(checkout, args.only, args.quick, out)}", flush=True)
                got[name].append(json.loads(out.read_text(encoding="utf-8")))
    print("\n| figure (median of rounds) | baseline | this checkout |\n|---|---:|---:|")
    for goal, path, label in FIGURES:
        if goal not in args.only:
            continue
        cells = []
        for name in sides:
            values = [v for v in (figure(r, goal, path) for r in got[name]) if v is not None]
            cells.append(f"{statistics.median(values):.3g}" if values else "—")
        print(f"| {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
