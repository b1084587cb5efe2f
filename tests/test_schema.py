"""``sop schema``: the JSON Schema editors use must be exactly what the parser accepts, and never drift.

The committed ``schemas/*.json`` are generated files. If a model in ``engine/spec`` changes,
regenerate them with ``sop schema --out schemas`` and commit the result with the change.
They are compared by meaning, not by bytes: the same JSON value once the spelling that
differs between pydantic releases is set aside (2.14 dropped the ``pattern`` it used to
write for decimals given as strings; the parser checks those itself).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from engine.spec.schema import SCHEMAS as MODELS
from engine.spec.schema import schema_of
from engine.spec.yamlio import load_file

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
MODELINE = "# yaml-language-server: $schema=../schemas/{kind}.schema.json"
SHIPPED = [("procedure", p) for p in sorted((ROOT / "procedures").glob("*.yaml"))] + \
          [("form", p) for p in sorted((ROOT / "forms").glob("*.yaml"))]
REGENERATE = "schemas/ is stale: run `sop schema --out schemas` and commit the result"
DECIMAL_STRING_PATTERN = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"


def meaning(text: str) -> object:
    """A schema as a JSON value, without what only a pydantic release changes."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()
                    if not (k == "pattern" and v == DECIMAL_STRING_PATTERN and node.get("type") == "string")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads(text))


@pytest.mark.parametrize("kind", ["procedure", "form"])
def test_committed_schema_equals_what_sop_schema_prints(runner, kind: str) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["schema", kind])
    assert r.exit_code == 0, r.output
    assert meaning(r.stdout) == meaning((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8")), REGENERATE


def test_sop_schema_out_writes_the_committed_files(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["schema", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    written = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert written == sorted(p.name for p in SCHEMAS.glob("*.json")) == ["form.schema.json", "procedure.schema.json"]
    for name in written:
        written_text = (tmp_path / "s" / name).read_text(encoding="utf-8")
        assert written_text.endswith("}\n")
        assert meaning(written_text) == meaning((SCHEMAS / name).read_text(encoding="utf-8")), REGENERATE


def test_sop_schema_defaults_to_the_procedure_schema(runner) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["schema"])
    s = json.loads(r.stdout)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["title"] == "ProcedureSpec"
    assert {"id", "title", "start", "states", "actions"} <= set(s["properties"])
    assert s["additionalProperties"] is False


@pytest.mark.parametrize("kind, path", SHIPPED, ids=[p.name for _, p in SHIPPED])
def test_shipped_yaml_carries_the_modeline(kind: str, path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE.format(kind=kind)


@pytest.mark.parametrize("kind, path", SHIPPED, ids=[p.name for _, p in SHIPPED])
def test_shipped_yaml_validates_against_its_schema(kind: str, path: Path) -> None:
    import jsonschema  # declared in [test]: missing, it fails rather than skips
    schema = schema_of(MODELS[f"{kind}.schema.json"])  # staleness of schemas/ is the tests above
    data, _ = load_file(path)
    jsonschema.Draft202012Validator(schema).validate(data)


def test_schema_and_parser_agree_on_unknown_keys() -> None:
    """What the linter calls an unknown key, the editor underlines too, and the reverse."""
    import jsonschema  # declared in [test]: missing, it fails rather than skips
    schema = schema_of(MODELS["procedure.schema.json"])
    validator = jsonschema.Draft202012Validator(schema)
    fixtures = ROOT / "tests" / "fixtures" / "lint" / "procedures"
    clean, _ = load_file(fixtures / "clean.yaml")
    assert list(validator.iter_errors(clean)) == []
    typo, _ = load_file(fixtures / "unknown_key.yaml")
    messages = " ".join(e.message for e in validator.iter_errors(typo))
    assert "'onwer' was unexpected" in messages
    assert "'roles' is a required property" in messages


def test_schema_accepts_a_single_source_state_like_the_parser() -> None:
    import jsonschema  # declared in [test]: missing, it fails rather than skips
    v = jsonschema.Draft202012Validator(schema_of(MODELS["procedure.schema.json"]))
    base = {"id": "p", "title": "t", "start": {"state": "a", "roles": ["r"]},
            "states": {"a": {"title": "a"}, "b": {"title": "b", "kind": "final"}}}
    for source in ("a", ["a"], "*"):
        action = {"name": "go", "title": "走", "from": source, "to": "b", "roles": ["r"]}
        assert list(v.iter_errors({**base, "actions": [action]})) == []
    action = {"name": "go", "title": "走", "from": 3, "to": "b", "roles": ["r"]}
    assert list(v.iter_errors({**base, "actions": [action]}))


def test_comparing_by_meaning_still_sees_a_changed_schema() -> None:
    committed = (SCHEMAS / "procedure.schema.json").read_text(encoding="utf-8")
    changed = json.loads(committed)
    changed["required"] = [*changed["required"], "owner_name"]
    assert meaning(json.dumps(changed, indent=4)) != meaning(committed)
    assert meaning(json.dumps(json.loads(committed), indent=4, sort_keys=True)) == meaning(committed)
