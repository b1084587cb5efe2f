"""The strict YAML loader: YAML 1.2 scalars only, no duplicate keys, no anchors, no tags, a size cap.

Process owners edit these files by hand; each test below is a way a stock ``yaml.safe_load``
would silently change what they wrote (conventions.md, "Beware YAML 1.1 booleans").
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from engine.errors import ProcedureError
from engine.spec import yamlio
from engine.spec.yamlio import MAX_BYTES, load_file, loads


def load(text: str):  # type: ignore[no-untyped-def]
    return loads(text, "t.yaml")[0]


def refusal(text: str) -> str:
    with pytest.raises(ProcedureError) as e:
        loads(text, "t.yaml")
    assert len(e.value.issues) == 1
    return str(e.value.issues[0])


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "OFF", "Yes", "NO"])
def test_yaml_11_booleans_stay_strings(word: str) -> None:
    assert load(f"value: {word}\n{word}: key") == {"value": word, word: "key"}


@pytest.mark.parametrize("word, value", [("true", True), ("false", False), ("True", True), ("FALSE", False)])
def test_only_true_and_false_are_booleans(word: str, value: bool) -> None:
    assert load(f"v: {word}") == {"v": value}


@pytest.mark.parametrize("text", ["9:00", "09:00", "18:30", "1:30:00", "190:20:30"])
def test_sexagesimal_times_stay_strings(text: str) -> None:
    # PyYAML's YAML 1.1 resolver turns 9:00 into the integer 540.
    assert load(f"at: {text}") == {"at": text}


@pytest.mark.parametrize("text", ["2025-09-30", "2025-09-30T17:55:00+08:00", "2025-09-30 17:55"])
def test_dates_and_times_stay_strings_for_the_models_to_parse(text: str) -> None:
    assert load(f"d: {text}") == {"d": text}


@pytest.mark.parametrize("text, value", [
    ("12", 12), ("-3", -3), ("012", 12), ("0x1f", 31), ("0o17", 15), ("1.5", 1.5), ("~", None), ("null", None),
    ("", None), ("1_000", "1_000"), ("0b101", "0b101"), ("'on'", "on"), ('"9:00"', "9:00"),
])
def test_yaml_12_core_scalars(text: str, value: object) -> None:
    assert load(f"v: {text}") == {"v": value}


def test_duplicate_key_is_refused_with_both_lines() -> None:
    msg = refusal("id: a\ntitle: x\nid: b\n")
    assert msg == "t.yaml:3:1: id: duplicate key 'id' (first defined at line 1)"


def test_duplicate_key_in_a_nested_flow_mapping_is_refused() -> None:
    assert refusal("states:\n  open: {title: a, title: b}\n") == \
        "t.yaml:2:20: states.open.title: duplicate key 'title' (first defined at line 2)"


def test_keys_that_only_differ_in_quoting_are_duplicates() -> None:
    assert "duplicate key '1'" in refusal('1: a\n"1": b\n')


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: &x [1, 2]\n", "base: &b {k: 1}\nother:\n  <<: *b\n"])
def test_anchors_and_aliases_are_refused(text: str) -> None:
    assert "anchors and aliases (&name, *name) are not allowed" in refusal(text)


def test_a_billion_laughs_is_refused_before_it_expands() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    assert "anchors and aliases" in refusal("\n".join(lines))


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system [ls]", "a: !!binary aGk=", "a: !custom x",
                                  "a: !!set {x}", "a: !!timestamp 2025-01-01"])
def test_tags_are_refused(text: str) -> None:
    assert "is not allowed" in refusal(text)


def test_complex_keys_are_refused() -> None:
    assert refusal("? [a, b]\n: 1\n") == "t.yaml:1:3: mapping keys must be plain scalars"


def test_more_than_one_document_is_refused() -> None:
    assert "YAML syntax" in refusal("a: 1\n---\nb: 2\n")


def test_syntax_error_names_line_column_and_where_the_construct_began() -> None:
    assert refusal("start:\n  roles: [front_desk\nstates: {}\n") == \
        "t.yaml:3:7: YAML syntax: expected ',' or ']', but got ':' (while parsing a flow sequence at line 2)"


def test_oversized_text_is_refused() -> None:
    assert refusal("x: " + "a" * MAX_BYTES) == f"t.yaml:1:1: file is larger than {MAX_BYTES // 1024} KiB"


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x: " + b"a" * MAX_BYTES)

    def no_read(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("an oversized file must be refused on its size, not read")

    monkeypatch.setattr(Path, "read_text", no_read)
    with pytest.raises(ProcedureError, match="larger than 512 KiB"):
        load_file(big)


def test_a_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text("x: " + "a" * (MAX_BYTES - 10), encoding="utf-8")
    assert len(load_file(ok)[0]["x"]) == MAX_BYTES - 10


def test_non_utf8_and_missing_files_are_located_refusals(tmp_path: Path) -> None:
    bad = tmp_path / "gbk.yaml"
    bad.write_bytes("标题: 投诉".encode("gbk"))
    with pytest.raises(ProcedureError, match="not valid UTF-8"):
        load_file(bad)
    with pytest.raises(ProcedureError, match="cannot read file"):
        load_file(tmp_path / "missing.yaml")


def test_positions_locate_keys_and_values() -> None:
    data, pos = loads("states:\n  open:\n    title: 待处理\nactions:\n  - name: go\n", "t.yaml")
    assert data["actions"][0]["name"] == "go"
    assert pos.of(("states", "open"), key=True) == (2, 3)
    assert pos.of(("states", "open", "title")) == (3, 12)
    assert pos.of(("actions", 0, "name")) == (5, 11)
    # an unknown path falls back to its nearest located parent
    assert pos.of(("actions", 0, "roles", 3)) == (5, 5)
    assert yamlio.dotted(("actions", 0, "roles", 3)) == "actions[0].roles[3]"


PROCEDURE_WITH_YAML11_WORDS = """\
id: switch
title: 开关
start:
  state: off
  roles: [front_desk]
