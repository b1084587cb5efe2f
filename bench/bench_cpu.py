"""CPU per command of this tree against a baseline commit, measured side by side in one run.

    python -m bench.bench_cpu                      # against BASELINE (issue 16's starting commit)
    python -m bench.bench_cpu --baseline REF       # against any commit, branch or tag
    python -m bench.bench_cpu --reps 5 --starts 300 --fires 300

The baseline is exported with ``git archive REF`` into a temporary directory (no worktree
is registered, nothing in the repository changes). ``bench/cpu_worker.py`` of this tree
then runs the same workload in a fresh subprocess per repetition, once with this tree and
once with the baseline first on ``sys.path``, alternating which goes first, so drift on a
shared machine hits both alike. Figures are medians over the repetitions of process CPU
ms per start, per complaint action and per fired timer step, split by component.

Issue 16's goal: CPU per persisted complaint action and per fired timer at most a quarter
of the baseline's (ratio <= 0.25).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "cpu_worker.py"
BASELINE = "2e6761d"  # main when issue 16 was started
GOAL = 0.25
KINDS = (("start", "start"), ("action", "complaint action"),
         ("action_batched", "complaint action, batched (`act_many`, N per transaction; baseline: one at a time)"),
         ("fire", "fired timer step, batched writer (the sweep; baseline: its own sweep)"))
PER = 100  # items per act_many transaction (a bank file, a supervisor's day of call-backs)
FLOORS = (("raw_commit", "bare SQLite write transaction (floor, same code in both)"),
          ("fire_floor_sql", "fired step floor: its own SQL statements replayed on bare sqlite3"),
          ("fire_floor_hash", "fired step floor: its events' canonical JSON + SHA-256 (standard library)"))


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` written under ``into`` (``git archive``; the repository is untouched)."""
    blob = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(tree: Path, workdir: Path, starts: int, fires: int, per: int = PER) -> dict[str, Any]:
    """One repetition for one tree: the CPU per command from a run without the component
    wrappers (each wrapped call costs a few microseconds of its own, as much as some of the
    components it times), the components from a second run with them."""
    def worker(*extra: str) -> dict[str, Any]:
        into = workdir / ("plain" if extra else "wrapped")
        done = subprocess.run([sys.executable, str(WORKER), str(tree), str(into), "--starts", str(starts),
                               "--fires", str(fires), "--per", str(per), *extra], check=True, capture_output=True, text=True,
                              cwd=workdir.parent)
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    plain, parts = worker("--no-components"), worker()
    for kind, _ in KINDS:
        plain[kind]["parts"] = parts[kind]["parts"]
        plain[kind]["cpu_ms_wrapped"] = parts[kind]["cpu_ms"]
    return plain


def run(ref: str, reps: int, starts: int, fires: int, log: Any = print, per: int = PER
        ) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {"now": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        trees = {"now": ROOT, "baseline": export(ref, Path(tmp) / "baseline")}
        for rep in range(reps):
            order = ("now", "baseline") if rep % 2 == 0 else ("baseline", "now")
            for name in order:
                runs[name].append(measure(trees[name], Path(tmp) / f"work-{name}-{rep}", starts, fires, per))
                log(f"rep {rep + 1}/{reps} {name:8s} " + "  ".join(
                    f"{k} {runs[name][-1][k]['cpu_ms']:.3f} ms" for k, _ in KINDS))
    return runs


def median_of(runs: list[dict[str, Any]], kind: str) -> tuple[float, dict[str, float]]:
    total = statistics.median(r[kind]["cpu_ms"] for r in runs)
    labels = {label for r in runs for label in r[kind]["parts"]}
    parts = {label: statistics.median(r[kind]["parts"].get(label, 0.0) for r in runs) for label in labels}
    return total, parts


def paired(runs: dict[str, list[dict[str, Any]]], kind: str) -> float:
    """Median of the per-repetition ratios now / baseline."""
    return statistics.median(n[kind]["cpu_ms"] / b[kind]["cpu_ms"] for n, b in zip(runs["now"], runs["baseline"]))


def report(runs: dict[str, list[dict[str, Any]]], ref: str, command: str) -> str:
    lines = [f"`{command}` (baseline `{ref}`, {len(runs['now'])} repetitions each, interleaved; medians)", "",
             "| CPU ms per | baseline | now | now / baseline | paired | goal ≤ 0.25 |",
             "|---|---:|---:|---:|---:|:-:|"]
    for kind, name in KINDS:
        before, _ = median_of(runs["baseline"], kind)
        after, _ = median_of(runs["now"], kind)
        ratio = after / before if before else float("nan")
        goal = "met" if ratio <= GOAL else "missed" if kind not in ("start", "action") else "-"
        lines.append(f"| {name} | {before:.3f} | {after:.3f} | {ratio:.2f} | {paired(runs, kind):.2f} | {goal} |")
    for key, name in FLOORS:
        if all(key in r for r in runs["baseline"] + runs["now"]):
            before, after = median_of(runs["baseline"], key)[0], median_of(runs["now"], key)[0]
            lines.append(f"| {name} | {before:.3f} | {after:.3f} | | | |")
    lines += _fire_bound(runs)
    lines += ["", "paired: the median over repetitions of now / baseline within one repetition (the two "
              "runs back to back), steadier than the ratio of medians when the machine's load drifts."]
    for kind, name in KINDS:
        _, before = median_of(runs["baseline"], kind)
        _, after = median_of(runs["now"], kind)
        lines += ["", f"Per component, CPU ms per {name} (exclusive time, from the run with wrappers, whose "
                      "own cost lands in the components they wrap):", "",
                  "| component | baseline | now |", "|---|---:|---:|"]
        for label in sorted(set(before) | set(after), key=lambda k: -before.get(k, after.get(k, 0.0))):
            lines.append(f"| {label} | {before.get(label, 0.0):.3f} | {after.get(label, 0.0):.3f} |")
    return "\n".join(lines) + "\n"


def _fire_bound(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The fired step's goal against its floors: what a quarter of the baseline leaves for
    everything the engine does besides SQLite's work and the events' encoding."""
    if not all("fire_floor_sql" in r for r in runs["now"]):
        return []
    base = median_of(runs["baseline"], "fire")[0]
    floor = median_of(runs["now"], "fire_floor_sql")[0] + median_of(runs["now"], "fire_floor_hash")[0]
    now = median_of(runs["now"], "fire")[0]
    return ["", f"Fired step bound: SQLite's work and the events' encoding alone cost {floor:.3f} ms per step, "
                f"{floor / base:.2f} of the baseline's whole step; a quarter ({GOAL * base:.3f} ms) leaves "
                f"{GOAL * base - floor:.3f} ms per step for loading, deciding, clocks, evolving and building "
                f"rows, which take {now - floor:.3f} ms now."]


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_cpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=BASELINE, metavar="REF", help=f"commit to compare with (default {BASELINE})")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each tree (default 3)")
    ap.add_argument("--starts", type=int, default=200, help="starts per repetition; three actions follow each")
    ap.add_argument("--fires", type=int, default=200, help="complaints with a timer step due in the sweep")
    ap.add_argument("--per", type=int, default=PER, help=f"items per act_many transaction (default {PER})")
    args = ap.parse_args(argv)
    runs = run(args.baseline, args.reps, args.starts, args.fires, log=lambda m: print(m, file=sys.stderr),
               per=args.per)
    print(report(runs, args.baseline, "python -m bench.bench_cpu " + " ".join(argv or sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
