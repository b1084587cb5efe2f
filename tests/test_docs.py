"""The docs are run: every YAML example of ``docs/procedures.md`` is loaded, linted or executed.

A fenced block takes part when its first line is a marker comment:

``# doc-test: file PATH``       a file of the example folder (procedures/…, forms/…, org.yaml);
                                the folder must lint clean against its own org file
``# doc-test: fragment PATH``   an excerpt: its lines appear, in order, in that example file
``# doc-test: lint PATH``       a broken file, linted alone in a copy of the example folder; the
                                next ```text block is the exact output of ``sop lint PATH``
``# doc-test: loads``           loaded with the strict loader; the next ```text block is the
                                Python value, or the error line
``# doc-test: expressions``     a list of {expr, data, value} or {expr, error} cases
``# doc-test: run``             (a ```sh block) ``sop`` commands run in the example folder;
                                ``# refused: TEXT`` after a command expects exit 1 with TEXT
``# doc-test: change``          the same, on a fresh example folder, where ``# edit: FILE OLD NEW``
                                renames the word OLD to NEW in FILE and ``$OLD`` is the version
                                instance 1 was on before the first edit

``ARCHITECTURE.md`` must name only modules that exist.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from cli import main
from engine.errors import ProcedureError
from engine.spec.expr import ExprError, compile_expr
from engine.spec.forms import FieldSpec, FormSpec
from engine.spec.models import (ActionSpec, AssignSpec, EffectSpec, NotifySpec, ProcedureSpec, QuotaSpec, ReportSpec,
                               SpawnSpec, StartSpec, StateSpec)
from engine.spec.org import OrgSpec, Site, Staff
from engine.spec.yamlio import loads

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "procedures.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
MARKER = re.compile(r"^# doc-test: (\w+)(?: (\S+))?\n")


@dataclass
class Block:
    lang: str
    kind: str
    path: str
    body: str          # with the marker line: line numbers count from it, as the reader sees them
    expected: str      # the ```text block right after a lint/loads example
    line: int          # where the block starts in the doc


def blocks(text: str) -> list[Block]:
    found = list(FENCE.finditer(text))
    out = []
    for n, m in enumerate(found):
        marker = MARKER.match(m.group(2))
        if not marker:
            continue
        kind, path = marker.group(1), marker.group(2) or ""
        expected = ""
        if kind in ("lint", "loads"):
            nxt = found[n + 1] if n + 1 < len(found) else None
            assert nxt and nxt.group(1) == "text" and text[m.end():nxt.start()].strip() == "", \
                f"docs/procedures.md:{text[:m.start()].count(chr(10)) + 1}: a {kind} example needs a ```text block next"
            expected = nxt.group(2)
        out.append(Block(m.group(1), kind, path, m.group(2), expected, text[:m.start()].count("\n") + 1))
    return out


DOC_TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = blocks(DOC_TEXT)


def of(kind: str) -> list[Block]:
    return [b for b in BLOCKS if b.kind == kind]


def ids(bs: list[Block]) -> list[str]:
    return [f"line{b.line}-{b.path or b.kind}" for b in bs]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The example folder of the doc: procedures/, forms/ and org.yaml."""
    for b in of("file"):
        p = tmp_path / b.path
        p.parent.mkdir(parents=True, exist_ok=True)
        assert not p.exists(), f"{b.path} is given twice"
        p.write_text(b.body, encoding="utf-8")
    return tmp_path


