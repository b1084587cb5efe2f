"""JSON Schema of the procedure and form files, from the same pydantic models that load them,
so editors (yaml-language-server) validate and autocomplete exactly what the engine accepts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.spec.forms import FormSpec
from engine.spec.models import ProcedureSpec

SCHEMAS = {"procedure.schema.json": ProcedureSpec, "form.schema.json": FormSpec}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    s = model.model_json_schema(by_alias=True, mode="validation")
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    _single_source_state(s)
    return s


def _single_source_state(s: dict[str, Any]) -> None:
    """``from: received`` is accepted (a before-validator wraps it in a list) but pydantic's
    schema only shows ``"*"`` or a list; say what the parser really accepts."""
    source = s.get("$defs", {}).get("ActionSpec", {}).get("properties", {}).get("from")
    if source is not None and {"type": "string"} not in source.get("anyOf", [{"type": "string"}]):
        source["anyOf"] = [{"type": "string"}, {"items": {"type": "string"}, "type": "array"}]


def render(model: type) -> str:
    return json.dumps(schema_of(model), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, model in SCHEMAS.items():
        path = folder / name
        path.write_text(render(model), encoding="utf-8")
        out.append(path)
    return out
