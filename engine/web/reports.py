"""The SLA dashboard and its exports (.xlsx, .csv), for supervisors and auditors.

The figures are :func:`engine.runtime.dashboard.figures` (the SLA report of ``sop sla
report`` / ``GET /v1/reports/sla``, by month, person and building, and the QA-1..5 monthly
figures); this module only lays them out as a page, a workbook or a CSV.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any, Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from engine.runtime.dashboard import Dashboard, figures
from engine.web import charts, views
from engine.web.routes import is_auditor, message, render
from engine.web.session import viewer

router = APIRouter(include_in_schema=False)

TARGETS = {"handling": 100.0, "callback": 100.0, "satisfaction": 85.0, "punctuality": 98.0}
QA_NOT_ENCODED = {
    "QA-4": "日检、周检、月检属管理例行工作，未纳入本系统程序（催费的每日、每周复核见催费流程）。",
    "QA-5": "交接班记录不在本系统的程序内；每一步的操作人、时间均记录在日志中，可在单据时间线查看。",
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(text: Optional[str]) -> Optional[date]:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _period(request: Request, start: Optional[str], end: Optional[str]) -> tuple[Optional[datetime], Optional[datetime],
                                                                                    Optional[date], Optional[date]]:
    zone = views.zone_of(request.app.state.engine)
    d0, d1 = _day(start), _day(end)
    t0 = datetime.combine(d0, time(0), zone) if d0 else None
    t1 = datetime.combine(d1 + timedelta(days=1), time(0), zone) if d1 else None  # "to" is the last day, inclusive
    return t0, t1, d0, d1


def _titles(engine: Any) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    procs = {p.id: p.spec.title for p in engine.library.procedures.values()}
    slas = {(p.id, s.name): s.title for p in engine.library.procedures.values() for s in p.spec.slas}
    return procs, slas


def _tables(engine: Any, d: Dashboard) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the dashboard: name -> (header, rows); the page, the workbook and the CSV."""
    procs, slas = _titles(engine)
    pct = lambda v: v  # noqa: E731  (percent values stay numbers; None is "not judged yet")
    out: dict[str, tuple[list[str], list[list[Any]]]] = {}
    out["按流程"] = (["流程", "时限", "达标", "超时", "进行中", "达标率%"],
                  [[procs.get(r["procedure"], r["procedure"]), slas.get((r["procedure"], r["sla"]), r["sla"]),
                    r["met"], r["breached"], r["open"], pct(r["compliance"])] for r in d.procedures])
    out["按人员"] = (["人员", "达标", "超时", "进行中", "达标率%"],
                  [[views.staff_name(engine, None if who == "-" else who) if who != "-" else "（未分派）",
                    t.met, t.breached, t.open, t.compliance] for who, t in d.people.items()])
    out["按月"] = (["月份", "达标", "超时", "进行中", "达标率%"],
                 [[m, t.met, t.breached, t.open, t.compliance] for m, t in d.months.items()])
    out["按月按流程"] = (["月份", "流程", "达标", "超时", "进行中", "达标率%"],
                    [[m, procs.get(p, p), t.met, t.breached, t.open, t.compliance]
                     for (m, p), t in d.month_procedure.items()])
    out["按楼栋"] = (["楼栋", "达标", "超时", "进行中", "达标率%"],
                  [["无房号" if b == "-" else b, t.met, t.breached, t.open, t.compliance]
                   for b, t in d.buildings.items()])
    out["质量目标"] = (["月份", "投诉数", "已结案", "QA-1 投诉处理率%", "应回访", "已回访", "QA-1 回访率%",
                     "满意度调查数", "QA-2 满意率%", "QA-3 服务及时率%", "QA-4 巡检", "QA-5 交接班"],
                    [[q.month, q.complaints, q.complaints_closed, q.handling_rate, q.callbacks_due, q.callbacks_done,
                      q.callback_rate, q.surveyed, q.satisfaction, q.punctuality, "未纳入程序", "未纳入程序"]
                     for q in d.quality])
    return out


def _load(request: Request, start: Optional[str], end: Optional[str],
          procedure: Optional[str]) -> tuple[Any, Dashboard]:
    engine = request.app.state.engine
    t0, t1, _, _ = _period(request, start, end)
    proc = procedure if procedure in engine.library.procedures else None
    return engine, figures(engine, t0, t1, proc)


def _refused(request: Request) -> Optional[HTMLResponse]:
    who = viewer(request)
    if not is_auditor(who):
        return message(request, who, "SLA 看板仅限主管、管理层和档案管理员查看。", 403)
    return None


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, start: Optional[str] = None, end: Optional[str] = None,
              procedure: Optional[str] = None) -> HTMLResponse:
    who = viewer(request)
    refused = _refused(request)
    if refused is not None:
        return refused
    start = request.query_params.get("from", start)
    end = request.query_params.get("to", end)
    engine, d = _load(request, start, end, procedure)
    query = urlencode({k: v for k, v in (("from", start), ("to", end), ("procedure", procedure)) if v})
    month_chart = charts.compliance_by_month([(m, t.compliance) for m, t in d.months.items()],
                                             TARGETS["punctuality"], "按月达标率（QA-3 目标 98%）")
    building_chart = charts.breaches_by_building([(b, t.breached) for b, t in d.buildings.items() if t.breached])
    return render(request, "dashboard.html", {
        "tables": _tables(engine, d), "d": d, "month_chart": month_chart, "building_chart": building_chart,
        "procedures": sorted(engine.library.procedures.values(), key=lambda p: p.id), "procedure": procedure or "",
        "start": start or "", "end": end or "", "query": query, "targets": TARGETS,
        "not_encoded": QA_NOT_ENCODED}, who)


@router.get("/dashboard.csv")
def dashboard_csv(request: Request, procedure: Optional[str] = None) -> Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    engine, d = _load(request, request.query_params.get("from"), request.query_params.get("to"), procedure)
    buf = io.StringIO()
    w = csv.writer(buf)
    for name, (header, rows) in _tables(engine, d).items():
        w.writerow([name])
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])
        w.writerow([])
    # a BOM, so that Excel opens the Chinese text as UTF-8
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="sla-dashboard.csv"'})


@router.get("/dashboard.xlsx")
def dashboard_xlsx(request: Request, procedure: Optional[str] = None) -> Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    from openpyxl import Workbook
    from openpyxl.styles import Font

    engine, d = _load(request, request.query_params.get("from"), request.query_params.get("to"), procedure)
    book = Workbook()
    if book.active is not None:  # (a new workbook's one empty sheet: always there)
        book.remove(book.active)
    for name, (header, rows) in _tables(engine, d).items():
        sheet = book.create_sheet(name)
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for i, title in enumerate(header, start=1):
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = max(10, len(title) * 2 + 2)
    out = io.BytesIO()
    book.save(out)
    return Response(out.getvalue(), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="sla-dashboard.xlsx"'})