states:
  off:
    title: 关
  on:
    title: 开
    kind: final
actions:
  - name: "yes"
    title: 打开
    from: off
    to: on
    roles: [front_desk]
"""


def test_state_names_on_and_off_survive_into_a_procedure(tmp_path: Path, runner) -> None:  # type: ignore[no-untyped-def]
    procs = tmp_path / "procedures"
    procs.mkdir()
    (procs / "switch.yaml").write_text(PROCEDURE_WITH_YAML11_WORDS, encoding="utf-8")
    r = runner.invoke(main, ["lint", str(procs / "switch.yaml")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["--procedures", str(procs), "graph", "switch"])
    assert r.exit_code == 0, r.output
    assert "off --> on : yes (打开)" in r.stdout


_SHIPPED = sorted(p for d in ("procedures", "forms", "org") for p in (Path(__file__).parents[1] / d).glob("*.yaml"))


@pytest.mark.parametrize("path", _SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_libyaml_and_the_reference_loader_give_the_same_values_and_positions(path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Library loading goes through libyaml (PyYAML's wheels carry it); lint positions must not move."""
    assert yamlio._CParser is not None
    text = path.read_text(encoding="utf-8")
    fast_value, fast_pos = loads(text, str(path))
    monkeypatch.setattr(yamlio, "_CParser", None)
    ref_value, ref_pos = loads(text, str(path))
    assert fast_value == ref_value
    assert (fast_pos.values, fast_pos.keys) == (ref_pos.values, ref_pos.keys)


def test_anchors_are_refused_on_the_libyaml_path_too() -> None:
    text = "a: &first 1\nb: *first\n"
    with pytest.raises(ProcedureError, match="anchors and aliases"):
        loads(text)
