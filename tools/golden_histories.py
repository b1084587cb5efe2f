"""Write tests/golden/histories/events.jsonl: stored events whose bytes and hashes must never change.

    python -m tools.golden_histories                  # with this tree's engine
    PYTHONPATH=BASELINE python BASELINE/../tools/golden_histories.py   # (how the file was made)

The histories: complaints taken through the actions of the bench workload and of the
audit tests (named and anonymous, a callback child) and a dunning case, then a month of
timer sweeps, so SLA warnings and breaches, notices, money and timers are all written. Every stored
event row is written as it is in the database (data as its stored text, hash, prev_hash).
``tests/test_codec.py`` re-encodes each event from its decoded data and requires the same
text and the same hash: a change of the canonical form would break every existing chain.
The file was made with issue 16's starting commit (the encoder before engine/codec.py).
"""
from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

OUT = Path(__file__).resolve().parents[1] / "tests" / "golden" / "histories" / "events.jsonl"
T0 = datetime(2025, 10, 14, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NAMED = {"unit": "3-1-502", "owner_name": "王先生", "contact": "13900000001", "channel": "phone",
         "content": "楼上漏水，天花板渗水\n\"紧急\"", "anonymous": False}


def build(db: Path) -> None:
    from bench.common import FINDINGS, interim, open_engine
    from engine.clock import FakeClock

    clock = FakeClock(T0)
    engine = open_engine(db, clock)

    def later(minutes: int) -> None:
        clock.advance(timedelta(minutes=minutes))

    try:
        c = engine.start("complaint", "liu_fang", NAMED)
        later(30)
        engine.advance(c.id, "investigate", "chen_jing")
        later(60)
        engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"})
        later(60)
        c = engine.advance(c.id, "resolve", "chen_jing", {"handling_result": "已修复"})
        later(60 * 24)
        engine.advance(c.children[0], "record_callback", "li_qiang",
                       {"method": "phone", "satisfaction": "satisfied", "callback_notes": "满意"})
        a = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True})
        later(10)
        engine.claim(a.id, "li_qiang")
        b = engine.start("complaint", "liu_fang", dict(NAMED, unit="1-2-301", content="电梯经常停运"))
        later(5)
        engine.advance(b.id, "investigate", "wang_li")
        engine.advance(b.id, "record_findings", "wang_li", FINDINGS)
        engine.advance(b.id, "interim_reply", "wang_li", interim(clock))
        engine.start("complaint", "liu_fang", dict(NAMED, unit="5-1-101", content="夜间装修噪音"))
        engine.start("dunning", "li_qiang", {  # timers: reminders before and after the due date
            "unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-09",
            "amount_due": "1280.00", "notices_posted_at": clock.now().isoformat(), "payment_method": "cash",
            "due_date": "2025-10-25"})
        for _ in range(30):  # a month of sweeps: warnings, breaches, escalations, notices
            later(60 * 24)
            while engine.tick(clock.now(), limit=200):
                pass
    finally:
        engine.close()


def dump(db: Path, out: Path) -> int:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT instance_id, seq, type, actor, role, occurred_at, recorded_at, data, prev_hash, hash "
                       "FROM events ORDER BY instance_id, seq").fetchall()
    con.close()
    keys = ("instance_id", "seq", "type", "actor", "role", "occurred_at", "recorded_at", "data", "prev_hash", "hash")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(dict(zip(keys, r)), ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    return len(rows)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "golden.db"
        build(db)
        n = dump(db, OUT)
    print(f"{n} events written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
