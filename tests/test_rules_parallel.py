"""Parallel branches with a join (issue 14): a ``kind: parallel`` state forks into branches,
each a small sub-flow with its own assignee, actions and SLA, and the case moves on when the
join completes (all branches, any one, or the named ones).

REN-4: the renovation inspection team (装修检查队) is security, engineering and customer
service; each patrols the site and reports at the same time (procedures/renovation_team_patrol.yaml).
In the demo organisation 徐斌 xu_bin is security, 吴刚 wu_gang and 郑波 zheng_bo engineering,
陈静 chen_jing the steward of buildings 3 and 4, 李强 li_qiang the CS supervisor.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cli import main
from engine.codec import ClockStatus
from engine.errors import ActionNotAllowed, NotAuthorized, OutOfScope
from engine.runtime.config import Settings, build_engine
from engine.timeskip import skip
from engine.web.diagram import available, dot_source
from tests.api_support import api  # noqa: F401  (fixture)
from tests.test_engine_refusals import refused
from tests.web_support import Web, web  # noqa: F401  (fixture)

from conftest import ROOT

PATROL = "renovation_team_patrol"
REPORT = {"patrol_findings": "现场整洁，无违章"}
REPORTS = {"security": ("security_report", "xu_bin"), "engineering": ("engineering_report", "wu_gang"),
           "customer_service": ("cs_report", "chen_jing")}


def start(engine: Any, unit: str = "3-1201") -> Any:
    return engine.start(PATROL, "chen_jing", {"unit": unit})


def statuses(inst: Any) -> dict[str, str]:
    return {name: b["status"] for name, b in inst.branches.items()}


# ------------------------------------------------------------------ REN-4 through the engine

def test_ren4_the_inspection_team_patrols_in_parallel_and_the_case_moves_on_when_all_three_report(engine) -> None:  # type: ignore[no-untyped-def]
    p = start(engine)
    assert (p.state, p.assignee, p.assignee_role) == ("patrolling", None, None)
    assert {n: (b["state"], b["assignee"], b["role"]) for n, b in p.branches.items()} == {
        "security": ("security_patrol", None, "security"), "engineering": ("engineering_patrol", None, "engineering"),
        "customer_service": ("cs_patrol", "chen_jing", "steward")}
    # one task per open branch, each in its own inbox
    assert [(t.id, t.state) for t in engine.tasks(staff="xu_bin")] == [(p.id, "security_patrol")]
    assert [(t.id, t.state) for t in engine.tasks(role="engineering")] == [(p.id, "engineering_patrol")]
    assert [(t.id, t.state, t.assignee) for t in engine.tasks(staff="chen_jing")] == [(p.id, "cs_patrol", "chen_jing")]
    assert engine.tasks(staff="li_qiang") == []
    p = engine.advance(p.id, "security_report", "xu_bin", REPORT)
    assert (p.state, statuses(p)) == ("patrolling", {"security": "done", "engineering": "open",
                                                     "customer_service": "open"})
    assert engine.tasks(staff="xu_bin") == [] and engine.replay(p.id).ok
    p = engine.advance(p.id, "cs_report", "chen_jing", {"patrol_findings": "垃圾已清运"})
    assert p.state == "patrolling" and engine.replay(p.id).ok
    p = engine.advance(p.id, "engineering_report", "wu_gang", {"patrol_findings": "管线正常"})
    assert (p.state, p.branches, p.assignee_role) == ("summary", {}, "cs_supervisor")
    assert (p.data["security_findings"], p.data["engineering_findings"], p.data["cs_findings"]) == (
        "现场整洁，无违章", "管线正常", "垃圾已清运")
    types = [e.type for e in engine.history(p.id)]
    assert types.count("BranchActionTaken") == 3 and types.count("BranchFinished") == 3
    assert types.count("BranchesJoined") == 1
    assert engine.advance(p.id, "close", "li_qiang").status == "completed"
    assert engine.replay(p.id).ok


def test_ren4_each_branch_has_its_own_clock_which_stops_when_that_branch_reports(engine, clock) -> None:  # type: ignore[no-untyped-def]
    p = start(engine)
    assert {n: c.status for n, c in p.clocks.items()} == {
        "security_report": "open", "engineering_report": "open", "cs_report": "open"}
    p = engine.advance(p.id, "security_report", "xu_bin", REPORT, at=clock.now() + timedelta(hours=1))
    assert (p.clocks["security_report"].status, p.clocks["engineering_report"].running) == ("met", True)
    skip(engine, days=1)
    p = engine.show(p.id)
    assert {n: c.status for n, c in p.clocks.items()} == {
        "security_report": "met", "engineering_report": "breached", "cs_report": "breached"}
    assert engine.replay(p.id).ok


def test_a_branch_task_is_claimed_from_its_queue_and_acted_on_only_by_its_roles(engine) -> None:  # type: ignore[no-untyped-def]
    p = start(engine)
    p = engine.claim(p.id, "zheng_bo")
    assert p.branches["engineering"]["assignee"] == "zheng_bo"
    assert [t.state for t in engine.tasks(staff="zheng_bo")] == ["engineering_patrol"]
    assert engine.tasks(role="engineering") == []
    refused(engine, NotAuthorized, lambda: engine.advance(p.id, "security_report", "wu_gang", REPORT))
    err = refused(engine, OutOfScope, lambda: engine.advance(p.id, "cs_report", "zhao_lei", REPORT))
    assert "instance 1 is in building 3, not one of yours (5, 6)" in str(err)
    err = refused(engine, ActionNotAllowed, lambda: engine.advance(p.id, "close", "li_qiang"))
    assert str(err) == ("action 'close' not allowed: not available in state 'patrolling'; available: cs_report, "
                        "engineering_report, security_report")


# ------------------------------------------------------------------ join any / a named subset

JOINS = """\
id: site_check
title: 现场检查
start: {state: checking, roles: [steward]}
states:
  checking:
    title: 检查中
    kind: parallel
    branches:
      a: {title: 甲, start: a_open, states: [a_open, a_done]}
      b: {title: 乙, start: b_open, states: [b_open, b_done]}
      c: {title: 丙, start: c_open, states: [c_open, c_done]}
    join: JOIN
    next: checked
  a_open: {title: 甲检查, owner: security}
  a_done: {title: 甲完成, kind: final}
  b_open: {title: 乙检查, owner: engineering}
  b_done: {title: 乙完成, kind: final}
  c_open: {title: 丙检查, owner: steward}
  c_done: {title: 丙完成, kind: final}
  checked: {title: 已检查, kind: final}
