"""The staff pages: login, inbox, start, instance, act, claim, verify, evidence files.

Each handler reads who is logged in (:func:`engine.web.session.viewer`), calls the same
``Engine`` method the JSON API calls for the same thing (``start``, ``advance``,
``claim``, ``show``, ``history``, ``replay``, ``verify_instance``) as that person, and
renders a template. A refusal of the engine becomes a Chinese message on the page; a
stale revision (the page's hidden ``revision``, sent as the engine's expected revision
exactly like the API's ``If-Match``) writes nothing and says so.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Callable, Optional

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from engine.api.auth import Caller
from engine.audit import link_checks
from engine.core.decide import check_scope, recordable_fields
from engine.errors import (ActionNotAllowed, ConcurrencyConflict, EngineError, FormInvalid, InstanceNotFound,
                           NotAuthorized, OutOfScope, ProcedureDisabled, StoreBusy)
from engine.spec.forms import FormSpec
from engine.web import diagram, fields, views
from engine.web.session import (authenticate, check_csrf, csrf_token, log_in, safe_next, viewer)

router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.globals.update(status_names=views.STATUS)
QUICK_START = ("complaint", "repair", "phone_call")
FORM_LIMITS = {"max_files": 20, "max_fields": 1000, "max_part_size": 1024 * 1024}


def engine_of(request: Request) -> Any:
    return request.app.state.engine


def is_auditor(who: Optional[Caller]) -> bool:
    return who is not None and who.audits


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = [kind, message]


def render(request: Request, name: str, ctx: dict[str, Any], who: Optional[Caller] = None,
           status: int = 200, fragment: bool = False) -> HTMLResponse:
    """A page (or, ``fragment``, a part of one fetched by the page's script: it leaves a
    pending message for the next whole page)."""
    engine = engine_of(request)
    shown = None if fragment else request.session.pop("flash", None)
    base = {"me": who, "csrf": csrf_token(request), "site": engine.org.site.name, "flash": shown,
            "auditor": is_auditor(who), "now_iso": engine.clock.now().isoformat(),
            "role_name": lambda r: views.role_name(engine, r)}
    response = TEMPLATES.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(engine: Any, e: EngineError) -> tuple[int, str]:
    """An engine refusal as (HTTP status, a sentence in Chinese)."""
    if isinstance(e, ConcurrencyConflict):
        now = f"，现在是第 {e.actual} 版" if e.actual is not None else ""
        return 409, (f"此单在您打开页面后已被他人更新（您看到的是第 {e.expected} 版{now}）。"
                     "本次提交未保存任何内容，请查看最新内容后重新填写。")
    if isinstance(e, OutOfScope):
        return 403, _out_of_scope(engine, e)
    if isinstance(e, NotAuthorized):
        allowed = "、".join(views.role_name(engine, r) for r in e.allowed_roles)
        return 403, f"您的角色无权执行此操作（可执行的角色：{allowed}）。未保存任何内容。"
    if isinstance(e, ActionNotAllowed):
        return 409, f"当前状态下不能执行此操作：{e.reason}。未保存任何内容。"
    if isinstance(e, InstanceNotFound):
        return 404, "没有这张单据。"
    if isinstance(e, ProcedureDisabled):
        return 409, (f"流程 {e.procedure} 的定义文件有误，暂停使用（{'；'.join(str(i) for i in e.issues)}）。"
                     "未保存任何内容，请联系管理员运行 sop lint 修正。")
    if isinstance(e, StoreBusy):
        return 503, "系统繁忙，本次未保存，请稍后重试。"
    return 422, f"无法执行：{e}。未保存任何内容。"


def _out_of_scope(engine: Any, e: OutOfScope, written: bool = True) -> str:
    """Why a steward may not touch this case, naming the building, in Chinese."""
    why = []
    if e.building is not None and e.building not in e.buildings:
        why.append(f"此单属于 {e.building} 栋，不在您负责的楼栋（{'、'.join(e.buildings)} 栋）内")
    if e.assignee is not None:
        why.append(f"此单已指派给{views.staff_name(engine, e.assignee)}")
    allowed = "、".join(views.role_name(engine, r) for r in e.allowed_roles)
    return f"{'；'.join(why)}。如需处理请由{allowed}指派。" + ("未保存任何内容。" if written else "")


def scope_refusal(engine: Any, who: Caller, inst: Any) -> Optional[str]:
    """Why the engine's building scope keeps ``who`` off ``inst`` (None: it does not), by
    the same check the engine makes, so the page offers only what would be accepted."""
    try:
        check_scope(engine.org, inst, engine.actor(who.staff_id), "work on it")
    except OutOfScope as e:
        return _out_of_scope(engine, e, written=False)
    return None


def _may_watch(engine: Any, who: Caller, inst: Any) -> bool:
    """Whether the watch button would be accepted (the engine's check, engine/core/watchers.py)."""
    from engine.core.watchers import check_may_watch

    try:
        check_may_watch(engine.org, inst, engine.actor(who.staff_id))
    except OutOfScope:
        return False
    return True


def message(request: Request, who: Optional[Caller], text: str, status: int, title: str = "提示") -> HTMLResponse:
    return render(request, "message.html", {"title": title, "text": text}, who, status)


# ---------------------------------------------------------------- login

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", {"next": safe_next(next), "error": None, "staff": ""})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    staff, secret = str(form.get("staff") or "").strip(), str(form.get("secret") or "")
    nxt = safe_next(str(form.get("next") or "/"))
    engine, throttle = engine_of(request), request.app.state.login_throttle
    address, now = request.client.host if request.client else "-", engine.clock.now()
    wait = throttle.wait(staff, address, now)
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        return render(request, "login.html", {"next": nxt, "staff": staff,
                                              "error": f"登录失败次数过多，请 {minutes} 分钟后再试。"}, status=429)
    who = await run_in_threadpool(authenticate, engine, staff, secret)
    if who is None:
        throttle.failed(staff, address, now)
        return render(request, "login.html", {"next": nxt, "error": "员工编号或密码（令牌）不正确。", "staff": staff},
                      status=401)
    throttle.succeeded(staff, address)
    log_in(request, who)
    return RedirectResponse(nxt, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    check_csrf(request, await request.form())
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ---------------------------------------------------------------- inbox

def _inbox_context(request: Request, who: Caller, building: Optional[str]) -> dict[str, Any]:
    engine = engine_of(request)
    building = building if building in engine.org.buildings else None
    box = views.inbox(engine, who.staff_id, tuple(who.roles), building)
    return {"mine": box.mine, "queue": box.queue, "mine_total": box.mine_total, "queue_total": box.queue_total, "watched": views.watched(engine, who.staff_id), "building": building, "buildings": engine.org.buildings,
            "my_buildings": who.buildings, "now": engine.clock.now().isoformat()}


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, building: Optional[str] = None) -> HTMLResponse:
    who = viewer(request)
    return render(request, "inbox.html", _inbox_context(request, who, building), who)


@router.get("/inbox/rows", response_class=HTMLResponse)
def inbox_rows(request: Request, building: Optional[str] = None) -> HTMLResponse:
    """The inbox's tables alone: what the page fetches to refresh itself without a reload."""
    who = viewer(request)
    return render(request, "_inbox_tables.html", _inbox_context(request, who, building), who, fragment=True)


@router.post("/instances/{instance_id}/claim")
async def claim(request: Request, instance_id: int) -> Response:
    who = viewer(request)
    form = await request.form()
    check_csrf(request, form)
    engine = engine_of(request)
    try:
        revision = int(str(form.get("revision")))
        await run_in_threadpool(engine.claim, instance_id, who.staff_id, None, revision)
    except ValueError:
        return message(request, who, "页面缺少版本号，请刷新后重试。", 422)
    except EngineError as e:
        status, text = refusal(engine, e)
        flash(request, f"认领 #{instance_id} 未成功：{text}", "error")
        return RedirectResponse(safe_next(str(form.get("back") or "/")), status_code=303)
    flash(request, f"已认领 #{instance_id}。")
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


# ---------------------------------------------------------------- start

@router.get("/start", response_class=HTMLResponse)
def start_list(request: Request) -> HTMLResponse:
    who = viewer(request)
    engine = engine_of(request)
    procs = [p for p in engine.library.procedures.values() if who.roles & set(p.spec.start.roles)]
    procs.sort(key=lambda p: (QUICK_START.index(p.id) if p.id in QUICK_START else len(QUICK_START), p.id))
    return render(request, "start.html", {"procedures": procs, "quick": QUICK_START}, who)


def _startable(request: Request, who: Caller, procedure: str) -> tuple[Any, Optional[Response]]:
    """(the procedure, None), or (None, the page that says why it cannot be started)."""
    library = engine_of(request).library
    try:
        library.require_enabled(procedure)
    except ProcedureDisabled as e:
        return None, message(request, who, *refusal(engine_of(request), e)[::-1])
    proc = library.procedures.get(procedure)
    if proc is None:
        return None, message(request, who, "没有这个流程。", 404)
    return proc, None


def form_page(request: Request, who: Caller, *, title: str, heading: str, form: Optional[FormSpec], action_url: str,
              back: str, values: Optional[dict[str, Any]] = None, errors: Optional[dict[str, str]] = None,
              other_errors: Optional[list[str]] = None, stored: Optional[dict[str, Any]] = None,
              revision: Optional[int] = None, problem: Optional[str] = None, status: int = 200,
              inst: Any = None, labels: Optional[dict[str, str]] = None, examples: bool = True) -> HTMLResponse:
    """The form page; ``examples``: show each input's example value (``3-1201``) as its
    placeholder (not beside a current value, where it would read as one)."""
    return render(request, "form.html", {
        "title": title, "heading": heading, "form": form,
        "widgets": fields.widgets(form, values, errors, stored, labels),
        "action_url": action_url, "back": back, "other_errors": other_errors or [], "revision": revision,
        "problem": problem, "inst": inst, "examples": examples}, who, status)


@router.get("/start/{procedure}", response_class=HTMLResponse)
def start_form(request: Request, procedure: str) -> Response:
    who = viewer(request)
    proc, page = _startable(request, who, procedure)
    if page is not None:
        return page
    form = proc.form(proc.spec.start.form)
    return form_page(request, who, title=f"新建{proc.spec.title}", heading=f"新建：{proc.spec.title}", form=form,
                     action_url=f"/start/{procedure}", back="/start", labels=views.field_labels(proc))


@router.post("/start/{procedure}", response_class=HTMLResponse)
async def start(request: Request, procedure: str) -> Response:
    who = viewer(request)
    submitted = await request.form(**FORM_LIMITS)
    check_csrf(request, submitted)
    engine = engine_of(request)
    proc, page = _startable(request, who, procedure)
    if page is not None:
        return page
    form = proc.form(proc.spec.start.form)
    data, shown, stored = await run_in_threadpool(fields.parse, form, submitted, views.zone_of(engine),
                                                  request.app.state.evidence)
    common = dict(title=f"新建{proc.spec.title}", heading=f"新建：{proc.spec.title}", form=form,
                  action_url=f"/start/{procedure}", back="/start", values=shown, stored=stored,
                  labels=views.field_labels(proc))
    inst, page = await submit_form(request, who, engine, form, common,
                                   lambda: engine.start(procedure, who.staff_id, data))
    if page is not None:
        return page
    flash(request, f"已登记 #{inst.id}（{proc.spec.title}），当前：{views.state_title(proc, inst.state)}。")
    return RedirectResponse(f"/instances/{inst.id}", status_code=303)


async def submit_form(request: Request, who: Any, engine: Any, form: Any, common: dict[str, Any],
                      command: Callable[[], Any]) -> tuple[Any, Optional[Response]]:
    """Run a form's command; on a refusal, the form again with the engine's reasons beside
    its fields (in Chinese) and nothing written: (result, None) or (None, that page)."""
    try:
        return await run_in_threadpool(command), None
    except FormInvalid as e:
        errs, other = fields.field_errors(e.errors, form, common["labels"])
        return None, form_page(request, who, errors=errs, other_errors=other, status=422,
                               problem="表单有误，请按提示修改后再提交。", **common)
    except EngineError as e:
        status, text = refusal(engine, e)
        return None, form_page(request, who, problem=text, status=status, **common)


# ---------------------------------------------------------------- an instance

@router.get("/instances/{instance_id}", response_class=HTMLResponse)
def instance_page(request: Request, instance_id: int) -> HTMLResponse:
    who = viewer(request)
    engine = engine_of(request)
    try:
        inst = engine.show(instance_id)
        events = engine.history(instance_id)
    except EngineError as e:
        status, text = refusal(engine, e)
        return message(request, who, text, status)
    proc = views.procedure_of(engine, inst)
    out_of_scope = scope_refusal(engine, who, inst)
    scoped_in = out_of_scope is None
    actions = [{**a, "allowed": scoped_in and bool(who.roles & set(a["roles"]))}
               for a in engine.available_actions(inst)]
    data, evidence = views.data_rows(engine, proc, inst)
    parent = engine.show(inst.parent_id) if inst.parent_id else None
    children = [engine.show(c) for c in inst.children]
    claimable = (inst.active and inst.assignee is None and inst.assignee_role in who.roles and scoped_in) or any(
        b["status"] == "open" and b["assignee"] is None and b["role"] in who.roles for b in inst.branches.values())
    branch_titles = {n: b.title for n, b in proc.spec.states[inst.state].branches.items()} if inst.branches else {}
    branches = [{"name": n, "title": branch_titles.get(n, n), "state": views.state_title(proc, b["state"]),
                 "status": b["status"], "assignee": views.staff_name(engine, b["assignee"]), "role": b["role"]}
                for n, b in inst.branches.items()]
    return render(request, "instance.html", {
        "inst": inst, "proc": proc, "state_title": views.state_title(proc, inst.state),
        "assignee": views.staff_name(engine, inst.assignee), "data": data, "evidence": evidence,
        "actions": actions, "clocks": views.clocks(engine, proc, inst, events),
        "timeline": views.timeline(engine, proc, events), "diagram": diagram.svg(proc.spec, inst.state),
        "states": [(n, s.title) for n, s in proc.spec.states.items()],
        "parent": parent, "children": children, "claimable": claimable, "out_of_scope": out_of_scope,
        "branches": branches, "branch_titles": branch_titles,
        "watchers": [views.staff_name(engine, w) for w in inst.watchers], "watching": who.staff_id in inst.watchers,
        "may_watch": _may_watch(engine, who, inst),
        "may_record": inst.active and scoped_in and bool(recordable_fields(proc)) and (
            any(a["allowed"] for a in actions) or inst.assignee == who.staff_id or bool(who.supervises)),
        "staff": [p for p in engine.org.staff if p.active] if who.supervises and inst.active else [],
        "title_of": lambda i: engine.library.get(i.procedure).spec.title if i.procedure in engine.library.procedures
        else i.procedure,
        "started_at": views.local(inst.started_at, views.zone_of(engine))}, who)


def _action(engine: Any, inst: Any, proc: Any, action: str) -> Any:
    return next((a for a in proc.spec.actions if a.name == action), None)


def case_of(request: Request, who: Caller, instance_id: int) -> tuple[Any, Any, Optional[HTMLResponse]]:
    """(the instance, its pinned procedure, None), or (None, None, the page that says why it
    cannot be shown): what a page of one case starts with."""
    engine = engine_of(request)
    try:
        inst = engine.show(instance_id)
    except EngineError as e:
        status, text = refusal(engine, e)
        return None, None, message(request, who, text, status)
    return inst, views.procedure_of(engine, inst), None


def revision_of(submitted: Any) -> Optional[int]:
    """The page's hidden revision (the engine's expected revision), None when missing or no number."""
    try:
        return int(str(submitted.get("revision")))
    except ValueError:
        return None


@router.get("/instances/{instance_id}/act/{action}", response_class=HTMLResponse)
def act_form(request: Request, instance_id: int, action: str) -> HTMLResponse:
    who = viewer(request)
    engine = engine_of(request)
    inst, proc, page = case_of(request, who, instance_id)
    if page is not None:
        return page
    spec = _action(engine, inst, proc, action)
    if spec is None:
        return message(request, who, "此流程没有这个操作。", 404)
    problem = None
    if action not in {a["name"] for a in engine.available_actions(inst)}:
        problem = f"单据现在处于「{views.state_title(proc, inst.state)}」，不能执行「{spec.title}」。"
    elif inst.active:
        problem = scope_refusal(engine, who, inst)
    return form_page(request, who, title=spec.title, heading=f"#{inst.id} {proc.spec.title}：{spec.title}",
                     form=proc.form(spec.form), action_url=f"/instances/{instance_id}/act/{action}",
                     back=f"/instances/{instance_id}", revision=inst.revision, problem=problem, inst=inst,
                     labels=views.field_labels(proc))


@router.post("/instances/{instance_id}/act/{action}", response_class=HTMLResponse)
async def act(request: Request, instance_id: int, action: str) -> Response:
    who = viewer(request)
    submitted = await request.form(**FORM_LIMITS)
    check_csrf(request, submitted)
    engine = engine_of(request)
    inst, proc, page = await run_in_threadpool(case_of, request, who, instance_id)
    if page is not None:
        return page
    spec = _action(engine, inst, proc, action)
    if spec is None:
        return message(request, who, "此流程没有这个操作。", 404)
    form = proc.form(spec.form)
    revision = revision_of(submitted)
    data, shown, stored = await run_in_threadpool(fields.parse, form, submitted, views.zone_of(engine),
                                                  request.app.state.evidence)
    common = dict(title=spec.title, heading=f"#{inst.id} {proc.spec.title}：{spec.title}", form=form,
                  action_url=f"/instances/{instance_id}/act/{action}", back=f"/instances/{instance_id}",
                  values=shown, stored=stored, revision=revision, inst=inst, labels=views.field_labels(proc))
    if revision is None:
        return form_page(request, who, problem="页面缺少版本号，请刷新后重试。未保存任何内容。", status=422, **common)
    _, refused = await submit_form(request, who, engine, form, common,
                                   lambda: engine.advance(instance_id, action, who.staff_id, data, None, revision))
    if refused is not None:
        return refused
    flash(request, f"已提交：{spec.title}。")
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


@router.post("/instances/{instance_id}/assign")
async def assign(request: Request, instance_id: int) -> Response:
    """A supervisor gives the task to someone (``Engine.assign``, as ``sop assign``)."""
    who = viewer(request)
    form = await request.form()
    check_csrf(request, form)
    engine = engine_of(request)
    assignee = str(form.get("assignee") or "")
    try:
        revision = int(str(form.get("revision")))
        await run_in_threadpool(engine.assign, instance_id, assignee, who.staff_id, None, revision)
    except ValueError:
        return message(request, who, "页面缺少版本号，请刷新后重试。", 422)
    except EngineError as e:
        flash(request, f"指派未成功：{refusal(engine, e)[1]}", "error")
    else:
        flash(request, f"已指派给 {views.staff_name(engine, assignee)}。")
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


@router.post("/instances/{instance_id}/watch")
async def watch(request: Request, instance_id: int) -> Response:
    """Watch or stop watching the case (``sop watch`` / ``sop unwatch``): form field ``watch`` 1 or 0."""
    from engine.runtime import watching

    who = viewer(request)
    form = await request.form()
    check_csrf(request, form)
    engine = engine_of(request)
    on = str(form.get("watch")) == "1"
    try:
        revision = int(str(form.get("revision")))
        await run_in_threadpool(watching.watch if on else watching.unwatch, engine, instance_id, who.staff_id,
                                None, revision)
    except ValueError:
        return message(request, who, "页面缺少版本号，请刷新后重试。", 422)
    except EngineError as e:
        flash(request, f"{'关注' if on else '取消关注'}未成功：{refusal(engine, e)[1]}", "error")
    else:
        flash(request, f"已{'关注' if on else '取消关注'} #{instance_id}。")
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


@router.get("/instances/{instance_id}/verify", response_class=HTMLResponse)
def verify(request: Request, instance_id: int) -> HTMLResponse:
    """For auditors: the hash chain event by event, recomputed, and the replay's result."""
    who = viewer(request)
    if not is_auditor(who):
        allowed = "、".join(views.role_name(engine_of(request), r) for r in who.auditing_roles)
        return message(request, who, f"核验仅限审计角色（{allowed}）。", 403)
    engine = engine_of(request)
    try:
        rows, broken = engine.verify_instance(instance_id)
        replayed = engine.replay(instance_id)
        inst = engine.show(instance_id)
    except EngineError as e:
        status, text = refusal(engine, e)
        return message(request, who, text, status)
    zone = views.zone_of(engine)
    chain = [{"seq": r.seq, "type": views.EVENT_TITLES.get(r.type, r.type), "actor": views.staff_name(engine, r.actor),
              "at": views.local(r.occurred_at, zone), "prev_hash": r.prev_hash, "hash": r.hash,
              "linked": linked, "intact": intact} for r, linked, intact in link_checks(rows)]
    return render(request, "verify.html", {"inst": inst, "chain": chain, "broken": broken, "replay": replayed,
                                           "proc": views.procedure_of(engine, inst)}, who)


@router.get("/files/{sha256}")
def evidence_file(request: Request, sha256: str, name: str = "file") -> Response:
    who = viewer(request)
    path = request.app.state.evidence.path(sha256)
    if path is None:
        return message(request, who, "没有这个文件。", 404)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    inline = kind in ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
    return FileResponse(path, media_type=kind if inline else "application/octet-stream", filename=name,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"})
