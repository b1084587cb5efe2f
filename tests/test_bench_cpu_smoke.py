"""The side-by-side CPU bench (bench/bench_cpu.py) runs and reports every number; how fast
is BENCHMARKS.md's job, never a test's."""
from __future__ import annotations

import subprocess
from pathlib import Path

from typing import Any

import pytest

from bench import bench_cpu

pytestmark = pytest.mark.slow  # benchmark smoke tests: each runs the CPU bench; run with -m slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One repetition of this tree, tiny."""
    return bench_cpu.measure(ROOT, tmp_path_factory.mktemp("w") / "now", starts=4, fires=6)


def test_one_repetition_measures_starts_actions_and_fired_steps_with_their_components(one: dict[str, Any]) -> None:
    got = one
    assert got["tree"] == str(ROOT)
    for kind, _ in bench_cpu.KINDS:
        assert got[kind]["cpu_ms"] > 0 and got[kind]["count"] > 0 and got[kind]["parts"]
    assert got["start"]["count"] == 4 and got["action"]["count"] == 12
    assert got["action_batched"]["count"] == 12 and got["action_batched"]["batched"] is True
    assert got["raw_commit"]["cpu_ms"] > 0
    assert got["fire_floor_sql"]["cpu_ms"] > 0 and got["fire_floor_hash"]["cpu_ms"] > 0


def test_a_tree_without_batch_actions_is_measured_by_its_one_at_a_time_action() -> None:
    from bench.cpu_worker import has_batches
    assert has_batches(object()) is False


def test_the_report_sets_baseline_and_now_side_by_side_with_the_ratio(one: dict[str, Any]) -> None:
    text = bench_cpu.report({"now": [one], "baseline": [one]}, "HEAD", "python -m bench.bench_cpu")
    assert "| complaint action |" in text and "| fired timer step, batched writer" in text
    assert "| complaint action, batched (`act_many`" in text and "| 1.00 | 1.00 |" in text
    assert "Per component, CPU ms per fired timer step" in text
    assert "| fired step floor: its own SQL statements replayed on bare sqlite3 |" in text
    assert "Fired step bound: SQLite's work and the events' encoding alone cost" in text


def test_the_baseline_is_exported_without_touching_the_repository(tmp_path: Path) -> None:
    before = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    tree = bench_cpu.export("HEAD", tmp_path / "baseline")
    assert (tree / "engine" / "audit.py").is_file() and (tree / "bench" / "common.py").is_file()
    assert subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout == before
