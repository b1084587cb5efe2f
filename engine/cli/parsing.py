"""Arguments every ``sop`` command reads the same way: JSON data, times, instance ids, seconds.

Each refusal is an ``InputError`` naming the argument, so it prints as one line.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import click

from engine.errors import InputError
from engine.instants import out_of_range

notify_option = click.option(
    "--notify", "notify_file", envvar="SOP_NOTIFY", type=click.Path(dir_okay=False),
    help="Delivery configuration YAML (env SOP_NOTIFY); default: print on the console.")

MAX_ID = 2**31 - 1  # the id column's range (INTEGER on PostgreSQL)


def parse_data(raw: Optional[str]) -> dict[str, Any]:
    """``--data``: a JSON object, inline or ``@file.json``."""
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError("--data", f"cannot read {path}: {e.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError("--data", f"not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise InputError("--data", "must be a JSON object like {\"field\": \"value\"}")
    return value


def parse_time(raw: Optional[str], zone: str, argument: str = "--at") -> Optional[datetime]:
    """ISO 8601; a time without offset is read in the site's zone."""
    if raw is None:
        return None
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(argument, f"not an ISO 8601 time: {raw!r} (e.g. 2025-09-30T17:55:00+08:00)") from None
    t = t if t.tzinfo else t.replace(tzinfo=ZoneInfo(zone))
    why = out_of_range(t)
    if why is not None:
        raise InputError(argument, f"{raw!r} is {why}")
    return t


def instance_id(raw: str) -> int:
    """An instance id as typed (``12`` or ``#12``), within the id column's range."""
    try:
        value = int(raw.lstrip("#"))
    except ValueError:
        raise InputError("ID", f"not an instance id: {raw!r}") from None
    if not 1 <= value <= MAX_ID:
        raise InputError("ID", f"not an instance id: {raw!r} (ids run from 1 to {MAX_ID})")
    return value


class Seconds(click.ParamType):
    """A number of seconds from ``least`` (10 ms unless told) to ``most`` (an hour unless told).

    ``click.FloatRange`` lets NaN through (every comparison with it is false); a negative,
    zero, tiny, NaN, infinite or absurd interval would spin a sweep loop or never wake it.
    """

    name = "seconds"

    def __init__(self, least: float = 0.01, most: float = 3600.0) -> None:
        self.least, self.most = least, most

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                self.fail(f"not a number of seconds: {value!r}", param, ctx)
        if not (math.isfinite(seconds) and self.least <= seconds <= self.most):
            self.fail(f"must be from {self.least:g} to {self.most:g} seconds, not {value!r}", param, ctx)
        return seconds
