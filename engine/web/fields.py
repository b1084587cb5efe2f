"""Forms as HTML: a ``FormSpec``'s fields as widgets, submitted HTML form data back into the
values the engine validates, and the engine's field errors in Chinese.

Nothing is validated here: the submitted strings are only reshaped (a checkbox list into a
checklist, a ``datetime-local`` into a time in the site's zone, an upload into its
``Evidence`` value) and handed to the engine, which validates them with the same compiled
model the API and the CLI use. Its ``FormInvalid`` comes back per field and is shown beside
the field.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from engine.errors import FieldError
from engine.spec.forms import FieldSpec, FormSpec
from engine.web.evidence import EvidenceStore

INPUT_TYPES = {"text": "text", "integer": "number", "money": "text", "date": "date", "datetime": "datetime-local",
               "phone": "tel", "unit": "text", "staff": "text", "instance": "number"}
PLACEHOLDERS = {"money": "0.00", "unit": "3-1201", "phone": "13912345678", "staff": "wang_li"}
CHECK_RESULTS = (("pass", "合格"), ("fail", "不合格"))


def condition_text(expression: str, form: Optional[FormSpec], context: Optional[dict[str, str]] = None) -> str:
    """A ``required_if`` as staff read it: field names as their labels, quoted options as theirs."""
    labels = dict(context or {})
    options: dict[str, str] = {}
    for name, f in (form.fields.items() if form else ()):
        labels[name] = f.label
        options.update(f.option_labels or {})
    text = re.sub(r"'([^']*)'", lambda m: f"“{options.get(m.group(1), m.group(1))}”", expression)
    text = re.sub(r"not empty\((\w+)\)", lambda m: f"{labels.get(m.group(1), m.group(1))}已填写", text)
    text = re.sub(r"empty\((\w+)\)", lambda m: f"{labels.get(m.group(1), m.group(1))}未填写", text)
    text = re.sub(r"\b[a-z_][a-z0-9_]*\b", lambda m: labels.get(m.group(0), WORDS.get(m.group(0), m.group(0))), text)
    return text.replace("==", "为").replace("!=", "不为")


WORDS = {"not": "非", "and": "且", "or": "或", "empty": "为空", "None": "空", "is": "", "true": "是", "false": "否"}


@dataclass
class Widget:
    name: str
    spec: FieldSpec
    value: Any = None                   # as the form shows it (strings; a dict for checklists)
    error: Optional[str] = None
    stored: Optional[dict[str, Any]] = None  # an upload already kept (re-shown after an error)
    condition: str = ""                      # required_if in words

    @property
    def unit_suffix(self) -> str:
        return "（元）" if self.spec.type == "money" and "元" not in self.spec.label else ""

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.spec.type, "text")

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS.get(self.spec.type, "")

    @property
    def required(self) -> bool:
        s = self.spec
        return s.required and s.required_if is None and s.default is None

    @property
    def options(self) -> list[tuple[str, str]]:
        labels = self.spec.option_labels or {}
        return [(o, labels.get(o, o)) for o in self.spec.options or ()]

    @property
    def items(self) -> list[tuple[str, str]]:
        return list((self.spec.items or {}).items())

    @property
    def check_results(self) -> tuple[tuple[str, str], ...]:
        return CHECK_RESULTS

    @property
    def step(self) -> str:
        return "1" if self.spec.type == "integer" else ""


def widgets(form: Optional[FormSpec], values: Optional[dict[str, Any]] = None,
            errors: Optional[dict[str, str]] = None, stored: Optional[dict[str, dict[str, Any]]] = None,
            labels: Optional[dict[str, str]] = None) -> list[Widget]:
    """The form's fields to render; ``labels`` names the instance's other fields a condition reads."""
    if form is None:
        return []
    values, errors, stored = values or {}, errors or {}, stored or {}
    out = []
    for name, spec in form.fields.items():
        value = values.get(name)
        if value is None and spec.default is not None:
            value = spec.default
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(Widget(name, spec, value, errors.get(name), stored.get(name),
                          condition_text(spec.required_if, form, labels) if spec.required_if else ""))
    return out


def _local_time(text: str, zone: ZoneInfo) -> str:
    """``2025-10-01T09:00`` (a datetime-local input) as a time in the site's zone; a time
    that already has an offset, or is not a time, is passed on for the engine to judge."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (t if t.tzinfo else t.replace(tzinfo=zone)).isoformat()


