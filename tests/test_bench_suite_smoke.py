"""The issue 6 benchmark suite runs every goal and reports it (never how fast: BENCHMARKS.md's job)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_suite as suite
from bench.common import machine_info

pytestmark = pytest.mark.slow  # benchmark smoke tests: each runs part of the suite; run with -m slow

TINY = suite.Sizes(reps=1, a_complaints=8, b_instances=4, c_loops=100, d_per_client=4, e_sustained=60,
                   e_small=40, e_big=400, f_big=400, f_actions=10, g_bulk_events=500, h_units=10, h_backlog=60,
                   h_bulk=20)


def test_the_engine_is_measured_against_its_own_statements_replayed_raw(tmp_path: Path) -> None:
    a = suite.goal_a(tmp_path, TINY)
    assert a["actions"] == a["txs"] == 3 * TINY.a_complaints
    assert any(k.startswith("INSERT INTO events") for k in a["kinds"])
    assert a["engine"] > 0 and a["raw"] > 0


def test_the_five_step_procedure_runs_in_the_engine_and_in_spiffworkflow(tmp_path: Path) -> None:
    import SpiffWorkflow  # noqa: F401  (declared in [test]: missing, it fails rather than skips)
    b = suite.goal_b(tmp_path, TINY)
    assert b["engine"] > 0 and b["spiff"] > 0
    assert b["floor"] > 0 and b["bound"] == b["floor"] / b["spiff"]


def test_in_memory_decisions_are_compared_with_transitions(tmp_path: Path) -> None:
    import transitions  # noqa: F401  (a dependency of sop itself)
    c = suite.goal_c(tmp_path, TINY)
    assert c["engine"] > 0 and c["transitions"] > 0


def test_scale_replay_and_batch_paths_report_every_figure(tmp_path: Path) -> None:
    from bench.common import build_prefill

    big = tmp_path / "big.db"
    info, after = build_prefill(big, TINY.f_big)
    f = suite.goal_f(tmp_path, TINY, big, after, info.seconds)
    assert f["small_rate"] > 0 and f["big_rate"] > 0 and f["rss_big_mb"] > 0
    g = suite.goal_g(tmp_path, TINY, big)
    assert g["events"] >= 50 and g["bulk_events"] >= TINY.g_bulk_events and g["replay"] > 0
    h = suite.goal_h(tmp_path, TINY)
    assert h["fee_rate"] > 0 and h["bulk_rate"] > 0 and h["bulk_units"] == TINY.h_bulk
    assert h["backlog"] > 0 and h["batched"] > 0 and h["single"] > 0
    assert h["bulk_floor_rate"] > 0 and h["bulk_bound"] == h["bulk_floor_rate"] / h["fee_rate"]
    assert h["floor_rate"] > 0 and h["bound"] == h["floor_rate"] / h["single"]


def test_timers_and_postgresql_clients_are_measured(tmp_path: Path) -> None:
    e = suite.goal_e_run(tmp_path, TINY)
    assert e["s_fired"] == e["n"] and e["b_p99"] > 0 and e["big"]["pending"] > e["small"]["pending"]
    assert e["b_floor_s"] > 0 and e["b_floor_rate"] == e["n"] / e["b_floor_s"]
    d = suite.goal_d(tmp_path, TINY)
    if "skipped" not in d:
        assert [r["clients"] for r in d["rows"]] == [1, 2, 4] and all(r["engine"] > 0 for r in d["rows"])
        assert d["rows"][0]["floor"] > 0 and d["rows"][0]["bound"] == d["rows"][0]["floor"] / d["rows"][0]["raw"]


def test_the_section_names_every_goal_and_is_rewritten_in_place(tmp_path: Path) -> None:
    results = {
        "a": {"engine": 1.0, "raw": 2.0, "ratio": 0.5, "met": True, "actions": 3, "txs": 3, "stmts": 3.0,
              "kinds": ["INSERT INTO events ×1.00"]},
        "h": {"fee_rate": 100.0, "fee_cpu_ms": 3.0, "units": 10, "bulk_rate": 400.0, "bulk_cpu_ms": 2.0,
              "bulk_units": 20, "bulk_ratio": 4.0, "met_bulk": False, "backlog": 60, "backlog_single": 60,
              "batched": 3.0, "single": 1.0, "ratio": 3.0, "met_t": False},
        "d": {"rows": [{"clients": 1, "engine": 700.0, "raw": 2000.0, "ratio": 0.35, "floor": 1100.0, "bound": 0.55},
                       {"clients": 2, "engine": 1200.0, "raw": 3700.0, "ratio": 0.32},
                       {"clients": 4, "engine": 1300.0, "raw": 5300.0, "ratio": 0.25}],
              "met": False, "version": "15", "settings": "fsync=on"},
        "b": {"engine": 250.0, "spiff": 160.0, "ratio": 1.5625, "met": False, "floor": 600.0, "bound": 3.75},
        "e": {"n": 300, "rate": 500.0, "s_p50": 0.002, "s_p99": 0.004, "s_fired": 300, "b_p50": 0.03, "b_p99": 0.06,
              "b_rate": 5000.0, "b_floor_s": 0.01, "b_floor_rate": 30000.0, "met_s": True, "met_b": True,
              "met_p": True, "p_ratio": 1.1, "small": {"pending": 200, "due": 200, "lag_p99_s": 0.05},
              "big": {"pending": 5000, "due": 200, "lag_p99_s": 0.055}},
    }
    section = suite.render(results, machine_info(), "python -m bench.bench_suite", TINY, 1.0, "disk", "0 / 0 / 0")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nOther section.\n", encoding="utf-8")
    suite.write_section(section, md)
    suite.write_section(section, md)
    text = md.read_text(encoding="utf-8")
    assert text.count(suite.END_MARK) == 1 and text.count(suite.HEADING) == 1 and "Other section." in text
    assert "**met**" in text and "**not met**" in text
    assert "replayed on bare sqlite3 (`bench/sqlite_floor.py`" in text and "run at 600 runs/s, 3.8× SpiffWorkflow: " \
        "5× needs the commits themselves to be cheaper" in text
    assert "run at 1,100 actions/s, 55.0% of the raw commits: 50% leaves the engine 0.09 ms of its own per action " \
        "against 0.52 ms now." in text
    assert "drain the 300 steps in 10 ms (30,000/s)" in text and "5,000 due at once take 167 ms of SQLite alone" in text
    assert "run at 10,000 starts/s" not in text and "The backlog sweep's own statements replayed raw" not in text
    assert "| h1. a month's fee cycle for 20 units | `Engine.start_many` 400 starts/s (20 in 0.1 s) vs one at a " \
           "time 100 starts/s (first 10) = 4.0× | ≥ 10× one at a time | **not met** |" in text


@pytest.mark.slow
def test_compare_runs_the_goals_on_a_baseline_export_and_on_this_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import compare

    compare.main(["--baseline", "HEAD", "--only", "h", "--rounds", "1", "--quick"])
    out = capsys.readouterr().out
    assert "== baseline, round 1" in out and "== this checkout, round 1" in out
    assert out.count("| h1.") == 2 and "| h2: sweep batches / one per commit |" in out


@pytest.mark.slow
def test_two_sweeper_processes_drain_one_sqlite_backlog_firing_each_step_once(tmp_path: Path) -> None:
    from bench.bench_sweepers import drain

    r = drain(f"sqlite:///{tmp_path / 'sweep.db'}", 20, 2)
    assert r["fired"] == r["events"] == 3 * 20 and r["per_s"] > 0


def test_a_goal_that_could_not_run_says_why_instead_of_a_figure() -> None:
    section = suite.render({"d": {"skipped": "no PostgreSQL server binaries"}}, machine_info(), "python -m x", TINY,
                           1.0, "disk", "0 / 0 / 0")
    assert "| d. PostgreSQL actions/s vs raw commits/s | not measured: no PostgreSQL server binaries |" in section


def test_a_run_may_change_one_size_and_a_wrong_one_is_named() -> None:
    assert suite.sized(suite.FULL, ["e_big=50000"]) == suite.replace(suite.FULL, e_big=50_000)
    with pytest.raises(SystemExit, match="--set e_bigg=5: expected SIZE=N with N ≥ 1, SIZE one of reps"):
        suite.sized(suite.FULL, ["e_bigg=5"])
