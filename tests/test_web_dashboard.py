"""The dashboard's figures over the demo month: every breakdown adds up to the SLA report's
totals, and the QA figures count what the instances say."""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from cli import main
from engine.runtime.config import Settings, build_engine
from engine.runtime.dashboard import figures
from engine.runtime.sla_report import report
from tests.conftest import ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("demo") / "sop-demo.db"
    result = CliRunner().invoke(main, ["demo", "--db-file", str(db)],
                                env={"SOP_DB": None, "SOP_PROCEDURES": None, "SOP_ORG": None})
    assert result.exit_code == 0, result.output
    return build_engine(Settings(f"sqlite:///{db}", ROOT / "procedures", ROOT / "org" / "demo.yaml"))


def totals(tallies: Any) -> tuple[int, int, int]:
    return (sum(t.met for t in tallies), sum(t.breached for t in tallies), sum(t.open for t in tallies))


def test_every_breakdown_adds_up_to_the_sla_reports_totals(demo_engine: Any) -> None:
    d = figures(demo_engine)
    whole = [r for r in report(demo_engine, None, None, None) if r["assignee"] is None]
    assert d.procedures == whole
    expected = (sum(r["met"] for r in whole), sum(r["breached"] for r in whole), sum(r["open"] for r in whole))
    assert expected[0] > 50 and expected[1] > 10  # the demo month has both
    for breakdown in (d.people, d.months, d.month_procedure, d.buildings):
        assert totals(breakdown.values()) == expected
    assert list(d.months) == ["2025-09", "2025-10"]
    for q in d.quality:
        assert q.punctuality == d.months[q.month].compliance


def test_the_quality_figures_count_the_complaints_and_callbacks(demo_engine: Any) -> None:
    d = figures(demo_engine)
    path = demo_engine.store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT id, status, started_at, data FROM instances WHERE procedure = 'complaint'").fetchall()
        callbacks = dict(con.execute("SELECT parent_id, status FROM instances WHERE procedure = 'callback'").fetchall())
    months: dict[str, list[Any]] = {}
    for iid, status, started, data in rows:
        month = datetime.fromisoformat(started).replace(tzinfo=ZoneInfo("UTC")).astimezone(SHANGHAI).strftime("%Y-%m")
        months.setdefault(month, []).append((iid, status, '"anonymous":true' in data))
    by_month = {q.month: q for q in d.quality}
    for month, complaints in months.items():
        q = by_month[month]
        closed = [c for c in complaints if c[1] == "completed"]
        assert (q.complaints, q.complaints_closed) == (len(complaints), len(closed))
        due = [c for c in closed if not c[2]]
        assert q.callbacks_due == len(due)
        assert q.callbacks_done == sum(callbacks.get(c[0]) == "completed" for c in due)
    assert sum(q.surveyed for q in d.quality) > 0 and all(q.satisfied <= q.surveyed for q in d.quality)


def test_a_period_and_a_procedure_narrow_the_figures(demo_engine: Any) -> None:
    october = figures(demo_engine, datetime(2025, 10, 1, tzinfo=SHANGHAI), None, "complaint")
    assert set(october.months) == {"2025-10"} and {p for _, p in october.month_procedure} == {"complaint"}
    assert {r["procedure"] for r in october.procedures} == {"complaint"}
