"""A broken file disables only its own procedure (issue 14).

A problem in a procedure file disables that procedure; a problem in a form file disables
every procedure using the form. Every other command keeps working; a command that needs a
disabled procedure is refused in one line naming the problems (file:line:col), exit 1,
nothing written. Instances of a disabled procedure stay readable from their stored version
snapshot; the timer sweep skips their steps, which stay due. A procedure that spawns a
disabled one stays enabled, but the spawning action is refused naming the child.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from engine.clock import FakeClock
from engine.errors import ProcedureDisabled
from engine.runtime.config import Settings, build_engine
from tests.web_support import web  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
TYPO = "\n  oops: [unclosed\n"  # a YAML syntax error at the end of the file


@pytest.fixture
def site(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped procedures and forms that a test may break."""
    shutil.copytree(ROOT / "procedures", tmp_path / "site" / "procedures")
    shutil.copytree(ROOT / "forms", tmp_path / "site" / "forms")
    monkeypatch.setenv("SOP_PROCEDURES", str(tmp_path / "site" / "procedures"))
    return tmp_path / "site"


def sop(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(main, list(args))


def break_file(path: Path) -> int:
    """Append a YAML syntax error; the line it is reported on."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + TYPO, encoding="utf-8")
    return text.rstrip("\n").count("\n") + 2


def start_complaint(runner: CliRunner) -> None:
    r = sop(runner, "start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT, ensure_ascii=False))
    assert r.exit_code == 0, r.output


def instance_exists(runner: CliRunner, instance_id: int) -> bool:
    return sop(runner, "show", str(instance_id)).exit_code == 0


def test_a_typo_in_one_procedure_leaves_every_other_procedure_working(runner, site) -> None:  # type: ignore[no-untyped-def]
    line = break_file(site / "procedures" / "renovation.yaml")
    start_complaint(runner)
    assert sop(runner, "advance", "1", "investigate", "--as", "chen_jing").exit_code == 0
    assert sop(runner, "graph", "complaint").exit_code == 0
    r = sop(runner, "start", "renovation", "--as", "liu_fang", "--data", "{}")
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: procedure renovation is disabled: ")
    assert f"renovation.yaml:{line}:" in lines[0] and "YAML syntax" in lines[0]
    assert instance_exists(runner, 1) and not instance_exists(runner, 2)  # nothing written
    assert sop(runner, "graph", "renovation").exit_code == 1


def test_lint_still_reports_every_problem_of_every_file(runner, site) -> None:  # type: ignore[no-untyped-def]
    break_file(site / "procedures" / "renovation.yaml")
    break_file(site / "forms" / "callback_record.yaml")
    r = sop(runner, "lint")
    assert r.exit_code == 1
    assert "renovation.yaml" in r.stdout and "callback_record.yaml" in r.stdout


def test_a_broken_form_disables_the_procedures_that_use_it(runner, site) -> None:  # type: ignore[no-untyped-def]
    break_file(site / "forms" / "complaint_intake.yaml")
    r = sop(runner, "start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT, ensure_ascii=False))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: procedure complaint is disabled: ")
    assert "forms/complaint_intake.yaml:" in r.stderr and "YAML syntax" in r.stderr
    r = sop(runner, "start", "repair", "--as", "liu_fang", "--data", "{}")
    assert "disabled" not in r.stderr  # repair does not use the form: refused, if at all, for its data


def test_an_instance_of_a_disabled_procedure_is_refused_commands_but_stays_readable(runner, site) -> None:  # type: ignore[no-untyped-def]
    start_complaint(runner)
    before = sop(runner, "--json", "show", "1").stdout
    break_file(site / "procedures" / "complaint.yaml")
    r = sop(runner, "advance", "1", "investigate", "--as", "chen_jing")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: procedure complaint is disabled (instance 1): ")
    assert "complaint.yaml:" in r.stderr
    shown = sop(runner, "--json", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["revision"] == json.loads(before)["revision"]  # nothing written
    assert json.loads(shown.stdout)["actions"] == []  # none can be taken now
    assert sop(runner, "replay", "1").exit_code == 0  # from the stored version snapshot
    assert sop(runner, "history", "1").exit_code == 0


def test_spawning_a_disabled_procedure_refuses_the_spawning_action_naming_the_child(runner, site) -> None:  # type: ignore[no-untyped-def]
    start_complaint(runner)
    assert sop(runner, "advance", "1", "reply", "--as", "chen_jing", "--data",
               json.dumps({"reply_method": "phone", "reply_summary": "已安排维修"}, ensure_ascii=False)).exit_code == 0
    break_file(site / "procedures" / "callback.yaml")
    r = sop(runner, "advance", "1", "resolve", "--as", "chen_jing", "--data",
            json.dumps({"handling_result": "已修复"}, ensure_ascii=False))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: procedure callback is disabled (spawned by complaint instance 1): ")
    shown = json.loads(sop(runner, "--json", "show", "1").stdout)
    assert shown["state"] == "replied" and shown["children"] == []


def test_the_sweep_skips_instances_of_a_disabled_procedure_and_their_steps_stay_due(site, db_url) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(datetime.fromisoformat("2025-09-30T09:00:00+08:00"))
    settings = Settings(db_url, site / "procedures", ROOT / "org" / "demo.yaml")
    engine = build_engine(settings, clock)
    complaint = engine.start("complaint", "liu_fang", COMPLAINT)
    engine.close()
    break_file(site / "procedures" / "complaint.yaml")
    engine = build_engine(settings, clock)
    assert "complaint" in engine.library.disabled
    with pytest.raises(ProcedureDisabled):
        engine.start("complaint", "liu_fang", COMPLAINT)
    later = clock.now() + timedelta(days=30)
    assert engine.tick(later) == []  # the pass does not fail
    assert engine.deadlines(complaint.id)[0]["status"] == "open"  # still due
    engine.close()
    (site / "procedures" / "complaint.yaml").write_text(
        (ROOT / "procedures" / "complaint.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    engine = build_engine(settings, clock)
    assert engine.tick(later)  # fixed: what was due fires
    assert engine.deadlines(complaint.id)[0]["status"] == "breached"
    engine.close()


def test_the_library_names_each_disabled_procedure_for_serve_and_worker(site, db_url) -> None:  # type: ignore[no-untyped-def]
    break_file(site / "procedures" / "renovation.yaml")
    library, _ = Settings(db_url, site / "procedures", ROOT / "org" / "demo.yaml").load()
    lines = library.disabled_lines()
    assert len(lines) == 1 and lines[0].startswith("procedure renovation is disabled: ")
    assert "complaint" in library.procedures


def test_the_api_refuses_a_disabled_procedure_with_409_and_serves_the_others(site, db_url) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from engine.api import create_app
    from engine.api.server import BackgroundServer
    from tests.api_support import issue_tokens

    break_file(site / "procedures" / "renovation.yaml")
    engine = build_engine(Settings(db_url, site / "procedures", ROOT / "org" / "demo.yaml"),
                          FakeClock(datetime.fromisoformat("2025-09-30T09:00:00+08:00")))
    token = issue_tokens(engine, ("liu_fang",))["liu_fang"]
    with BackgroundServer(create_app(engine, max_body_bytes=64 * 1024)) as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        r = client.post("/v1/instances", json={"procedure": "renovation", "data": {}})
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "procedure_disabled"
        assert r.json()["message"].startswith("procedure renovation is disabled: ") and "renovation.yaml:" in r.json()["message"]
        r = client.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT})
        assert r.status_code == 201, r.text
        assert client.get("/v1/procedures/renovation").status_code == 409
        listed = {p["id"] for p in client.get("/v1/procedures").json()}
        assert "complaint" in listed and "renovation" not in listed
    engine.close()


def test_the_worker_starts_names_the_disabled_procedure_and_sweeps_the_rest(runner, site, db_url) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    start_complaint(runner)  # an instance with an open deadline, and the database
    break_file(site / "procedures" / "complaint.yaml")
    env = {**os.environ, "SOP_DB": db_url, "SOP_PROCEDURES": str(site / "procedures")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--interval", "3600"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("worker: procedure complaint is disabled: ")
        assert proc.stdout.readline().startswith("worker: sweeping every 3600s")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_serve_starts_and_names_the_disabled_procedure(runner, site, db_url) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    import queue
    import threading

    import httpx

    assert sop(runner, "db", "upgrade").exit_code == 0
    break_file(site / "procedures" / "renovation.yaml")
    env = {**os.environ, "SOP_DB": db_url, "SOP_PROCEDURES": str(site / "procedures")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", "0", "--no-outbox"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [err.put(line) for line in iter(proc.stderr.readline, "")],  # type: ignore[union-attr]
                         daemon=True).start()
        seen: list[str] = []
        while not any(line.startswith("sop serve: http") for line in seen):  # each line within 60 s
            seen.append(err.get(timeout=60))
        url = seen[-1].split()[2].removesuffix("/docs")
        assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 200  # serving (and its handlers set)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    disabled = [line for line in seen if "is disabled" in line]
    assert len(disabled) == 1 and disabled[0].startswith("sop serve: procedure renovation is disabled: ")


@pytest.fixture
def settings(db_url: str, site: Path) -> Settings:
    """For the `engine` and `web` fixtures: the copy of the site with renovation broken."""
    break_file(site / "procedures" / "renovation.yaml")
    return Settings(db_url, site / "procedures", ROOT / "org" / "demo.yaml")


def test_the_web_app_says_a_disabled_procedure_is_suspended_and_starts_the_others(web) -> None:  # type: ignore[no-untyped-def]
    c = web.login("liu_fang")
    r = c.get("/start/renovation")
    assert r.status_code == 409
    assert "暂停使用" in r.text and "renovation.yaml:" in r.text
    assert c.get("/start/complaint").status_code == 200