@pytest.fixture
def sop(folder: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(folder)
    env = {"SOP_DB": f"sqlite:///{folder / 'sop.db'}", "SOP_PROCEDURES": "procedures", "SOP_ORG": "org.yaml"}
    runner = CliRunner(env=env)
    return lambda argv: runner.invoke(main, argv)


# ------------------------------------------------------------------ the example folder

def test_the_doc_has_examples_of_every_kind() -> None:
    kinds = {b.kind for b in BLOCKS}
    assert kinds == {"file", "fragment", "lint", "loads", "expressions", "run", "change"}
    assert {b.path for b in of("file")} >= {"org.yaml", "procedures/key_loan.yaml", "forms/key_return.yaml"}


def test_the_example_folder_lints_clean(sop) -> None:  # type: ignore[no-untyped-def]
    r = sop(["lint"])
    assert (r.exit_code, r.output) == (0, "")


def test_the_example_org_file_loads(folder: Path) -> None:
    from engine.spec.org import load_org
    org = load_org(folder / "org.yaml")
    assert org.steward_of_building("3") == "chen_jing"


@pytest.mark.parametrize("block", of("fragment"), ids=ids(of("fragment")))
def test_fragment_is_an_excerpt_of_its_example_file(block: Block) -> None:
    files = {b.path: b.body for b in of("file")}
    assert block.path in files, f"fragment of unknown example file {block.path}"
    lines = [ln.strip() for ln in files[block.path].splitlines()]
    pos = 0
    for want in (ln.strip() for ln in block.body.splitlines()[1:] if ln.strip()):
        try:
            pos = lines.index(want, pos) + 1
        except ValueError:
            pytest.fail(f"docs/procedures.md:{block.line}: {want!r} is not (in this order) in {block.path}")


def test_the_tour_runs(sop) -> None:  # type: ignore[no-untyped-def]
    (run,) = of("run")
    commands = [ln for ln in run.body.splitlines()[1:] if ln.strip() and not ln.startswith("#")]
    assert commands
    for line in commands:
        command, _, refusal = line.partition("# refused:")
        argv = shlex.split(command)
        assert argv[0] == "sop"
        r = sop(argv[1:])
        assert "Traceback" not in r.output
        if refusal.strip():
            assert r.exit_code == 1 and refusal.strip() in r.stderr, f"{line}\n{r.output}"
        else:
            assert r.exit_code == 0, f"{line}\n{r.output}"


def test_changing_a_procedure_runs(sop, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """docs/procedures.md, "Changing a procedure": what-if replay, then migrate."""
    import json

    (change,) = of("change")
    old = None
    for line in change.body.splitlines()[1:]:
        if line.startswith("# edit: "):
            path, word, new = line.removeprefix("# edit: ").split()
            if old is None:
                old = json.loads(sop(["--json", "show", "1"]).stdout)["version"]
            target = folder / path
            target.write_text(re.sub(rf"\b{word}\b", new, target.read_text(encoding="utf-8")), encoding="utf-8")
            continue
        if not line.strip() or line.startswith("#"):
            continue
        command, _, refusal = line.partition("# refused:")
        argv = [old if a == "$OLD" else a for a in shlex.split(command)]
        assert argv[0] == "sop"
        r = sop(argv[1:])
        assert "Traceback" not in r.output
        if refusal.strip():
            assert r.exit_code == 1 and refusal.strip() in r.stderr, f"{line}\n{r.output}"
        else:
            assert r.exit_code == 0, f"{line}\n{r.output}"
        if argv[1:3] == ["replay", "--with"]:
            assert "#1" in r.stdout and "state lent→on_loan" in r.stdout, r.stdout
        if argv[1] == "show":
            assert json.loads(sop(["--json", "show", "1"]).stdout)["state"] == "on_loan"


# ------------------------------------------------------------------ lint examples

@pytest.mark.parametrize("block", of("lint"), ids=ids(of("lint")))
def test_lint_example_gives_the_documented_output(block: Block, sop, folder: Path) -> None:  # type: ignore[no-untyped-def]
    target = folder / block.path
    assert not target.exists(), f"{block.path} would overwrite an example file"
    target.write_text(block.body, encoding="utf-8")
    r = sop(["lint", block.path])
    assert r.exit_code == 1
    assert r.stdout == block.expected, f"docs/procedures.md:{block.line}"


def _pattern(heading: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"<[^>]+>", ".+?", re.escape(heading).replace(r"\<", "<").replace(r"\>", ">"))
                      + r"(?: \(.*\))?")


def documented_messages() -> list[re.Pattern[str]]:
    section = DOC_TEXT.split("\n## Lint messages\n", 1)[1].split("\n## ", 1)[0]
    return [_pattern(h) for h in re.findall(r"^### `(.+)`$", section, re.M)]


def _message(line: str) -> str:
    rest = re.sub(r"^.+?:\d+:\d+: ", "", line)
    return re.sub(r"^[\w.\[\]]+: (?=\S)", "", rest, count=1) if not rest.startswith("YAML") else rest


def test_every_lint_message_of_the_golden_files_is_documented() -> None:
    patterns = documented_messages()
    golden = ROOT / "tests" / "golden" / "lint"
    lines = [ln for f in sorted(golden.glob("*.txt")) for ln in f.read_text(encoding="utf-8").splitlines()]
    lines += [ln for b in of("lint") for ln in b.expected.splitlines()]
    undocumented = sorted({_message(ln) for ln in lines if not any(p.fullmatch(_message(ln)) for p in patterns)})
    assert undocumented == [], "add these to '## Lint messages' in docs/procedures.md"


# ------------------------------------------------------------------ loader and expressions

@pytest.mark.parametrize("block", of("loads"), ids=ids(of("loads")))
def test_loader_example(block: Block) -> None:
    try:
        got = repr(loads(block.body, "example.yaml")[0])
    except ProcedureError as e:
        got = str(e)
    assert got == block.expected.strip(), f"docs/procedures.md:{block.line}"


def test_expression_examples() -> None:
    cases: list[dict[str, Any]] = [c for b in of("expressions") for c in loads(b.body)[0]]
    assert len(cases) >= 10
    for case in cases:
        if "error" in case:
            with pytest.raises(ExprError) as e:
                compile_expr(case["expr"])
            assert case["error"] in str(e.value), case
        else:
            assert compile_expr(case["expr"]).evaluate(case.get("data", {})) == case["value"], case


# ------------------------------------------------------------------ completeness

SECTIONS = {ProcedureSpec: "## Procedure files", StartSpec: "### `start`", StateSpec: "### `states`",
            ActionSpec: "### `actions`", EffectSpec: "## Effects", AssignSpec: "### `assign`",
            NotifySpec: "### `notify`", SpawnSpec: "### `spawn`", FormSpec: "## Form files",
            FieldSpec: "## Form files", OrgSpec: "## The organisation file", Site: "## The organisation file",
            Staff: "## The organisation file", ReportSpec: "## Reports", QuotaSpec: "## Quotas"}


def section(heading: str) -> str:
    """The doc's text under ``heading``, up to the next heading of level 2 or 3."""
    start = DOC_TEXT.index(f"\n{heading}\n") + len(heading) + 2
    nxt = re.search(r"^#{2,3} ", DOC_TEXT[start:], re.M)
    return DOC_TEXT[start:start + nxt.start()] if nxt else DOC_TEXT[start:]


@pytest.mark.parametrize("model", list(SECTIONS), ids=[m.__name__ for m in SECTIONS])
def test_every_key_is_documented_in_its_section(model: type) -> None:
    text = section(SECTIONS[model])
    keys = [f.alias or name for name, f in model.model_fields.items()]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert missing == [], f"{model.__name__}: document these keys under {SECTIONS[model]!r} in docs/procedures.md"


def test_every_name_and_function_of_expressions_is_documented() -> None:
    from engine.spec.checks import INSTANCE_NAMES
    from engine.spec.expr import _FUNCTIONS
    text = section("## Expressions")
    missing = [n for n in sorted(INSTANCE_NAMES | set(_FUNCTIONS)) if f"`{n}" not in text]
    assert missing == [], "document these under '## Expressions' in docs/procedures.md"


def test_every_field_type_is_documented_and_used_in_the_examples() -> None:
    from typing import get_args
    from engine.spec.forms import FieldType
    used = {f.type for b in of("file") if b.path.startswith("forms/")
            for f in FormSpec.model_validate(loads(b.body)[0]).fields.values()}
    for t in get_args(FieldType):
        assert f"`{t}`" in DOC_TEXT
        assert t in used, f"no example form uses type {t}"


def test_deadlines_and_timers_point_to_the_working_time_reference() -> None:
    section = DOC_TEXT.split("\n## Deadlines and timers\n", 1)[1].split("\n## ", 1)[0]
    assert "docs/working-time.md" in section


# ------------------------------------------------------------------ ARCHITECTURE.md

def test_architecture_names_only_modules_that_exist() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:engine|adapters|tests|tools|procedures|forms|org|schemas|docs)/[\w./*-]*|cli\.py)`",
                           text))
    assert len(named) > 20
    missing = sorted(p for p in named if not any(ROOT.glob(p.rstrip("/"))))
    assert missing == [], "ARCHITECTURE.md names files that do not exist"
