"""A form is validated by its model's core validator and serialiser, taken once per form
(engine/spec/forms.py ``FormSpec._compiled``): for every shipped form the values and the
FormInvalid field errors are those of ``model_validate`` + ``model_dump(mode="json")``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.errors import FormInvalid
from engine.spec.forms import FormSpec
from engine.spec.yamlio import load_file

FORMS = sorted((Path(__file__).resolve().parents[1] / "forms").glob("*.yaml"))
SAMPLES: dict[str, Any] = {"text": "已处理", "integer": "12", "money": "1280.5", "bool": "yes", "date": "2025-10-14",
                           "datetime": "2025-10-14T09:00:00+08:00", "phone": "13900000001", "unit": "3-1-502",
                           "attachment": "doc:1", "signature": "sig:wang", "staff": "wang_li", "instance": 3}


def _inputs(form: FormSpec) -> list[dict[str, Any]]:
    """Empty, plausible, wrong-typed, and with an unknown field."""
    plausible = {n: (f.options[0] if f.options else SAMPLES.get(f.type, {})) for n, f in form.fields.items()}
    wrong = {n: [1, 2] for n in form.fields}
    return [{}, plausible, wrong, {**plausible, "no_such_field": 1}]


def _by_model(form: FormSpec, data: dict[str, Any]) -> Any:
    try:
        return form.model.model_validate(data).model_dump(mode="json")
    except ValidationError as e:
        return [(str(fe.field), fe.reason) for fe in form._errors(e, data)]


@pytest.mark.parametrize("path", FORMS, ids=lambda p: p.stem)
def test_a_compiled_form_gives_the_models_values_and_field_errors(path: Path) -> None:
    raw, _ = load_file(path)
    form = FormSpec.model_validate(raw)
    validate, to_json = form._compiled
    for data in _inputs(form):
        expected = _by_model(form, data)
        try:
            got: Any = to_json(validate(data))
        except ValidationError as e:
            got = [(str(fe.field), fe.reason) for fe in form._errors(e, data)]
        assert got == expected
        if isinstance(expected, list):  # the user-facing refusal names the same fields and reasons
            with pytest.raises(FormInvalid) as refused:
                form.validate_data(data)
            assert [(fe.field, fe.reason) for fe in refused.value.errors] == expected
