"""Forms: the typed data a person submits with an action, compiled to pydantic models.

A form file (``forms/*.yaml``) lists fields with a type, a Chinese label and whether they
are required. Each form is compiled once into a pydantic model, so validation errors come
back per field with a reason, and money stays ``Decimal`` (never float). A field may be
required only under a condition (``required_if: "method == 'visit'"`` — CBK-2: a visit
callback needs the owner's signature), checked after the types.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Callable, Literal, Optional, Union

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, ValidationError,
                      create_model, field_validator, model_validator)
from pydantic import AfterValidator, StringConstraints
from pydantic_core import ErrorDetails
from typing_extensions import Annotated

from engine.errors import FieldError, FormInvalid
from engine.instants import out_of_range
from engine.spec.expr import EvalError, ExprError, compile_expr

FieldType = Literal[
    "text", "integer", "money", "bool", "date", "datetime", "enum",
    "phone", "unit", "attachment", "signature", "checklist", "staff", "instance",
]
STAFF_ID_RE = r"^[a-z][a-z0-9_]{0,63}$"

# Mainland mobile numbers, or landlines with an optional area code and extension.
PHONE_RE = r"^(?:1[3-9]\d{9}|(?:0\d{2,3}-?)?\d{7,8}(?:-\d{1,6})?|400-?\d{3}-?\d{4})$"
# A unit is building-[entrance-]room, e.g. "3-1201" or "A2-1-502"; the building is the
# first segment, which is how "the steward of the unit's building" is found.
UNIT_RE = r"^[0-9A-Za-z]{1,8}(?:-[0-9A-Za-z]{1,8}){1,3}$"
REF_RE = r"^\S{1,500}$"


def building_of(unit: str | None) -> str | None:
    return unit.split("-", 1)[0] if unit else None


def instance_building(data: dict[str, Any]) -> str | None:
    """The building an instance sits in: its ``unit``'s. The one definition behind the
    stored ``instances.building`` column and the building-scoped permissions, so what a
    steward sees in their queue and what they may act on never disagree. None: no unit
    (an anonymous complaint, a meeting)."""
    unit = data.get("unit")
    return building_of(unit) if isinstance(unit, str) else None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChecklistItem(Strict):
    """One reviewed item of a checklist form field."""

    result: Literal["pass", "fail"]
    note: str = ""


class Evidence(Strict):
    """An uploaded file (a signature, a photo) as an ``attachment``/``signature`` field holds it:
    the file itself is kept outside the log, content-addressed by its SHA-256, so the hashed
    event pins exactly which bytes were shown."""

    filename: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]
    content_type: Annotated[str, StringConstraints(max_length=127)] = "application/octet-stream"


class FieldSpec(Strict):
    type: FieldType = Field(description="Value type of the field")
    label: str = Field(description="Label shown to staff (Chinese)")
    required: bool = Field(True, description="Must be given (unless required_if is set)")
    required_if: Optional[str] = Field(None, description="Expression: required when true")
    options: Optional[list[str]] = Field(None, description="Allowed values of an enum field")
    option_labels: Optional[dict[str, str]] = Field(None, description="Labels of enum options")
    items: Optional[dict[str, str]] = Field(None, description="Checklist items: key -> label")
    procedure: Optional[str] = Field(None, description="An instance field: the procedure the instance must be of")
    min: Optional[Decimal] = Field(None, description="Lowest allowed integer/money value")
    max: Optional[Decimal] = Field(None, description="Highest allowed integer/money value")
    max_length: int = Field(2000, description="Longest allowed text")
    default: Any = Field(None, description="Value used when the field is not given")
    help: str = Field("", description="A hint for the person filling the form")
    recordable: Optional[bool] = Field(
        None, description="May be changed with `sop record` without an action. Default: yes for the "
                          "start form's fields, no for decision fields (action forms, procedure fields)")

    @model_validator(mode="after")
    def _options_match_type(self) -> "FieldSpec":
        if self.type == "enum" and not self.options:
            raise ValueError("an enum field needs options")
        if self.type != "enum" and self.options:
            raise ValueError("options are only for enum fields")
        if self.type == "checklist" and not self.items:
            raise ValueError("a checklist field needs items")
        if (self.type == "instance") != (self.procedure is not None):
            raise ValueError("an instance field names its procedure (procedure: complaint), and only it")
        if self.required_if is not None:
            if self.required is False:
                raise ValueError("give either required: false or required_if, not both")
            compile_expr(self.required_if)
        return self

    def python_type(self) -> Any:
        t = self.type
        if t == "text":
            return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=self.max_length)]
        if t == "integer":
            return Annotated[int, Field(strict=False, ge=self.min, le=self.max)]
        if t == "money":
            return Annotated[Decimal, Field(ge=self.min, le=self.max, max_digits=14, decimal_places=2)]
        if t == "bool":
            return bool
        if t == "date":
            return Annotated[date, AfterValidator(_date_in_range)]
        if t == "datetime":
            return Annotated[AwareDatetime, AfterValidator(_time_in_range)]
        if t == "enum":
            return Literal[tuple(self.options or ())]
        if t == "phone":
            return Annotated[str, StringConstraints(strip_whitespace=True, pattern=PHONE_RE)]
        if t == "unit":
            return Annotated[str, StringConstraints(strip_whitespace=True, pattern=UNIT_RE)]
        if t in ("attachment", "signature"):
            # a reference (a paper file number, a URL) or an uploaded file (the web app's)
            return Union[Annotated[str, StringConstraints(strip_whitespace=True, pattern=REF_RE)], Evidence]
        if t == "staff":  # a person of the org file, checked against it when the step is decided
            return Annotated[str, StringConstraints(strip_whitespace=True, pattern=STAFF_ID_RE)]
        if t == "instance":  # an instance number, checked against the store when the step is taken
            return Annotated[int, Field(strict=False, ge=1)]
        if t == "checklist":
            keys = tuple(self.items or ())
            return dict[Literal[keys], ChecklistItem]  # type: ignore[valid-type]  # a Literal of the form's items, made at run time
        raise AssertionError(t)  # pragma: no cover


def _date_in_range(value: date) -> date:
    """Dates from 1900 to 2999: nearer the ends of Python's range, deadlines computed from a
    date would overflow (year 10000 is no year to Python)."""
    if not 1900 <= value.year <= 2999:
        raise ValueError(f"{value.isoformat()} is outside the years 1900–2999")
    return value


def _time_in_range(value: datetime) -> datetime:
    """Times as a command's ``--at`` may carry them (engine/instants.py)."""
    why = out_of_range(value)
    if why is not None:
        raise ValueError(f"{value.isoformat()} is {why}")
    return value