actions:
  - {name: a_ok, title: 甲通过, from: a_open, to: a_done, roles: [security]}
  - {name: b_ok, title: 乙通过, from: b_open, to: b_done, roles: [engineering]}
  - {name: c_ok, title: 丙通过, from: c_open, to: c_done, roles: [steward]}
"""


def site_engine(tmp_path: Path, clock: Any, join: str, text: str = JOINS) -> Any:
    procs = tmp_path / "procedures"
    procs.mkdir(parents=True)
    (tmp_path / "forms").mkdir()
    (procs / "site_check.yaml").write_text(text.replace("JOIN", join), encoding="utf-8")
    return build_engine(Settings(f"sqlite:///{tmp_path / 'sop.db'}", procs, ROOT / "org" / "demo.yaml"), clock)


def test_join_any_moves_on_with_the_first_branch_done_and_cancels_the_others(tmp_path: Path, clock: Any) -> None:
    engine = site_engine(tmp_path, clock, "any")
    s = engine.start("site_check", "chen_jing", {})
    s = engine.advance(s.id, "b_ok", "wu_gang")
    assert (s.state, s.status, s.branches) == ("checked", "completed", {})
    joined = json.loads(engine.history(s.id)[-2].data_json)
    assert joined == {"cancelled": {"a": "a_open", "c": "c_open"}, "done": ["b"], "from": "checking", "to": "checked"}
    assert engine.tasks(role="security") == [] and engine.replay(s.id).ok


def test_join_of_named_branches_waits_for_those_only(tmp_path: Path, clock: Any) -> None:
    engine = site_engine(tmp_path, clock, "[a, c]")
    s = engine.start("site_check", "chen_jing", {})
    s = engine.advance(s.id, "a_ok", "xu_bin")
    s = engine.advance(s.id, "b_ok", "wu_gang")
    assert s.state == "checking"
    s = engine.advance(s.id, "c_ok", "chen_jing")
    assert (s.state, s.status) == ("checked", "completed") and engine.replay(s.id).ok


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(["security", "engineering", "customer_service"]), claim=st.booleans())
def test_replay_equals_the_stored_instance_after_every_branch_step_in_any_order(engine, order, claim) -> None:  # type: ignore[no-untyped-def]
    p = start(engine)
    if claim:
        p = engine.claim(p.id, "zheng_bo")
        assert engine.replay(p.id).ok
    for i, branch in enumerate(order):
        action, who = REPORTS[branch]
        p = engine.advance(p.id, action, "zheng_bo" if branch == "engineering" and claim else who, REPORT)
        assert engine.replay(p.id).ok
        assert p.state == ("summary" if i == 2 else "patrolling")
    assert [e.type for e in engine.history(p.id)].count("BranchesJoined") == 1


# ------------------------------------------------------------------ lint

def lint_output(tmp_path: Path, runner: CliRunner, text: str) -> str:
    procs = tmp_path / "lint" / "procedures"
    procs.mkdir(parents=True)
    (tmp_path / "lint" / "forms").mkdir()
    (procs / "site_check.yaml").write_text(text, encoding="utf-8")
    r = runner.invoke(main, ["lint", str(procs / "site_check.yaml")])
    assert r.exit_code == (1 if r.output else 0) and "Traceback" not in r.output
    return r.output


def test_lint_catches_a_join_that_can_never_complete_and_a_branch_with_no_way_to_finish(tmp_path: Path,
                                                                                       runner: CliRunner) -> None:
    text = JOINS.replace("JOIN", "all").replace("  - {name: b_ok, title: 乙通过, from: b_open, to: b_done, roles: [engineering]}\n",
                                                "  - {name: b_note, title: 乙记录, from: b_open, roles: [engineering]}\n")
    out = lint_output(tmp_path, runner, text)
    assert "branches.b: branch 'b' has no way to finish: no final state of it is reachable from 'b_open'" in out
    assert "join: the join of 'checking' can never complete: branch(es) b cannot finish" in out
    assert lint_output(tmp_path / "any", runner, text.replace("join: all", "join: any")).count("can never complete") == 0


def test_lint_catches_duplicate_state_names_across_branches_unknown_join_names_and_crossing_actions(
        tmp_path: Path, runner: CliRunner) -> None:
    dup = JOINS.replace("JOIN", "[a, d]").replace("states: [b_open, b_done]", "states: [b_open, b_done, a_done]")
    out = lint_output(tmp_path, runner, dup)
    assert "state 'a_done' is already in branch 'a' of 'checking': a state belongs to one branch" in out
    assert "join names unknown branch 'd'" in out
    crossing = JOINS.replace("JOIN", "all").replace("from: c_open, to: c_done", "from: c_open, to: a_done")
    out = lint_output(tmp_path / "x", runner, crossing)
    assert "action 'c_ok' leads from 'c_open' (branch 'c') to 'a_done' in another branch or out of it" in out


def test_the_shipped_procedures_lint_clean_with_the_parallel_one(runner: CliRunner) -> None:
    r = runner.invoke(main, ["lint"])
    assert (r.exit_code, r.output) == (0, "")


# ------------------------------------------------------------------ CLI, API, web, graph

def test_cli_lists_one_task_per_branch_and_shows_branch_status_and_the_graph_draws_fork_and_join(
        runner: CliRunner) -> None:
    def sop(*args: str) -> str:
        r = runner.invoke(main, list(args))
        assert r.exit_code == 0, r.output
        return r.output

    sop("start", PATROL, "--as", "chen_jing", "--data", json.dumps({"unit": "3-1201"}))
    tasks = json.loads(sop("tasks", "--as", "xu_bin", "--json"))
    assert [(t["id"], t["state"], t["assignee_role"]) for t in tasks] == [(1, "security_patrol", "security")]
    shown = sop("show", "1")
    assert "branch security: security_patrol (open)  assignee: -  role queue: security" in shown
    assert "security_report  保安部提交巡查记录  roles: security  form: renovation_patrol  branch: security" in shown
    sop("advance", "1", "security_report", "--as", "xu_bin", "--data", json.dumps(REPORT))
    assert json.loads(sop("show", "1", "--json"))["branches"]["security"]["status"] == "done"
    graph = sop("graph", PATROL)
    assert "state patrolling_fork <<fork>>" in graph and "patrolling_join --> summary : join all" in graph
    assert "security_done --> patrolling_join" in graph


def test_api_tasks_hold_the_branch_tasks_and_a_branch_action_is_taken_over_http(api) -> None:  # type: ignore[no-untyped-def]
    p = start(api.engine)
    chen = api.as_("chen_jing")
    items = chen.get("/v1/tasks").json()["items"]
    assert [(t["id"], t["state"]) for t in items] == [(p.id, "cs_patrol")]
    shown = chen.get(f"/v1/instances/{p.id}").json()
    assert shown["branches"]["customer_service"]["assignee"] == "chen_jing"
    assert {a["name"]: a["branch"] for a in shown["actions"]}["cs_report"] == "customer_service"
    r = chen.post(f"/v1/instances/{p.id}/actions/cs_report", json={"data": REPORT})
    assert r.status_code == 200, r.text
    assert r.json()["branches"]["customer_service"]["status"] == "done"
    assert chen.get("/v1/tasks").json()["total"] == 0


def test_api_inbox_filters_judge_a_branch_task_where_it_stands(api) -> None:  # type: ignore[no-untyped-def]
    """A filtered inbox keeps the branch tasks that match it: procedure, building and overdue on
    the case, state and assignee on the branch — none dropped because the list is filtered."""
    p, other = start(api.engine, "3-1201"), start(api.engine, "4-0802")
    chen = api.as_("chen_jing")

    def tasks(query: str) -> list[tuple[int, str]]:
        body = chen.get(f"/v1/tasks?{query}").json()
        assert body["total"] == len(body["items"]), body
        return [(t["id"], t["state"]) for t in body["items"]]

    both = [(p.id, "cs_patrol"), (other.id, "cs_patrol")]
    assert tasks("") == both
    assert tasks(f"procedure={PATROL}") == both and tasks("procedure=complaint") == []
    assert tasks("building=4") == [(other.id, "cs_patrol")] and tasks("building=1") == []
    assert tasks("state=cs_patrol") == both and tasks("state=security_patrol") == []
    assert tasks("assignee=chen_jing") == both and tasks("assignee=xu_bin") == []
    assert tasks("overdue=false") == both and tasks("overdue=true") == []
    assert tasks("status=completed") == []
    wu = api.as_("wu_gang")  # a role queue, filtered
    assert [(t["id"], t["state"]) for t in wu.get("/v1/tasks?role=engineering&building=3").json()["items"]] == \
        [(p.id, "engineering_patrol")]


def test_web_inbox_and_instance_page_show_the_branches(web: Web) -> None:
    p = start(web.engine)
    guard = web.login("chen_jing")
    assert f'id="task-{p.id}"' in guard.get("/").text
    page = guard.get(f"/instances/{p.id}").text
    assert "并行办理" in page and 'id="branch-security"' in page and "保安部巡查" in page
    assert 'id="act-cs_report"' in page and "（客户服务中心）" in page
    if available():  # Graphviz renders the page's diagram: the fork and the join are drawn
        assert 'id="fork_patrolling"' in page and 'id="join_patrolling"' in page
    dot = dot_source(web.engine.library.get(PATROL).spec, "patrolling")
    assert '"__fork_patrolling" -> "security_patrol" [label="保安部"]' in dot
    assert '"__join_patrolling" -> "summary" [label="全部完成"]' in dot


def test_what_if_replay_re_runs_branch_steps_and_claims_under_an_edited_join(engine, clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime.watching import watch
    from engine.runtime.whatif import what_if

    p = start(engine)
    p = engine.claim(p.id, "zheng_bo", at=clock.now() + timedelta(minutes=10))
    watch(engine, p.id, "li_qiang", clock.now() + timedelta(minutes=20))
    engine.advance(p.id, "security_report", "xu_bin", REPORT, at=clock.now() + timedelta(minutes=30))
    edited = tmp_path / f"{PATROL}.yaml"
    text = (ROOT / "procedures" / f"{PATROL}.yaml").read_text(encoding="utf-8")
    edited.write_text(text.replace("    join: all\n", "    join: [security]\n"), encoding="utf-8")
    _, (result,) = what_if(engine, edited, instance_ids=[p.id])
    assert (result.recorded_state, result.whatif_state, result.refused) == ("patrolling", "summary", [])


def test_ren4_a_branch_clock_belongs_to_the_branch_assignee(engine) -> None:  # type: ignore[no-untyped-def]
    p = start(engine)
    assert (p.clocks["cs_report"].assignee, p.clocks["security_report"].assignee) == ("chen_jing", None)


def test_a_timer_of_a_branch_state_is_cancelled_when_the_join_cancels_its_branch(tmp_path: Path, clock: Any) -> None:
    text = JOINS + """timers:
  - name: nudge
    title: 催办
    state: a_open
    after: 1 hour
    effects:
      - watch: {role: cs_supervisor}
      - notify: {watchers: true, message: "现场检查 {id} 甲尚未完成。"}
