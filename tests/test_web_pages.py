"""The staff web app over HTTP (no browser): login, sessions and CSRF, the inbox, forms with
Chinese errors, evidence uploads, stale pages, verification, the dashboard and its exports.

The browser tests (``test_web_browser``) drive the same pages in Chromium; these check what
a browser does not show: cookie flags, status codes, what was (not) written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from cli import main
from engine.store import passwords
from engine.web import fields, views
from engine.web.charts import breaches_by_building, compliance_by_month
from tests.web_support import Web, csrf_of, web  # noqa: F401  (fixture)

REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}


def errors_on(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="error-([a-z_0-9]+)" role="alert">([^<]*)<', html))


def test_pages_need_a_login_and_send_you_back_after_it(web: Web) -> None:
    c = web.client()
    r = c.get("/instances/1?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/instances/1%3Fx%3D1"
    for path in ("/", "/start", "/dashboard", "/dashboard.xlsx", "/inbox/rows"):
        assert c.get(path).status_code == 303, path
    page = c.get("/login?next=/start")
    r = c.post("/login", data={"csrf": csrf_of(page.text), "staff": "liu_fang", "secret": web.tokens["liu_fang"],
                               "next": "/start"})
    assert r.status_code == 303 and r.headers["location"] == "/start"
    assert "投诉处理" in c.get("/start").text


def test_the_session_cookie_is_signed_httponly_and_samesite_lax(web: Web) -> None:
    c = web.client()
    page = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(page.text), "staff": "chen_jing", "secret": web.tokens["chen_jing"]})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("sop_session=") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert web.tokens["chen_jing"] not in cookie  # the token is not kept in the cookie
    c.cookies.set("sop_session", c.cookies["sop_session"][:-3] + "AAA")  # tampered: no session
    assert c.get("/").status_code == 303


def test_a_wrong_token_or_password_or_someone_elses_token_is_refused_in_chinese(web: Web) -> None:
    c = web.client()
    for staff, secret in (("chen_jing", "sop_wrong"), ("chen_jing", web.tokens["liu_fang"]),
                          ("nobody", "whatever1"), ("chen_jing", "no-password-set")):
        r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "staff": staff, "secret": secret})
        assert r.status_code == 401 and "不正确" in r.text, (staff, secret)


def test_a_password_set_with_sop_staff_password_logs_in_and_only_its_hash_is_stored(web: Web, runner: Any) -> None:
    r = runner.invoke(main, ["staff", "password", "chen_jing"], input="门岗密码2025\n")
    assert r.exit_code == 0, r.output
    with web.engine.read() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM staff_passwords WHERE staff_id='chen_jing'").scalar()
    assert stored.startswith("scrypt$") and "门岗密码2025" not in stored
    assert passwords.matches("门岗密码2025", stored) and not passwords.matches("门岗密码2024", stored)
    c = web.login("chen_jing", "门岗密码2025")
    assert "陈静" in c.get("/").text
    assert runner.invoke(main, ["staff", "password", "chen_jing"], input="short\n").exit_code == 1


def test_a_post_without_the_session_csrf_token_writes_nothing(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    before = len(web.engine.history(inst.id))
    r = c.post(f"/instances/{inst.id}/act/reply", data={**REPLY, "revision": str(inst.revision), "csrf": "forged"})
    assert r.status_code == 403 and "过期" in r.text
    r = c.post(f"/instances/{inst.id}/act/reply", data={**REPLY, "revision": str(inst.revision)})
    assert r.status_code == 403
    assert len(web.engine.history(inst.id)) == before
    fresh = web.client()  # login itself needs the token of the login page's session
    assert fresh.post("/login", data={"staff": "chen_jing", "secret": web.tokens["chen_jing"]}).status_code == 403


def test_the_inbox_lists_my_tasks_and_my_roles_queue_sorted_by_due_time(web: Web) -> None:
    early = web.start_complaint()                                   # due 18:00 today (1 workday)
    web.engine.clock.advance(timedelta(hours=1))
    letter = web.start_complaint(channel="letter")                  # due in 3 workdays
    web.engine.clock.advance(timedelta(minutes=5))
    later = web.start_complaint(unit="3-0801")                      # due 18:05 (+1h05 of work)
    anonymous = web.start_complaint(anonymous=True, unit=None, owner_name=None, contact=None)  # supervisors' queue
    html = web.login("chen_jing").get("/").text
    mine = re.findall(r'id="task-(\d+)"', html.split("角色队列")[0])
    assert mine == [str(early.id), str(later.id), str(letter.id)]
    assert f'id="task-{anonymous.id}"' not in html
    supervisor = web.login("li_qiang").get("/").text
    queue = supervisor.split("角色队列")[1]
    assert f'id="task-{anonymous.id}"' in queue and f'id="claim-{anonymous.id}"' in queue
    other = web.login("chen_jing").get("/", params={"building": "4"}).text
    assert "task-" not in other.split("角色队列")[0]


def test_a_rows_deadline_is_coloured_by_its_sla_state_and_provisional_wins() -> None:
    row = views.Row(None, "投诉处理", "已登记", "3-1201", "", "陈静",  # type: ignore[arg-type]
                    {"name": "reply", "status": "warned", "due": "2025-09-30T18:00:00+08:00"})
    assert row.sla_class == "warned"
    row.deadline = {**row.deadline, "provisional": True}  # type: ignore[dict-item]
    assert row.sla_class == "provisional"
    row.deadline = None
    assert row.sla_class == "none"


def test_a_deadline_marked_provisional_is_shown_as_provisional(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = web.start_complaint()
    real = views.deadline_views
    monkeypatch.setattr(views, "deadline_views", lambda i, cal: [{**d, "provisional": True} for d in real(i, cal)])
    html = web.login("chen_jing").get("/").text
    assert f'class="task sla-provisional" id="task-{inst.id}"' in html
    assert '<span class="sla provisional"' in html


def test_a_message_waits_for_the_next_whole_page_not_the_inbox_refresh(web: Web) -> None:
    inst = web.start_complaint(anonymous=True, unit=None, owner_name=None, contact=None)
    c = web.login("li_qiang")
    r = c.post(f"/instances/{inst.id}/claim", data={"csrf": csrf_of(c.get("/").text), "revision": str(inst.revision)})
    assert r.status_code == 303
    assert 'id="flash"' not in c.get("/inbox/rows").text
    assert f"已认领 #{inst.id}。" in c.get(r.headers["location"]).text


def test_the_inbox_shows_warned_and_breached_rows_as_such(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    assert f'class="task sla-open" id="task-{inst.id}"' in c.get("/").text
    web.engine.clock.advance(timedelta(hours=6))
    web.engine.tick(web.engine.clock.now())
    assert f'class="task sla-warned" id="task-{inst.id}"' in c.get("/inbox/rows").text
    web.engine.clock.advance(timedelta(hours=4))
    web.engine.tick(web.engine.clock.now())
    assert f'class="task sla-breached" id="task-{inst.id}"' in c.get("/inbox/rows").text


def test_a_bad_form_is_shown_again_with_chinese_errors_beside_the_fields_and_nothing_written(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    page = c.get(f"/instances/{inst.id}/act/reply")
    assert 'name="reply_method"' in page.text and 'value="open_letter"' in page.text and "公开信" in page.text
    before = len(web.engine.history(inst.id))
    r = c.post(f"/instances/{inst.id}/act/reply", data={"csrf": csrf_of(page.text), "revision": str(inst.revision),
                                                       "reply_method": "open_letter", "reply_summary": "  "})
    assert r.status_code == 422
    assert errors_on(r.text) == {"reply_summary": "必填"}  # types first; required_if is checked after them
    assert 'value="open_letter" selected' in r.text  # what was chosen stays chosen
    assert len(web.engine.history(inst.id)) == before
    r = c.post(f"/instances/{inst.id}/act/reply", data={"csrf": csrf_of(page.text), "revision": str(inst.revision),
                                                       **REPLY}, follow_redirects=True)
    assert r.status_code == 200 and "已提交：答复业主" in r.text
    assert web.engine.show(inst.id).data["reply_summary"] == REPLY["reply_summary"]


def test_a_stale_page_cannot_overwrite_and_says_so_in_chinese(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    page = c.get(f"/instances/{inst.id}/act/reply")
    assert f'name="revision" id="revision" value="{inst.revision}"' in page.text
    web.engine.record(inst.id, "li_qiang", {"priority": "high"})  # someone else changes it meanwhile
    before = len(web.engine.history(inst.id))
    r = c.post(f"/instances/{inst.id}/act/reply", data={"csrf": csrf_of(page.text), "revision": str(inst.revision),
                                                       **REPLY})
    assert r.status_code == 409 and "已被他人更新" in r.text and "未保存任何内容" in r.text
    assert len(web.engine.history(inst.id)) == before and "reply_summary" not in web.engine.show(inst.id).data


def test_an_uploaded_signature_is_stored_by_its_sha256_and_the_event_names_it(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    page = c.get(f"/instances/{inst.id}/act/reply")
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    digest = hashlib.sha256(content).hexdigest()
    r = c.post(f"/instances/{inst.id}/act/reply",
               data={"csrf": csrf_of(page.text), "revision": str(inst.revision), "reply_method": "open_letter",
                     "reply_summary": "已张贴公开信"},
               files={"open_letter_ref.file": ("公开信.png", content, "image/png")})
    assert r.status_code == 303, r.text
    event = [e for e in web.engine.history(inst.id) if e.type == "ActionTaken"][-1]
    assert f'"sha256":"{digest}"' in event.data_json and '"size":%d' % len(content) in event.data_json
    assert web.engine.show(inst.id).data["open_letter_ref"] == {"filename": "公开信.png", "sha256": digest,
                                                               "size": len(content), "content_type": "image/png"}
    assert (web.files / digest[:2] / digest).read_bytes() == content
    shown = c.get(f"/instances/{inst.id}").text
    assert f"/files/{digest}" in shown
    got = c.get(f"/files/{digest}", params={"name": "公开信.png"})
    assert got.status_code == 200 and got.content == content and got.headers["content-type"] == "image/png"
    assert web.client().get(f"/files/{digest}").status_code == 303  # not without a login
    assert web.engine.replay(inst.id).ok


def test_an_upload_kept_when_another_field_is_wrong_is_not_asked_for_again(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    page = c.get(f"/instances/{inst.id}/act/reply")
    r = c.post(f"/instances/{inst.id}/act/reply",
               data={"csrf": csrf_of(page.text), "revision": str(inst.revision), "reply_method": "open_letter"},
               files={"open_letter_ref.file": ("letter.pdf", b"%PDF-1.4 x", "application/pdf")})
    assert r.status_code == 422 and "已上传：letter.pdf" in r.text and "open_letter_ref" not in errors_on(r.text)
    kept = re.search(r'name="open_letter_ref.stored" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    import html as h
    r = c.post(f"/instances/{inst.id}/act/reply",
               data={"csrf": csrf_of(page.text), "revision": str(inst.revision), "reply_method": "open_letter",
                     "reply_summary": "见公开信", "open_letter_ref.stored": h.unescape(kept)})
    assert r.status_code == 303, r.text
    assert web.engine.show(inst.id).data["open_letter_ref"]["filename"] == "letter.pdf"


def test_a_front_desk_starts_a_complaint_from_the_start_page(web: Web) -> None:
    c = web.login("liu_fang")
    tiles = re.findall(r'id="start-([a-z_]+)"', c.get("/start").text)
    assert tiles[:3] == ["complaint", "repair", "phone_call"]
    page = c.get("/start/complaint")
    r = c.post("/start/complaint", data={"csrf": csrf_of(page.text), "anonymous": "false", "unit": "3-1201",
                                         "owner_name": "王先生", "contact": "12345", "channel": "phone",
                                         "content": "楼上漏水"})
    assert r.status_code == 422 and errors_on(r.text) == {"contact": "格式不正确"}
    r = c.post("/start/complaint", data={"csrf": csrf_of(page.text), "anonymous": "false", "unit": "3-1201",
                                         "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
                                         "content": "楼上漏水"})
    assert r.status_code == 303
    inst = web.engine.show(int(r.headers["location"].rsplit("/", 1)[1]))
    assert inst.procedure == "complaint" and inst.assignee == "chen_jing"
    assert web.engine.history(inst.id)[0].actor == "liu_fang"


def test_a_role_that_may_not_start_is_refused_in_chinese(web: Web) -> None:
    c = web.login("wu_gang")  # engineering
    page = c.get("/start/complaint")
    r = c.post("/start/complaint", data={"csrf": csrf_of(page.text), "anonymous": "true", "channel": "phone",
                                         "content": "x"})
    assert r.status_code == 403 and "您的角色无权执行此操作（可执行的角色：" in r.text and "未保存任何内容。" in r.text


def test_claiming_from_the_queue_assigns_it_to_me(web: Web) -> None:
    inst = web.start_complaint(anonymous=True, unit=None, owner_name=None, contact=None)
    c = web.login("li_qiang")
    r = c.post(f"/instances/{inst.id}/claim", data={"csrf": csrf_of(c.get("/").text), "revision": str(inst.revision)})
    assert r.status_code == 303 and web.engine.show(inst.id).assignee == "li_qiang"
    again = c.post(f"/instances/{inst.id}/claim", data={"csrf": csrf_of(c.get("/").text),
                                                         "revision": str(inst.revision)}, follow_redirects=True)
    assert "未成功" in again.text


def test_the_instance_page_shows_data_diagram_timeline_clocks_and_links(web: Web) -> None:
    inst = web.start_complaint()
    web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    c = web.login("chen_jing")
    html = c.get(f"/instances/{inst.id}").text
    assert "楼上漏水" in html and "已答复" in html or "答复" in html
    assert 'id="timeline"' in html and "答复业主" in html and "陈静" in html and "刘芳" in html
    assert 'id="clock-reply"' in html and "已达标" in html
    assert ('<svg class="diagram"' in html and 'id="state_received"' in html) or 'class="state-list"' in html
    assert 'id="verify"' not in html  # a steward is no auditor


def test_auditors_verify_the_hash_chain_and_replay_others_may_not(web: Web) -> None:
    inst = web.start_complaint()
    web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    assert web.login("chen_jing").get(f"/instances/{inst.id}/verify").status_code == 403
    c = web.login("li_qiang")
    assert 'id="verify"' in c.get(f"/instances/{inst.id}").text
    html = c.get(f"/instances/{inst.id}/verify").text
    assert "哈希链完整" in html and "重放一致" in html
    assert html.count("<td>✓</td>") == 2 * len(web.engine.history(inst.id))


def test_the_dashboard_counts_met_breached_open_and_draws_its_charts(web: Web) -> None:
    met = web.start_complaint()
    web.engine.advance(met.id, "reply", "chen_jing", REPLY)
    late = web.start_complaint(unit="5-101")
    web.start_complaint(unit="3-0101", channel="letter")
    web.engine.clock.advance(timedelta(hours=10))
    web.engine.tick(web.engine.clock.now())
    assert web.login("chen_jing").get("/dashboard").status_code == 403
    html = web.login("li_qiang").get("/dashboard").text
    row = re.search(r'id="by-procedure".*?<tbody><tr><td>投诉处理</td><td>答复时限</td><td>(\d+)</td><td>(\d+)</td>'
                    r'<td>(\d+)</td><td>([^<]+)</td>', html, re.S)
    assert row and row.groups() == ("1", "1", "1", "50%")
    assert 'class="chart compliance-chart"' in html and 'data-month="2025-09"' in html
    assert 'class="chart breach-chart"' in html and 'data-building="5"' in html and late.id
    assert 'id="quality"' in html and "QA-4" in html and "QA-5" in html


def test_the_dashboard_exports_to_excel_and_csv(web: Web) -> None:
    inst = web.start_complaint()
    web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    c = web.login("li_qiang")
    x = c.get("/dashboard.xlsx", params={"from": "2025-09-01", "to": "2025-09-30"})
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(x.content))
    assert book.sheetnames == ["按流程", "按人员", "按月", "按月按流程", "按楼栋", "质量目标"]
    assert [c.value for c in book["按流程"][2]] == ["投诉处理", "答复时限", 1, 0, 0, 100]
    assert book["质量目标"]["A2"].value == "2025-09"
    outside = load_workbook(io.BytesIO(c.get("/dashboard.xlsx", params={"from": "2025-10-01"}).content))
    assert outside["按流程"].max_row == 1
    text = c.get("/dashboard.csv").content.decode("utf-8")
    assert text.startswith("\ufeff按流程")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1] == ["流程", "时限", "达标", "超时", "进行中", "达标率%"] and rows[2][:3] == ["投诉处理", "答复时限", "1"]


def test_chinese_messages_for_the_engines_field_errors() -> None:
    assert fields.zh("required") == "必填"
    assert fields.zh("Input should be greater than or equal to 0.01") == "不能小于 0.01"
    assert fields.zh("Decimal input should have no more than 2 decimal places") == "金额格式不正确（数字，最多两位小数）"
    assert fields.zh("Input should be a valid date or datetime, input is too short") == "日期格式不正确"
    assert fields.zh("something new") == "无效（something new）"


def test_charts_escape_their_labels_and_say_when_there_is_nothing() -> None:
    assert "暂无数据" in compliance_by_month([])
    svg = compliance_by_month([("2025-09", 50.0), ("<b>", None)], 98)
    assert "&lt;b&gt;" in svg and "<b>" not in svg and "目标 98%" in svg
    assert 'data-building="3"' in breaches_by_building([("3", 2)])


@pytest.mark.parametrize("value,ok", [
    ("scan:0930-01", True),
    ({"filename": "a.jpg", "sha256": "a" * 64, "size": 1, "content_type": "image/jpeg"}, True),
    ({"filename": "a.jpg", "sha256": "A" * 64, "size": 1}, False),
    ({"filename": "", "sha256": "a" * 64, "size": 1}, False),
    ({"filename": "a.jpg", "sha256": "a" * 64, "size": -1}, False),
    ({"filename": "a.jpg", "sha256": "a" * 64, "size": 1, "path": "/etc/passwd"}, False),
    ("two words", False),
])
def test_an_attachment_is_a_reference_or_an_uploaded_files_evidence(value: Any, ok: bool) -> None:
    from engine.errors import FormInvalid
    from engine.spec.forms import FieldSpec, FormSpec

    form = FormSpec(id="f", title="t", fields={"photo": FieldSpec(type="attachment", label="照片")})
    if ok:
        assert form.validate_data({"photo": value}) == {"photo": value if isinstance(value, str)
                                                        else {"content_type": "application/octet-stream", **value}}
    else:
        with pytest.raises(FormInvalid) as e:
            form.validate_data({"photo": value})
        assert [(fe.field, fe.reason) for fe in e.value.errors] == [("photo", "not a file reference or an uploaded file")]


def test_what_staff_typed_is_escaped_on_every_page(web: Web) -> None:
    inst = web.start_complaint(content="<script>alert('x')</script>", owner_name="<b>王</b>")
    c = web.login("li_qiang")
    for path in ("/", f"/instances/{inst.id}", f"/instances/{inst.id}/verify"):
        html = c.get(path).text
        assert "<script>alert" not in html and "<b>王</b>" not in html, path
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in c.get(f"/instances/{inst.id}").text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_the_login_only_sends_you_on_to_a_page_of_this_site(web: Web, target: str) -> None:
    c = web.client()
    r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "staff": "chen_jing",
                               "secret": web.tokens["chen_jing"], "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_photo_larger_than_the_apis_body_limit_uploads_while_the_api_keeps_its_limit(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("chen_jing")
    page = c.get(f"/instances/{inst.id}/act/reply")
    photo = bytes(range(256)) * 1024  # 256 KiB; the API of this fixture takes 64 KiB
    r = c.post(f"/instances/{inst.id}/act/reply",
               data={"csrf": csrf_of(page.text), "revision": str(inst.revision), "reply_method": "open_letter",
                     "reply_summary": "见公开信照片"},
               files={"open_letter_ref.file": ("现场.jpg", photo, "image/jpeg")})
    assert r.status_code == 303, r.text
    api = web.client().post("/v1/instances", json={"procedure": "complaint", "data": {"content": "x" * 70000}},
                            headers={"Authorization": f"Bearer {web.tokens['liu_fang']}"})
    assert api.status_code == 413


def test_sop_staff_password_remove_ends_password_logins(web: Web, runner: Any) -> None:
    assert runner.invoke(main, ["staff", "password", "wang_li"], input="楼栋管家密码2025\n").exit_code == 0
    web.login("wang_li", "楼栋管家密码2025")
    r = runner.invoke(main, ["staff", "password", "wang_li", "--remove"])
    assert r.exit_code == 0 and "removed" in r.output
    c = web.client()
    r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "staff": "wang_li", "secret": "楼栋管家密码2025"})
    assert r.status_code == 401


def test_every_form_of_the_library_renders_an_input_for_each_of_its_fields(engine: Any) -> None:
    from engine.web.routes import TEMPLATES

    template = TEMPLATES.env.get_template("form.html")
    forms = {f.id: f for p in engine.library.procedures.values() for f in p.forms.values()}
    assert len(forms) > 80
    for form in forms.values():
        html = template.render(title=form.title, heading=form.title, form=form, widgets=fields.widgets(form),
                               action_url="/x", back="/", other_errors=[], revision=1, problem=None, inst=None,
                               me=None, csrf="t", site="山水庭苑", flash=None, auditor=False, now_iso="",
                               role_name=str)
        for name, spec in form.fields.items():
            expected = {"checklist": f'name="{name}.', "attachment": f'name="{name}.file"',
                        "signature": f'name="{name}.file"'}.get(spec.type, f'name="{name}"')
            assert expected in html, (form.id, name, spec.type)
            assert spec.label in html, (form.id, name)


def test_a_supervisor_assigns_a_task_from_the_instance_page_and_a_steward_cannot(web: Web) -> None:
    inst = web.start_complaint()
    assert 'id="assign-form"' not in web.login("chen_jing").get(f"/instances/{inst.id}").text
    c = web.login("li_qiang")
    page = c.get(f"/instances/{inst.id}").text
    assert 'id="assign-form"' in page and '<option value="wang_li"' in page
    r = c.post(f"/instances/{inst.id}/assign", data={"csrf": csrf_of(page), "revision": str(inst.revision),
                                                      "assignee": "wang_li"}, follow_redirects=True)
    assert "已指派给 王丽" in r.text and web.engine.show(inst.id).assignee == "wang_li"
    steward = web.login("chen_jing")
    r = steward.post(f"/instances/{inst.id}/assign", data={"csrf": csrf_of(steward.get("/").text),
                                                            "revision": str(web.engine.show(inst.id).revision),
                                                            "assignee": "chen_jing"}, follow_redirects=True)
    assert "指派未成功" in r.text and web.engine.show(inst.id).assignee == "wang_li"


def test_verification_shows_which_event_was_altered(web: Web, db_url: str) -> None:
    import sqlite3

    inst = web.start_complaint()
    web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    web.engine.close()  # the page reads the database as it is now, not a cached row
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        con.execute("UPDATE events SET data = replace(data, '楼上漏水', '楼下漏水') WHERE instance_id = ? AND seq = 1",
                    (inst.id,))
    html = web.login("li_qiang").get(f"/instances/{inst.id}/verify").text
    assert "哈希链断裂：第 1 个事件" in html
    assert re.search(r'<tr class="bad">\s*<td>1</td>', html) and html.count('<tr class="bad">') == 1


def test_without_graphviz_the_instance_page_lists_the_states_instead(web: Web,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.web import diagram

    inst = web.start_complaint()
    monkeypatch.setattr(diagram.shutil, "which", lambda name: None)
    html = web.login("chen_jing").get(f"/instances/{inst.id}").text
    assert '<svg class="diagram"' not in html and "未安装 Graphviz" in html
    assert '<li class="current">已受理</li>' in html


def test_with_graphviz_the_diagram_highlights_the_current_state() -> None:
    from engine.spec.library import load_checked
    from engine.spec.org import load_org
    from engine.web import diagram
    from tests.conftest import ROOT

    from tests.test_web_browser import ensure_browser

    ensure_browser()  # installs Graphviz with the browser when missing (root, Debian); never skips in CI
    assert diagram.available()
    library = load_checked(ROOT / "procedures", load_org(ROOT / "org" / "demo.yaml").roles)
    svg = diagram.svg(library.get("complaint").spec, "investigating")
    node = re.search(r'<g id="state_investigating" class="node">.*?</g>', svg or "", re.S)
    assert node and 'fill="#1565c0"' in node.group(0)
    assert 'fill="#1565c0"' not in re.search(r'<g id="state_received" class="node">.*?</g>', svg, re.S).group(0)  # type: ignore[union-attr,arg-type]


def test_a_clock_marked_provisional_in_the_instance_itself_is_shown_as_provisional(web: Web) -> None:
    inst = web.start_complaint()
    clocks = {name: c.with_(provisional=(2027,)) for name, c in inst.clocks.items()}
    marked = inst.with_(clocks=clocks)
    row = views._rows(web.engine, [marked])[0]
    assert row.sla_class == "provisional"
    shown = views.clocks(web.engine, views.procedure_of(web.engine, marked), marked, [])
    assert [c.status_class for c in shown] == ["provisional"] and shown[0].status.endswith("（暂定）")


def test_posted_form_fields_become_the_values_the_engine_validates(tmp_path: Any) -> None:
    from starlette.datastructures import FormData

    from engine.spec.forms import FieldSpec, FormSpec
    from engine.web.evidence import EvidenceStore

    form = FormSpec(id="f", title="t", fields={
        "amount": FieldSpec(type="money", label="金额（元）", min=0),
        "visit_at": FieldSpec(type="datetime", label="上门时间"),
        "on": FieldSpec(type="date", label="日期"),
        "count": FieldSpec(type="integer", label="件数", required=False),
        "urgent": FieldSpec(type="bool", label="紧急", required=False),
        "check": FieldSpec(type="checklist", label="检查", items={"lock": "门锁", "alarm": "报警器"}),
        "note": FieldSpec(type="text", label="备注", required=False),
    })
    posted = FormData([("amount", "¥1,280.50"), ("visit_at", "2025-10-09T14:30"), ("on", "2025-10-09"),
                       ("count", ""), ("urgent", "false"), ("check.lock.result", "pass"),
                       ("check.alarm.result", "fail"), ("check.alarm.note", "电池没电"), ("note", "  ")])
    data, shown, stored = fields.parse(form, posted, views.ZoneInfo("Asia/Shanghai"), EvidenceStore(tmp_path))
    assert data == {"amount": "1280.50", "visit_at": "2025-10-09T14:30:00+08:00", "on": "2025-10-09",
                    "urgent": False, "check": {"lock": {"result": "pass"},
                                               "alarm": {"result": "fail", "note": "电池没电"}}}
    assert stored == {} and shown["amount"] == "¥1,280.50"
    assert form.validate_data(data) == {"amount": "1280.50", "visit_at": "2025-10-09T14:30:00+08:00",
                                        "on": "2025-10-09", "urgent": False,
                                        "check": {"lock": {"result": "pass", "note": ""},
                                                  "alarm": {"result": "fail", "note": "电池没电"}}}


def test_revoking_the_token_a_session_was_opened_with_ends_that_session_at_its_next_click(web: Web, runner: Any) -> None:
    c = web.login("chen_jing")
    assert c.get("/").status_code == 200
    assert runner.invoke(main, ["staff", "token", "revoke", "chen_jing"]).exit_code == 0
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    again = web.client()  # nor can the revoked token open a new one
    r = again.post("/login", data={"csrf": csrf_of(again.get("/login").text), "staff": "chen_jing",
                                   "secret": web.tokens["chen_jing"], "next": "/"})
    assert r.status_code == 401


def test_a_new_password_ends_the_sessions_opened_with_the_old_one_and_not_token_sessions(web: Web, runner: Any) -> None:
    assert runner.invoke(main, ["staff", "password", "wang_li"], input="楼栋管家密码2025\n").exit_code == 0
    by_password, by_token = web.login("wang_li", "楼栋管家密码2025"), web.login("wang_li")
    assert by_password.get("/").status_code == 200
    assert runner.invoke(main, ["staff", "password", "wang_li"], input="楼栋管家密码2026\n").exit_code == 0
    r = by_password.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert by_token.get("/").status_code == 200
    assert web.login("wang_li", "楼栋管家密码2026").get("/").status_code == 200


def test_a_session_cookie_that_names_no_credential_is_not_trusted(web: Web) -> None:
    """A cookie signed by this server but holding only a staff id (as sessions did before
    they named their credential) is sent to the login page, not let in."""
    import base64
    import json as json_

    from itsdangerous import TimestampSigner

    from engine.store import tokens

    def cookie(session: dict[str, Any]) -> httpx.Client:
        c = web.client()
        payload = base64.b64encode(json_.dumps(session).encode("utf-8"))
        c.cookies.set("sop_session", TimestampSigner("test-secret").sign(payload).decode("utf-8"))
        return c

    with web.engine.read() as conn:
        token_id = next(t.id for t in tokens.listing(conn, "chen_jing") if t.revoked_at is None)
    assert cookie({"staff": "chen_jing", "via": "token", "ref": token_id, "csrf": "x"}).get("/").status_code == 200
    r = cookie({"staff": "chen_jing", "csrf": "x"}).get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_five_failed_logins_rest_that_staff_id_for_a_while_and_the_wait_ends(web: Web, clock: Any, runner: Any) -> None:
    assert runner.invoke(main, ["staff", "password", "wang_li"], input="楼栋管家密码2025\n").exit_code == 0
    c = web.client()

    def attempt(staff: str, secret: str) -> httpx.Response:
        return c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "staff": staff, "secret": secret,
                                      "next": "/"})
    for _ in range(5):
        assert attempt("wang_li", "wrong-guess").status_code == 401
        clock.advance(timedelta(minutes=1))
    r = attempt("wang_li", "楼栋管家密码2025")  # even the right password waits: nothing is checked
    assert r.status_code == 429 and "登录失败次数过多，请 10 分钟后再试。" in r.text
    assert attempt("chen_jing", web.tokens["chen_jing"]).status_code == 303  # others log in as before
    clock.advance(timedelta(minutes=10))  # the first failure is 15 minutes old
    assert attempt("wang_li", "楼栋管家密码2025").status_code == 303


def test_a_steward_corrects_a_cases_contact_from_its_page_and_only_what_was_filled_is_recorded(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login(inst.assignee)
    assert 'id="record"' in c.get(f"/instances/{inst.id}").text
    page = c.get(f"/instances/{inst.id}/record").text
    assert "补录资料" in page and "当前：13912345678" in page and "当前：王先生" in page
    assert "placeholder=" not in page.split('name="unit"')[1].split(">")[0]  # no example that reads as a value
    assert 'placeholder="3-1201"' in c.get("/start/complaint").text  # where nothing is filled yet, it helps
    assert 'name="contact"' in page and 'name="findings"' not in page and 'name="level"' not in page  # CMP-8
    r = c.post(f"/instances/{inst.id}/record", data={"csrf": csrf_of(page), "revision": str(inst.revision),
                                                     "contact": "13800001111", "owner_name": ""})
    assert r.status_code == 303 and r.headers["location"] == f"/instances/{inst.id}"
    after = web.engine.show(inst.id)
    assert (after.data["contact"], after.data["owner_name"]) == ("13800001111", "王先生")
    last = web.engine.history(inst.id)[-1]
    assert (last.type, last.actor) == ("DataRecorded", inst.assignee)
    assert '"changes":{"contact":"13800001111"}' in last.data_json
    assert "已补录：" in c.get(f"/instances/{inst.id}").text


def test_a_record_with_nothing_filled_or_from_a_stale_page_writes_nothing_and_says_so(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login(inst.assignee)
    page = c.get(f"/instances/{inst.id}/record").text
    r = c.post(f"/instances/{inst.id}/record", data={"csrf": csrf_of(page), "revision": str(inst.revision)})
    assert r.status_code == 422 and "请至少填写一项要补录或更正的内容。未保存任何内容。" in r.text
    web.engine.record(inst.id, inst.assignee, {"owner_name": "王女士"})  # someone else, meanwhile
    r = c.post(f"/instances/{inst.id}/record", data={"csrf": csrf_of(page), "revision": str(inst.revision),
                                                     "contact": "13800001111"})
    assert r.status_code == 409 and web.engine.show(inst.id).data["contact"] == "13912345678"


def test_someone_with_no_work_on_the_case_gets_no_record_button_and_a_refusal_in_chinese(web: Web) -> None:
    inst = web.start_complaint()
    c = web.login("wu_gang")  # engineering: no step of a new complaint is theirs
    assert 'id="record"' not in c.get(f"/instances/{inst.id}").text
    page = c.get(f"/instances/{inst.id}/record").text
    r = c.post(f"/instances/{inst.id}/record", data={"csrf": csrf_of(page), "revision": str(inst.revision),
                                                     "contact": "13800001111"})
    assert r.status_code == 403 and "您的角色无权执行此操作（可执行的角色：" in r.text and "未保存任何内容。" in r.text
    assert web.engine.show(inst.id).revision == inst.revision


def test_an_inbox_longer_than_a_page_says_how_many_it_holds_in_all(web: Web) -> None:
    for _ in range(203):
        inst = web.start_complaint()
    page = web.login(inst.assignee).get("/").text
    assert '<span class="count" id="count-mine">203</span>' in page and page.count('id="task-') == 200
    assert "共 203 条，此处显示 200 条（最早办理的在前）" in page and 'id="more-queue"' not in page
