"""Turn pydantic validation errors into located issues (``file:line:col: path: message``)."""
from __future__ import annotations

import difflib
from typing import Iterable

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from engine.errors import Issue
from engine.spec.yamlio import Positions


def issues_from_validation(e: ValidationError, pos: Positions,
                           model: type[BaseModel] | None = None) -> list[Issue]:
    out = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        kind = err["type"]
        if kind == "extra_forbidden":
            key = loc[-1] if loc else "?"
            out.append(pos.issue(loc, f"unknown key {key!r}", key=True,
                                 hint=_did_you_mean(str(key), _siblings(model, loc))))
        elif kind == "missing":
            out.append(pos.issue(loc[:-1], f"missing required key {loc[-1]!r}"))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            out.append(pos.issue(loc, msg))
    return _dedupe(out)


def _is_union_tag(part: object) -> bool:
    # pydantic adds union member names like 'list[str]' or "literal['*']" to locations
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _siblings(model: type[BaseModel] | None, loc: tuple) -> Iterable[str]:
    if model is None or len(loc) == 0:
        return ()
    current: object = model
    for part in loc[:-1]:
        # list indexes and dict keys leave us on the same (item) model
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = _field_named(current, part)
            if field is not None:
                current = _inner_model(field.annotation)
        if current is None:
            return ()
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return ()


def _field_named(model: type[BaseModel], name: str) -> FieldInfo | None:
    for n, f in model.model_fields.items():
        if name in (n, f.alias):
            return f
    return None


def _inner_model(annotation: object) -> object:
    import typing
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in args:
        found = _inner_model(a)
        if found is not None:
            return found
    return None


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {match[0]!r}?" if match else ""


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen, out = set(), []
    for i in issues:
        if str(i) not in seen:
            seen.add(str(i))
            out.append(i)
    return out
