"""``sop notice render``: the printed notices of a case (adapters/notices.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag
from engine.cli.parsing import instance_id, parse_time


@click.group("notice")
def notice_group() -> None:
    """Printed notices (催费通知单, 催费通知书, 律师函, 收费通知单, 维修单) from a case."""


@notice_group.command("render")
@json_flag
@click.argument("instance")
@click.argument("kind")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Folder to write the notice into.")
@click.option("--at", "at_raw", help="Issue date for a notice the case has not recorded (ISO 8601); default now.")
@pass_ctx
@fail_cleanly
def notice_render(ctx: Context, instance: str, kind: str, out_dir: Path, at_raw: Optional[str]) -> None:
    """Render notice KIND of case INSTANCE to a UTF-8 text file and print its path.

    KIND: door_notice, notice_1, notice_2, final_notice, lawyer_letter, fee_notice, repair_slip.
    """
    from adapters.notices import render_notice

    eng = ctx.engine
    path = render_notice(eng, instance_id(instance), kind, out_dir, parse_time(at_raw, eng.org.site.zone))
    emit(ctx, {"instance": int(instance.lstrip("#")), "kind": kind, "file": str(path)},
         lambda: click.echo(str(path)), compact=True)


COMMANDS = (notice_group,)
