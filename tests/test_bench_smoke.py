"""The benchmark runs and reports every number (never how fast: that is BENCHMARKS.md's job)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_engine import END_MARK, Config, main, profile, report, run, write_markdown
from bench.common import build_prefill, open_engine
from engine.clock import FakeClock

pytestmark = pytest.mark.slow  # benchmark smoke tests: each runs the benchmark itself; run with -m slow

TINY = Config(stored=(100, 2_000), reps=1, raw_commits=60, starts=20, old_advances=20, warmup=2, templates=8)


def test_a_tiny_run_measures_raw_commits_starts_and_actions_at_both_store_sizes(tmp_path: Path) -> None:
    res = run(TINY, tmp_path, log=lambda *_: None)
    assert len(res.raw) == 2 and res.raw_rate() > 0
    for n in TINY.stored:
        (r,) = res.engine[n]
        assert r.starts_per_s > 0 and r.actions_per_s > 0 and r.old_advances_per_s > 0
        assert res.prefills[n].instances == n
    assert res.action_ratio() > 0 and res.scale_ratio("old_advances_per_s") > 0
    assert len(res.goals()) == 7  # actions vs raw; starts, actions, advances at 2k vs 100 (rate and CPU)


def test_the_results_section_is_rewritten_in_place(tmp_path: Path) -> None:
    tiny = Config(stored=(50,), reps=1, raw_commits=20, starts=5, old_advances=5, warmup=1, templates=4)
    res = run(tiny, tmp_path / "db", log=lambda *_: None)
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nHand-written analysis.\n", encoding="utf-8")
    write_markdown(md, report(res, "python -m bench.bench_engine --quick"))
    write_markdown(md, report(res, "python -m bench.bench_engine --quick"))
    text = md.read_text(encoding="utf-8")
    assert text.count(END_MARK) == 1 and "Hand-written analysis." in text
    assert "raw SQLite commits/s" in text and "nproc" in text and "`python -m bench.bench_engine --quick`" in text


def test_the_prefill_is_what_the_engine_itself_would_have_stored(tmp_path: Path) -> None:
    info, after = build_prefill(tmp_path / "p.db", 500, templates=12)
    engine = open_engine(tmp_path / "p.db", FakeClock(after))
    checked, events, broken = engine.verify()  # every copied hash chain is intact
    assert (checked, events, broken) == (500, info.events, None)
    from engine.runtime import auditing

    assert auditing.run(engine).findings == []  # and each copy has its ledger row
    engine.start("complaint", "liu_fang", {"channel": "online", "content": "电梯经常停运", "anonymous": True})
    assert auditing.run(engine).findings == []
    assert all(engine.replay(i).ok for i in (1, 12, 13, 499, 500))
    assert engine.show(500).data == engine.show((500 - 1) % 12 + 1).data  # copies of template 8


def test_the_profile_names_where_the_cpu_of_a_command_goes(tmp_path: Path) -> None:
    lines: list[str] = []
    profile(Config(stored=(30,), starts=4, warmup=1, templates=3), tmp_path, log=lines.append)
    text = "\n".join(lines)
    assert "actions:" in text and "starts:" in text and "store: SQLite statements" in text


def test_the_quick_command_line_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--no-write", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "engine actions/s" in out and "10k / 1k" in out