"""
    engine = site_engine(tmp_path, clock, "any", text)
    s = engine.start("site_check", "chen_jing", {})
    assert s.clocks["nudge"].status is ClockStatus.OPEN
    s = engine.advance(s.id, "b_ok", "wu_gang")
    assert s.clocks["nudge"].status is ClockStatus.CANCELLED and engine.replay(s.id).ok
    # the same timer, left to fire: its watch effect adds the supervisor, who is told
    other = site_engine(tmp_path / "again", clock, "all", text)
    s = other.start("site_check", "chen_jing", {})
    skip(other, hours=2)
    s = other.show(s.id)
    assert s.watchers == ("li_qiang",) and s.clocks["nudge"].status is ClockStatus.FIRED and other.replay(s.id).ok


def test_a_bulk_start_into_a_parallel_state_stores_the_branches_and_replays(engine) -> None:  # type: ignore[no-untyped-def]
    started = engine.start_many(PATROL, "chen_jing", [{"unit": "3-1201"}, {"unit": "4-0301"}])
    for inst in started:
        stored = engine.show(inst.id)
        assert statuses(stored) == {"security": "open", "engineering": "open", "customer_service": "open"}
        assert engine.replay(inst.id).ok
    assert [t.state for t in engine.tasks(staff="xu_bin")] == ["security_patrol", "security_patrol"]


def test_an_instance_in_open_branches_is_not_migrated_until_the_join(tmp_path: Path, clock: Any) -> None:
    from engine.runtime.migration import MigrationRefused, migrate

    engine = site_engine(tmp_path, clock, "all")
    s = engine.start("site_check", "chen_jing", {})
    old = s.version
    edited = site_engine(tmp_path / "v2", clock, "any")
    edited.close()
    engine.library = build_engine(Settings(engine.store_url, tmp_path / "v2" / "procedures",
                                           ROOT / "org" / "demo.yaml"), clock).library
    with pytest.raises(MigrationRefused) as e:
        migrate(engine, "site_check", old, "current", {})
    assert "it is in the parallel branches of 'checking'; migrate it after their join" in str(e.value)
