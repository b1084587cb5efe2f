"""A form as JSON Schema a client can render: the compiled model's schema plus the labels.

The schema comes from the same pydantic model that validates the data, so a client that
follows it sends what the engine accepts. Chinese labels become ``title``, a field's help
text its ``description``; enum option labels, the checklist items and conditional
requirements travel as ``x-option-labels``, ``x-items`` and ``x-required-if``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

from engine.spec.forms import FormSpec

NO_DATA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False,
                           "description": "This step takes no data."}


def _plain(value: Any) -> Any:
    """Decimals (form min/max) as JSON numbers; pydantic leaves them as Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def form_schema(form: Optional[FormSpec]) -> dict[str, Any]:
    if form is None:
        return dict(NO_DATA)
    schema = _plain(form.model.model_json_schema())
    schema["title"] = form.title
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    props = schema.get("properties", {})
    for name, f in form.fields.items():
        p = props.get(name)
        if p is None:
            continue
        p["title"] = f.label
        if f.help:
            p["description"] = f.help
        if f.option_labels:
            p["x-option-labels"] = dict(f.option_labels)
        if f.items:
            p["x-items"] = dict(f.items)
        if f.required_if:
            p["x-required-if"] = f.required_if
    return schema
