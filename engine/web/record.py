"""补录资料: correcting or completing a case's details from its page (``Engine.record``).

A front desk that typed the wrong phone number, or a steward who learns the owner's name
later, changes it here as ``sop record`` and ``POST /v1/instances/{id}/data`` do: the engine
decides who may (the case's working roles, its assignee, supervisors, within their
buildings) and which fields (the procedure's recordable ones: the start form's, never a
decision such as an approval, CMP-8). The page shows each recordable field with its current
value beside it and empty inputs: what is filled in is recorded, what is left empty stays
as it is, so nothing is re-recorded by accident. A stale page (the hidden ``revision``)
writes nothing and says so, as the action pages do.
"""
from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.core.decide import recordable_fields
from engine.spec.forms import FormSpec
from engine.web import fields, views
from engine.web.evidence import is_evidence
from engine.web.routes import FORM_LIMITS, case_of, engine_of, flash, form_page, message, revision_of, submit_form
from engine.web.session import check_csrf, viewer

router = APIRouter(include_in_schema=False)
TITLE = "补录资料"


def record_form(engine: Any, proc: Any, inst: Any) -> Optional[FormSpec]:
    """The recordable fields as an all-optional form, each with its current value as its
    hint (None when the procedure has no recordable field)."""
    names = [k for k in proc.fields if k in recordable_fields(proc)]
    if not names:
        return None
    out = {}
    for k in names:
        current = inst.data.get(k)
        hint = ("当前：（未填）" if current in (None, "") else "当前：已上传文件" if is_evidence(current)
                else f"当前：{views.value_text(engine, proc, k, current)}")
        spec = proc.fields[k]
        out[k] = spec.model_copy(update={"required": False, "required_if": None, "default": None,
                                         "help": f"{hint}；{spec.help}" if spec.help else hint})
    return FormSpec(id="record", title=TITLE, fields=out)


def _common(engine: Any, proc: Any, inst: Any, form: FormSpec, revision: Optional[int]) -> dict[str, Any]:
    return dict(title=TITLE, heading=f"#{inst.id} {proc.spec.title}：{TITLE}", form=form,
                action_url=f"/instances/{inst.id}/record", back=f"/instances/{inst.id}", revision=revision,
                inst=inst, labels=views.field_labels(proc), examples=False)


@router.get("/instances/{instance_id}/record", response_class=HTMLResponse)
def record_page(request: Request, instance_id: int) -> Response:
    who = viewer(request)
    inst, proc, page = case_of(request, who, instance_id)
    if page is not None:
        return page
    engine = engine_of(request)
    form = record_form(engine, proc, inst)
    if form is None:
        return message(request, who, "此流程没有可补录的资料项。", 404)
    problem = None if inst.active else f"单据已{views.STATUS.get(inst.status, inst.status)}，不能再补录资料。"
    return form_page(request, who, problem=problem, **_common(engine, proc, inst, form, inst.revision))


@router.post("/instances/{instance_id}/record", response_class=HTMLResponse)
async def record(request: Request, instance_id: int) -> Response:
    who = viewer(request)
    submitted = await request.form(**FORM_LIMITS)
    check_csrf(request, submitted)
    inst, proc, page = await run_in_threadpool(case_of, request, who, instance_id)
    if page is not None:
        return page
    engine = engine_of(request)
    form = await run_in_threadpool(record_form, engine, proc, inst)
    if form is None:
        return message(request, who, "此流程没有可补录的资料项。", 404)
    revision = revision_of(submitted)
    data, shown, stored = await run_in_threadpool(fields.parse, form, submitted, views.zone_of(engine),
                                                  request.app.state.evidence)
    common = dict(_common(engine, proc, inst, form, revision), values=shown, stored=stored)
    if revision is None:
        return form_page(request, who, problem="页面缺少版本号，请刷新后重试。未保存任何内容。", status=422, **common)
    if not data:
        return form_page(request, who, problem="请至少填写一项要补录或更正的内容。未保存任何内容。", status=422,
                         **common)
    _, refused = await submit_form(request, who, engine, form, common,
                                   lambda: engine.record(instance_id, who.staff_id, data, None, revision))
    if refused is not None:
        return refused
    labels = views.field_labels(proc)
    flash(request, "已补录：" + "、".join(labels.get(k, k) for k in data) + "。")
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)