def parse(form: Optional[FormSpec], submitted: Any, zone: ZoneInfo, files: EvidenceStore
          ) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(data for the engine, the values to show again, uploads already stored) from an HTML form.

    A field left empty is not sent, so the engine applies its default or says it is required.
    """
    data: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    stored: dict[str, dict[str, Any]] = {}
    if form is None:
        return data, shown, stored
    for name, spec in form.fields.items():
        if spec.type == "checklist":
            checks: dict[str, Any] = {}
            for key in spec.items or {}:
                result = str(submitted.get(f"{name}.{key}.result") or "")
                note = str(submitted.get(f"{name}.{key}.note") or "").strip()
                if result:
                    checks[key] = {"result": result, **({"note": note} if note else {})}
                elif note:
                    checks[key] = {"note": note}
            shown[name] = {k: {"result": str(submitted.get(f"{name}.{k}.result") or ""),
                               "note": str(submitted.get(f"{name}.{k}.note") or "")} for k in spec.items or {}}
            if checks:
                data[name] = checks
            continue
        if spec.type in ("attachment", "signature"):
            upload = submitted.get(f"{name}.file")
            if upload is not None and getattr(upload, "filename", None):
                upload.file.seek(0)
                data[name] = stored[name] = files.put(upload.file, upload.filename, upload.content_type)
                continue
            kept = submitted.get(f"{name}.stored")
            if kept:
                try:
                    value = json.loads(str(kept))
                except ValueError:
                    value = None
                if files.matches(value):
                    data[name] = stored[name] = value
                    continue
            text = str(submitted.get(name) or "").strip()
            shown[name] = text
            if text:
                data[name] = text
            continue
        raw = submitted.get(name)
        text = "" if raw is None else str(raw).strip()
        shown[name] = text
        if text == "":
            continue
        if spec.type == "bool":
            data[name] = {"true": True, "false": False}.get(text, text)
        elif spec.type == "datetime":
            data[name] = _local_time(text, zone)
        elif spec.type == "money":
            data[name] = text.replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
        else:
            data[name] = text
    return data, shown, stored


# ---------------------------------------------------------------- errors in Chinese

_ZH: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^required when (.*) \((.*)\)$"), lambda m: f"此情况下必填（条件：{m.group(1)}）"),
    (re.compile(r"^required$"), "必填"),
    (re.compile(r"^no staff member '([^']*)' in the organisation file(?: \(did you mean '([^']*)'\?\))?$"),
     lambda m: f"没有人员 {m.group(1)}" + (f"（是否为 {m.group(2)}？）" if m.group(2) else "")),
    (re.compile(r"^no (\w+) #(\d+)"), lambda m: f"没有单号 #{m.group(2)} 的{m.group(1)}"),
    (re.compile(r"^unknown field$"), "表单中没有此项"),
    (re.compile(r"^not a file reference or an uploaded file"), "请上传文件或填写文件编号（不含空格）"),
    (re.compile(r"^not a valid value"), "格式不正确"),
    (re.compile(r"String should have at least"), "不能为空"),
    (re.compile(r"String should have at most (\d+)"), lambda m: f"不能超过 {m.group(1)} 个字"),
    (re.compile(r"valid integer"), "请填写整数"),
    (re.compile(r"greater than or equal to (\S+)"), lambda m: f"不能小于 {m.group(1)}"),
    (re.compile(r"less than or equal to (\S+)"), lambda m: f"不能大于 {m.group(1)}"),
    (re.compile(r"greater than (\S+)"), lambda m: f"须大于 {m.group(1)}"),
    (re.compile(r"less than (\S+)"), lambda m: f"须小于 {m.group(1)}"),
    (re.compile(r"decimal places|valid decimal|digits in total"), "金额格式不正确（数字，最多两位小数）"),
    (re.compile(r"valid date|date in the format|Input should be a valid date"), "日期格式不正确"),
    (re.compile(r"timezone|valid datetime|datetime"), "时间格式不正确"),
    (re.compile(r"valid boolean"), "请选择是或否"),
    (re.compile(r"Input should be (('[^']*',? ?(or )?)+)"), "请从选项中选择"),
    (re.compile(r"valid dictionary|valid string"), "格式不正确"),
]


def zh(reason: str) -> str:
    for pattern, text in _ZH:
        m = pattern.search(reason)
        if m:
            return text(m) if callable(text) else text
    return f"无效（{reason}）"


def field_errors(errors: list[FieldError], form: Optional[FormSpec], labels: Optional[dict[str, str]] = None
                 ) -> tuple[dict[str, str], list[str]]:
    """(field -> Chinese message, messages that belong to no field of the form)."""
    by_field: dict[str, str] = {}
    other: list[str] = []
    names = set(form.fields) if form else set()
    for e in errors:
        top = e.field.split(".", 1)[0]
        if top in names:
            spec = form.fields[top] if form else None
            conditional = spec is not None and spec.required_if and e.reason.startswith("required when ")
            reason = (f"此情况下必填（{condition_text(spec.required_if, form, labels)}）"  # type: ignore[union-attr,arg-type]  # conditional: spec and its form are there
                      if conditional else zh(e.reason))
            by_field[top] = "；".join(filter(None, [by_field.get(top), reason]))
        else:
            other.append(f"{e.field}：{zh(e.reason)}")
    return by_field, other
