"""Bad values on commands and in definition files: one located line each, exit 1, nothing written.

(Imports: tests/test_import_payments.py and tests/test_import_calls.py; files a command
must not overwrite: tests/test_no_file_destroyed.py.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from engine.errors import ProcedureError
from engine.spec.yamlio import loads
from tests.conftest import ROOT

COMPLAINT = '{"unit":"3-1201","owner_name":"王先生","contact":"13912345678","channel":"phone","content":"楼上漏水","anonymous":false}'


def one_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.splitlines()  # (lint reports on stdout, commands on stderr)
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("char, what", [("\x00", "control character U+0000"),
                                        ("\u202e", "bidirectional control character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
                                        ("\u2066", "bidirectional control character U+2066 (LEFT-TO-RIGHT ISOLATE)"),
                                        ("\x1b", "control character U+001B")],
                         ids=["nul", "rlo", "lri", "escape"])
def test_lint_names_file_line_and_column_of_a_forbidden_character(runner, tmp_path: Path, char: str,
                                                                  what: str) -> None:  # type: ignore[no-untyped-def]
    procedures = tmp_path / "procedures"
    procedures.mkdir()
    text = (ROOT / "procedures" / "callback.yaml").read_text(encoding="utf-8")
    line_no = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("title:"))
    col = text.splitlines()[line_no - 1].index(":") + 3
    lines = text.splitlines(keepends=True)
    lines[line_no - 1] = lines[line_no - 1][:col - 1] + char + lines[line_no - 1][col - 1:]
    bad = procedures / "callback.yaml"
    bad.write_text("".join(lines), encoding="utf-8")
    line = one_line(runner.invoke(main, ["lint", str(bad)]))
    assert line.startswith(f"{bad}:{line_no}:{col}: {what} is not allowed")


def test_forbidden_characters_are_all_located_across_crlf_lines() -> None:
    with pytest.raises(ProcedureError) as e:
        loads("id: a\r\ntitle: b\u202ec\r\nx: \x00\n", "f.yaml")
    assert [(i.line, i.col) for i in e.value.issues] == [(2, 9), (3, 4)]
    assert all(str(i).startswith("f.yaml:") for i in e.value.issues)


def test_a_lone_surrogate_is_a_located_refusal_not_a_traceback() -> None:
    with pytest.raises(ProcedureError) as e:
        loads("id: \ud800\n", "s.yaml")
    assert (e.value.issues[0].line, e.value.issues[0].col) == (1, 5)


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-12:00", "9999-12-31T23:00", "1900-01-01T00:00+08:00"])
def test_a_time_out_of_range_is_refused_naming_the_option_and_nothing_is_written(runner, at: str) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(main, ["start", "complaint", "--as", "liu_fang", "--data", COMPLAINT]).exit_code == 0
    before = runner.invoke(main, ["--json", "history", "1"]).stdout
    line = one_line(runner.invoke(main, ["advance", "1", "investigate", "--as", "chen_jing", "--at", at]))
    assert line.startswith("error: --at: ") and "outside the years 1970–2999" in line
    assert runner.invoke(main, ["--json", "history", "1"]).stdout == before
    line = one_line(runner.invoke(main, ["tick", "--until", at]))
    assert line.startswith("error: --until: ")


@pytest.mark.parametrize("command", [["show"], ["history"], ["replay"], ["advance", "{id}", "investigate", "--as",
                                                                         "chen_jing"]],
                         ids=["show", "history", "replay", "advance"])
def test_an_instance_id_past_the_column_range_is_refused_not_a_traceback(runner, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    big = "99999999999999999999"
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0       # a database to look in
    args = [a.replace("{id}", big) for a in command] if "{id}" in command else [*command, big]
    line = one_line(runner.invoke(main, args))
    assert line == f"error: ID: not an instance id: '{big}' (ids run from 1 to 2147483647)"


def test_a_form_date_or_time_out_of_range_is_refused_naming_file_line_and_field(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = tmp_path / "fees.jsonl"
    good = ('{"unit":"1-0301","period":"2025-10","management_fee":"10","water_usage":1,"water_unit_price":"3.50",'
            '"service_fees":"0","other_fees":"0","payment_method":"cash","due_date":"2025-10-15"}')
    rows.write_text(good + "\n" + good.replace("1-0301", "1-0302").replace("2025-10-15", "9999-12-31") + "\n",
                    encoding="utf-8")
    r = runner.invoke(main, ["start", "fee_cycle", "--as", "lin_cai", "--each", str(rows), "--at", "2025-10-01T09:00"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{rows}:2: due_date: " in r.stderr and "outside the years 1900–2999" in r.stderr
    assert "nothing started" in r.stderr
    loan = {"document_no": "D-1", "document_title": "图纸", "grade": "C", "department": "engineering",
            "borrower_kind": "staff", "borrower_name": "王工", "borrower_department": "工程部",
            "due_at": "9999-12-31T23:59:59-12:00"}
    import json

    r = runner.invoke(main, ["start", "archive_loan", "--as", "gao_ya", "--data", json.dumps(loan, ensure_ascii=False)])
    assert r.exit_code == 1 and "Traceback" not in r.output and "due_at" in r.stderr
    assert "outside the years 1970–2999" in r.stderr
