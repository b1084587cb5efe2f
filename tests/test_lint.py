"""``sop lint``: exit 0 when clean, else exit 1 and one ``file:line:col: message`` line per problem.

Each broken procedure under ``tests/fixtures/lint/procedures/`` has its expected output in
``tests/golden/lint/<name>.txt``. After an intended change of a message, regenerate with
``SOP_UPDATE_GOLDEN=1 python -m pytest tests/test_lint.py`` and review the diff.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path("tests/fixtures/lint")  # relative: golden files hold repository-relative paths
GOLDEN = ROOT / "tests" / "golden" / "lint"
BROKEN = sorted(p.stem for p in (ROOT / FIXTURES / "procedures").glob("*.yaml") if p.stem != "clean")
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


@pytest.fixture
def lint(runner, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["lint", *args])

    return run


def check_golden(name: str, output: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("SOP_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(output, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with SOP_UPDATE_GOLDEN=1 to create it"
    assert output == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", BROKEN)
def test_lint_output_of_broken_procedure_matches_golden(lint, name: str) -> None:  # type: ignore[no-untyped-def]
    r = lint(str(FIXTURES / "procedures" / f"{name}.yaml"))
    assert r.exit_code == 1, r.output
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines, "a broken procedure must produce at least one problem"
    for line in lines:
        m = LINE.match(line)
        assert m, f"not file:line:col: message: {line!r}"
        # located in the procedure, or in a form it uses (form_condition)
        assert m["file"] in (str(FIXTURES / "procedures" / f"{name}.yaml"), str(FIXTURES / "forms" / "lint_visit.yaml"))
    check_golden(name, r.stdout)


def test_lint_output_of_broken_forms_matches_golden(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint(str(FIXTURES / "broken_forms"))
    assert r.exit_code == 1
    assert all(LINE.match(line) for line in r.stdout.splitlines())
    check_golden("broken_forms", r.stdout)


def test_no_golden_file_is_left_without_its_fixture() -> None:
    expected = set(BROKEN) | {"broken_forms"}
    assert {p.stem for p in GOLDEN.glob("*.txt")} == expected


# Every check the issue asks for, each proven on its own fixture: (fixture, fragment of the message).
REQUIRED = {
    # noticed on line 6; the message names line 5, where the list began
    "yaml_syntax_error": ("yaml_syntax", "6", "YAML syntax: expected ',' or ']', but got ':' "
                                              "(while parsing a flow sequence at line 5)"),
    "unknown_key": ("unknown_key", "9", "unknown key 'onwer' (did you mean 'owner'?)"),
    "unknown_target_state": ("unknown_target", "16", "actions[0].to: unknown state 'finished'"),
    "unknown_source_state": ("unknown_source", "15", "actions[0].from[1]: unknown state 'opened'"),
    "unreachable_state": ("unreachable", "9", "state 'review' is unreachable from the start state 'open'"),
    "no_way_out": ("no_way_out", "9", "state 'waiting' is not final but no action leaves it"),
    "unknown_role": ("unknown_role", "18", "actions[0].roles[1]: unknown role 'janitor'"),
    "unknown_form": ("unknown_form", "19", "actions[0].form: unknown form 'lint_result'"),
    "duplicate_action": ("duplicate_action", "21", "action 'finish' is defined twice from state 'open'"),
    "expression_does_not_parse": ("bad_expression", "19", "expression 'amount >': expression does not parse"),
    "expression_names_unknown_field": ("unknown_field", "21",
                                       "names unknown field 'chanel' (did you mean 'channel'?)"),
    # issue 14: what lint used to miss
    "spawn_data_unknown_to_the_child": ("unknown_spawn_data", "23",
                                        "spawn data field 'unti' is not in clean's start form 'lint_intake' "
                                        "(did you mean 'unit'?)"),
    "message_placeholder_typo": ("message_placeholder", "21",
                                 "message placeholder {unti} is not a field of the instance, {id} or {state} "
                                 "(did you mean 'unit'?)"),
    "breach_action_the_system_may_not_take": ("system_action", "38",
                                              "slas[0].breach_action: action 'escalate' does not allow the role "
                                              "'system'"),
    "breach_action_unavailable_where_the_clock_runs": ("system_action", "43",
                                                       "slas[1].breach_action: action 'expire' is not available "
                                                       "from 'waiting', where the clock runs"),
    "timer_action_unavailable_where_the_timer_runs": ("system_action", "49",
                                                      "timers[0].action: action 'expire' is not available from "
                                                      "'waiting'"),
    "whole_instance_timer_action_unavailable_somewhere": ("system_action", "53",
                                                          "timers[1].action: action 'expire' is not available "
                                                          "from 'waiting'"),
    # a timer armed in a list of states: each of them checked (lint used to crash on the list)
    "timer_over_a_list_of_states_checked_in_each": ("system_action", "58",
                                                    "timers[2].action: action 'expire' is not available from "
                                                    "'waiting'"),
    "automatic_state_nothing_moves": ("automatic_stuck", "10",
                                      "state 'checking' is automatic but nothing moves an instance out of it"),
}


@pytest.mark.parametrize("check", sorted(REQUIRED))
def test_lint_finds(lint, check: str) -> None:  # type: ignore[no-untyped-def]
    name, line, fragment = REQUIRED[check]
    r = lint(str(FIXTURES / "procedures" / f"{name}.yaml"))
    assert r.exit_code == 1
    hits = [m for m in map(LINE.match, r.stdout.splitlines()) if m and fragment in m["message"]]
    assert hits, f"{fragment!r} not in:\n{r.stdout}"
    assert hits[0]["line"] == line


def test_lint_refuses_reaching_into_python_from_expressions(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint(str(FIXTURES / "procedures" / "bad_expression.yaml"))
    assert "actions[1].when: expression 'unit.__class__.__bases__': Attribute is not allowed in expressions" \
        in r.stdout


def test_lint_finds_a_form_condition_the_procedure_cannot_satisfy(lint) -> None:  # type: ignore[no-untyped-def]
    # The problem is located in the sibling form file; linting the procedure alone must still report it.
    r = lint(str(FIXTURES / "procedures" / "form_condition.yaml"))
    assert r.exit_code == 1
    assert r.stdout.startswith(str(FIXTURES / "forms" / "lint_visit.yaml") + ":5:56: ")


def test_clean_procedure_exits_0_silently(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint(str(FIXTURES / "procedures" / "clean.yaml"))
    assert (r.exit_code, r.output) == (0, "")


def test_shipped_procedures_and_forms_are_clean(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint()
    assert (r.exit_code, r.output) == (0, "")


def test_several_files_report_every_problem_sorted(lint) -> None:  # type: ignore[no-untyped-def]
    names = ["unknown_role", "unknown_form", "clean"]
    r = lint(*(str(FIXTURES / "procedures" / f"{n}.yaml") for n in names))
    assert r.exit_code == 1
    keys = [(m["file"], int(m["line"]), int(m["col"])) for m in map(LINE.match, r.stdout.splitlines())]
    assert keys == sorted(keys)
    assert {Path(k[0]).stem for k in keys} == {"unknown_role", "unknown_form"}
    assert len(keys) == 4 + 2


def test_missing_path_is_a_problem(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint("no/such/file.yaml")
    assert (r.exit_code, r.stdout) == (1, "no/such/file.yaml:1:1: no such file or directory\n")


def test_lint_json(runner, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    r = runner.invoke(main, ["--json", "lint", str(FIXTURES / "procedures" / "unknown_source.yaml")])
    assert r.exit_code == 1
    assert json.loads(r.stdout) == [{
        "file": str(FIXTURES / "procedures" / "unknown_source.yaml"), "line": 15, "col": 18,
        "path": "actions[0].from[1]", "message": "unknown state 'opened'", "hint": "did you mean 'open'?"}]
    r = runner.invoke(main, ["lint", "--json", str(FIXTURES / "procedures" / "clean.yaml")])
    assert (r.exit_code, json.loads(r.stdout)) == (0, [])


def test_lint_checks_roles_against_the_org_file(runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    org = tmp_path / "org.yaml"
    org.write_text("site: {name: 小区}\nroles: {front_desk: 前台}\nstaff:\n"
                   "  - {id: a, name: 甲, roles: [front_desk]}\n", encoding="utf-8")
    r = runner.invoke(main, ["--org", str(org), "lint", str(FIXTURES / "procedures" / "clean.yaml")])
    assert r.exit_code == 1
    assert "unknown role 'steward'" in r.stdout


def test_a_broken_procedure_refuses_only_its_own_commands_with_located_lines(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    procs, forms = tmp_path / "procedures", tmp_path / "forms"
    procs.mkdir(), forms.mkdir()
    for name in ("complaint", "callback"):
        shutil.copy(ROOT / "procedures" / f"{name}.yaml", procs)
        for form in (ROOT / "forms").glob(f"{name}_*.yaml"):
            shutil.copy(form, forms)
    text = (procs / "callback.yaml").read_text(encoding="utf-8")
    (procs / "callback.yaml").write_text(text.replace("to: closed", "to: clossed"), encoding="utf-8")
    r = runner.invoke(main, ["--procedures", str(procs), "graph", "complaint"])
    assert r.exit_code == 0, r.output  # complaint (which spawns callback) stays enabled
    r = runner.invoke(main, ["--procedures", str(procs), "graph", "callback"])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert re.fullmatch(rf"error: procedure callback is disabled: {re.escape(str(procs / 'callback.yaml'))}:\d+:\d+: "
                        r"actions\[\d\]\.to: unknown state 'clossed' \(did you mean 'closed'\?\)\n", r.stderr)
    r = runner.invoke(main, ["--procedures", str(procs), "lint"])
    assert r.exit_code == 1 and "unknown state 'clossed'" in r.stdout


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "procedures").glob("*.yaml")))
def test_linting_one_shipped_file_resolves_its_spawns_from_the_same_folder(lint, name: str) -> None:  # type: ignore[no-untyped-def]
    r = lint(f"procedures/{name}.yaml")
    assert (r.exit_code, r.output) == (0, "")


def test_a_spawn_of_a_procedure_in_no_file_of_the_folder_is_still_unknown(lint) -> None:  # type: ignore[no-untyped-def]
    r = lint(str(FIXTURES / "procedures" / "unknown_procedure.yaml"))
    assert "unknown procedure 'callbak'" in r.stdout


def test_the_new_checks_accept_what_is_right(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An automatic state left by a timer's system action, a breach action available wherever
    its clock runs, spawn data the child's start form has, and known placeholders lint clean."""
    procs, forms = tmp_path / "procedures", tmp_path / "forms"
    procs.mkdir(), forms.mkdir()
    shutil.copy(ROOT / FIXTURES / "forms" / "lint_intake.yaml", forms)
    shutil.copy(ROOT / FIXTURES / "procedures" / "clean.yaml", procs)
    (procs / "good.yaml").write_text("""\
id: good
title: 正确
start: {state: open, roles: [front_desk], form: lint_intake}
states:
  open: {title: 待处理}
  checking: {title: 自动核对, kind: automatic}
  done: {title: 完成, kind: final}
actions:
  - {name: check, title: 核对, from: open, to: checking, roles: [steward]}
  - {name: pass_check, title: 通过, from: checking, to: done, roles: [system]}
  - name: overdue
    title: 超时
    from: [open, checking]
    to: done
    roles: [steward, system]
    effects:
      - notify: {role: steward, message: "{id} {unit} {state} 超时"}
      - spawn: {procedure: clean, data: {unit: unit, channel: channel}}
slas:
  - {name: handle, title: 时限, stop_in: [done], goal: 4 hours, breach_action: overdue}
timers:
  - {name: auto, title: 自动, state: checking, after: 1 hour, action: pass_check}
""", encoding="utf-8")
    r = runner.invoke(main, ["lint", str(procs / "good.yaml")])
    assert (r.exit_code, r.output) == (0, "")