class FormSpec(Strict):
    """A form file: ``id``, a Chinese ``title`` and its ``fields``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Form id, used by procedures")
    title: str = Field(description="Form title (Chinese)")
    rules: list[str] = Field(default_factory=list, description="Rule IDs this form serves")
    fields: dict[str, FieldSpec] = Field(description="Field name -> field definition")

    @field_validator("fields")
    @classmethod
    def _field_names(cls, v: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"field name {name!r} must be snake_case")
        return v

    @cached_property
    def references(self) -> tuple[tuple[str, FieldSpec], ...]:
        """The fields that name a person or an instance, checked against the org and the
        store when a step is taken (most forms have none: the check then costs nothing)."""
        return tuple((n, f) for n, f in self.fields.items() if f.type in ("staff", "instance"))

    @cached_property
    def model(self) -> type[BaseModel]:
        """The compiled pydantic model (built once per form)."""
        defs: dict[str, Any] = {}
        for name, f in self.fields.items():
            t = f.python_type()
            if f.required and f.required_if is None and f.default is None:
                defs[name] = (t, Field(title=f.label))
            else:
                defs[name] = (Optional[t], Field(f.default, title=f.label))
        return create_model(
            f"Form_{self.id}", __config__=ConfigDict(extra="forbid"), **defs
        )

    @cached_property
    def _compiled(self) -> tuple[Callable[[Any], BaseModel], Callable[[BaseModel], dict[str, Any]]]:
        """The model's own core validator and JSON-mode serialiser, taken once per form:
        what ``model_validate`` and ``model_dump(mode="json")`` call, without their
        per-call wrapping (same values, same ValidationError, a third of the time)."""
        model = self.model
        validate = model.__pydantic_validator__.validate_python
        serialise = model.__pydantic_serializer__.to_python
        return validate, lambda obj: serialise(obj, mode="json")

    def validate_data(self, data: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate submitted data; return it as JSON-ready values or raise FormInvalid.

        ``context`` (the instance data) lets ``required_if`` refer to earlier answers.
        """
        if not isinstance(data, dict):
            raise FormInvalid(self.id, [FieldError("(data)", "must be a JSON object")])
        validate, to_json = self._compiled
        try:
            obj = validate(data)
        except ValidationError as e:
            raise FormInvalid(self.id, self._errors(e, data)) from None
        values = to_json(obj)
        if self._conditional:
            missing = self._conditional_missing(obj.model_dump(), context or {})
            if missing:
                raise FormInvalid(self.id, missing)
        return {k: v for k, v in values.items() if v is not None or k in data}

    def _errors(self, e: ValidationError, data: dict[str, Any]) -> list[FieldError]:
        """Field errors, one per attachment/signature field (its two alternative types would
        each report why the value is not that one)."""
        out: list[FieldError] = []
        seen: set[str] = set()
        for err in e.errors():
            loc = err.get("loc", ())
            spec = self.fields.get(str(loc[0])) if loc else None
            if spec is not None and spec.type in ("attachment", "signature") and err.get("type") != "missing":
                name = str(loc[0])
                if name not in seen:
                    seen.add(name)
                    value = data.get(name)
                    out.append(FieldError(name, "not a file reference or an uploaded file"
                                          + ("" if isinstance(value, (str, dict)) else f" ({value!r})")))
                continue
            out.append(_field_error(err))
        return out

    @cached_property
    def _conditional(self) -> list[tuple[str, FieldSpec]]:
        """The fields with a ``required_if`` (most forms have none: nothing to evaluate)."""
        return [(name, f) for name, f in self.fields.items() if f.required_if]

    def _conditional_missing(self, values: dict[str, Any], context: dict[str, Any]) -> list[FieldError]:
        errors = []
        scope = {**context, **values}
        for name, f in self._conditional:
            if values.get(name) in (None, ""):
                try:
                    needed = _compiled_condition(f.required_if).evaluate(scope)
                except (ExprError, EvalError) as e:
                    errors.append(FieldError(name, f"required_if could not be evaluated: {e}"))
                    continue
                if needed:
                    errors.append(FieldError(name, f"required when {f.required_if} ({f.label})"))
        return errors


@lru_cache(maxsize=1024)
def _compiled_condition(source: str) -> Any:
    """A ``required_if`` compiled once per text instead of once per submitted form: parsing
    and checking it cost more than validating the rest of a start form (a bulk start
    validates thousands). An expression that does not compile raises every time, as before."""
    return compile_expr(source)


def _field_error(err: ErrorDetails) -> FieldError:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(data)"
    kind = err.get("type", "")
    if kind == "missing":
        return FieldError(loc, "required")
    if kind == "extra_forbidden":
        return FieldError(loc, "unknown field")
    if kind == "string_pattern_mismatch":
        return FieldError(loc, f"not a valid value ({err.get('input')!r})")
    return FieldError(loc, err.get("msg", "invalid"))
