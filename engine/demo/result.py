"""What a month of ``sop demo`` leaves: its figures (``DemoResult``), as JSON and as the
closing report it prints."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from engine.demo.player import DATA, Say


@dataclass
class DemoResult:
    db_url: str
    db_path: Optional[Path]
    notices_dir: Path
    start: datetime
    end: datetime
    instances: int = 0
    events: int = 0
    broken: Any = None
    replayed: int = 0
    replay_failures: list[str] = field(default_factory=list)
    diary: list[str] = field(default_factory=list)
    notices: list[Path] = field(default_factory=list)
    sla: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str, str, int]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    sweep_errors: list[str] = field(default_factory=list)
    refused: int = 0
    follow_up: dict[str, int] = field(default_factory=dict)


def as_json(result: DemoResult) -> dict[str, Any]:
    """What ``sop --json demo`` prints: the month's figures, for scripts and dashboards."""
    return {
        "db": result.db_url, "start": result.start.isoformat(), "end": result.end.isoformat(),
        "instances": result.instances, "events": result.events,
        "audit": {"ok": result.broken is None, "broken": None if result.broken is None else str(result.broken)},
        "replay": {"replayed": result.replayed, "differences": list(result.replay_failures)},
        "imports": dict(result.totals), "notices": [str(p) for p in result.notices],
        "sla": list(result.sla),
        "states": [{"procedure": p, "state": s, "status": st, "count": n} for p, s, st, n in result.states],
        "sweep_errors": list(result.sweep_errors), "automatic_actions_refused": result.refused,
        "diary": list(result.diary), "follow_up": dict(result.follow_up),
    }


# ---------------------------------------------------------------- what `sop demo` prints at the end

def summary(result: DemoResult, say: Say, table: Callable[[list[list[Any]], list[str]], None]) -> None:
    say("")
    say("本月经过：")
    for line in result.diary:
        say(f"  {line}")
    say("")
    t = result.totals
    say(f"来电话单（demo/calls.csv，每个工作日 18:10 导入，节假日的节后导入）：{t.get('calls', 0)} 通，"
        f"超过三声才接 {t.get('calls_late', 0)} 通，未接 {t.get('calls_missed', 0)} 通（次日上午回拨）")
    say(f"银行对账单（demo/bank/*.csv）：入账 {t.get('payments', 0)} 笔")
    if result.notices:
        say(f"打印的通知单（{result.notices_dir}）：")
        for p in result.notices:
            say(f"  {p.name}")
    say("")
    say("SLA 报告（sop sla report）：")
    table([[r["procedure"], r["sla"], r["assignee"] or "(all)", r["met"], r["breached"], r["open"],
            "-" if r["compliance"] is None else f"{r['compliance']:.1f}%"] for r in result.sla],
          ["procedure", "sla", "assignee", "met", "breached", "open", "compliance"])
    say("")
    say("流程实例（按状态）：")
    table([[p, s, st, n] for p, s, st, n in result.states], ["procedure", "state", "status", "count"])
    say("")
    if result.broken is None:
        say(f"审计（sop audit verify）：ok: {result.instances} instances, {result.events} events, every chain intact")
    else:
        say(f"审计（sop audit verify）：broken: {result.broken}")
    say(f"重放（sop replay）：{result.replayed - len(result.replay_failures)}/{result.replayed} 个实例与存储状态一致")
    for f in result.replay_failures:
        say(f"  replay differs {f}")
    for e in result.sweep_errors:
        say(f"定时任务失败：{e}")
    if result.refused:
        say(f"自动动作被拒（AutomaticActionRefused）：{result.refused}")
    say("")
    where = result.db_path or result.db_url
    say(f"数据库：{where}")
    say("继续查看：")
    db = f"sop --db {result.db_url}"
    ids = result.follow_up
    commands = [
        ("tasks --as chen_jing", "陈静（3、4栋管家）手上的待办"),
        ("tasks --role cs_supervisor", "客服主管队列：回访、投诉效果检查"),
        (f"show {ids.get('complaint_interim')}", "有阶段性答复的来访投诉（CMP-4）"),
        (f"history {ids.get('complaint_interim')}", "它的每一步：谁、何时、做了什么"),
        (f"replay {ids.get('dunning_letter')}", "发过律师函的催缴单：由事件重放出状态"),
        ("sla report --procedure complaint", "投诉答复时限，按人"),
        ("audit verify", "检查每条哈希链"),
        (f"import calls {DATA / 'calls.csv'} --as li_qiang", "再导入一次话单：幂等，什么也不新增"),
    ]
    width = max(len(f"{db} {c}") for c, _ in commands if len(c) <= 32)
    for cmd, what in commands:
        say(f"  {f'{db} {cmd}':<{width}}  # {what}")
