"""End-to-end smoke: a complaint runs from intake to its callback through the CLI."""
from __future__ import annotations

import json

from cli import main

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}


def test_cmp9_resolving_a_named_complaint_spawns_a_linked_callback(runner) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["--json", "start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT),
                             "--at", "2025-09-30T17:55:00+08:00"])
    assert r.exit_code == 0, r.output
    inst = json.loads(r.stdout)
    assert inst["assignee"] == "chen_jing"  # steward of building 3
    steps = [["investigate"], ["reply", "--data", '{"reply_method":"phone","reply_summary":"已处理"}'],
             ["resolve", "--data", '{"handling_result":"已修复"}']]
    for step in steps:
        r = runner.invoke(main, ["--json", "advance", str(inst["id"]), step[0], "--as", "chen_jing", *step[1:]])
        assert r.exit_code == 0, r.output
    shown = json.loads(runner.invoke(main, ["show", str(inst["id"]), "--json"]).stdout)
    assert shown["state"] == "resolved" and len(shown["children"]) == 1
    child = json.loads(runner.invoke(main, ["show", str(shown["children"][0]), "--json"]).stdout)
    assert child["procedure"] == "callback" and child["parent"] == inst["id"]
    assert runner.invoke(main, ["replay", str(inst["id"])]).exit_code == 0
    assert runner.invoke(main, ["audit", "verify"]).exit_code == 0
