"""The procedure library: every procedure and form of a directory, checked and versioned.

Loading collects every problem of every file, so ``sop lint`` reports the whole picture.
Each problem is charged to the procedure it belongs to (a broken form to every procedure
that uses it): that procedure is *disabled* (``Library.disabled``) and every other one
keeps working; a command that needs a disabled procedure is refused with its problems
(``ProcedureDisabled``). A procedure's *version* is the hash of its normalised
content together with the forms it uses: editing either gives a new version, while
running instances stay on the snapshot they were started with.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, TypeVar

from pydantic import BaseModel, ValidationError
from transitions import Machine

from engine.errors import Issue, ProcedureDisabled, ProcedureError
from engine.shipped import data_root
from engine.spec import checks
from engine.spec.expr import Expr, compile_expr
from engine.spec.forms import FieldSpec, FormSpec
from engine.spec.models import ActionSpec, ProcedureSpec
from engine.spec.validation import issues_from_validation
from engine.spec.yamlio import Positions, load_file

SHIPPED_ROOT = data_root()


@dataclass
class CompiledProcedure:
    """One version of a procedure, ready to run: spec, forms, hash and transition table."""

    spec: ProcedureSpec
    forms: dict[str, FormSpec]

    @cached_property
    def snapshot(self) -> dict[str, Any]:
        return {
            "procedure": self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            "forms": {k: f.model_dump(mode="json", exclude_defaults=True) for k, f in sorted(self.forms.items())},
        }

    @cached_property
    def snapshot_json(self) -> str:
        return json.dumps(self.snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @cached_property
    def version(self) -> str:
        return hashlib.sha256(self.snapshot_json.encode("utf-8")).hexdigest()[:16]

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def fields(self) -> dict[str, FieldSpec]:
        return checks.field_types(self.spec, self.forms)

    @cached_property
    def reads_links(self) -> bool:
        """Whether an action's guard reads the linked instances (checks.LINK_NAMES)."""
        return bool(self.link_actions)

    @cached_property
    def link_actions(self) -> frozenset[str]:
        """The actions whose condition or guards read the linked instances
        (checks.LINK_NAMES), worked out once per version: only a command taking one of
        them needs the linked instances read."""
        return frozenset(a.name for a in self.spec.actions
                         if any(self.expr(w).names() & checks.LINK_NAMES
                                for w in [a.when, *(g.when for g in a.guards)] if w))

    @cached_property
    def machine(self) -> Machine:
        """A stateless transition table (the `transitions` package) for this version.

        No models are attached: one Machine per version answers "where does action A lead
        from state S", so its cost does not grow with the number of instances.
        """
        spec = self.spec
        table = [
            {"trigger": a.name, "source": s, "dest": a.to}
            for a in spec.actions for s in a.sources(spec.states)
        ]
        return Machine(model=None, states=list(spec.states), transitions=table,
                       initial=spec.start.state, auto_transitions=False)

    @cached_property
    def branch_states(self) -> dict[str, tuple[str, str]]:
        """Each state of a parallel branch -> (its parallel state, its branch)."""
        from engine.spec.parallel import branch_map
        return branch_map(self.spec)

    @cached_property
    def _actions_by_key(self) -> dict[tuple[str, str], ActionSpec]:
        return {(a.name, s): a for a in self.spec.actions for s in a.sources(self.spec.states)}

    def action(self, name: str, state: str) -> ActionSpec | None:
        """The action ``name`` as it applies from ``state`` (None if not from there).

        The transition table answers once per (action, state); the answer is remembered,
        since every command and every replayed action asks it (a version never changes).
        """
        memo = self.__dict__.setdefault("_action_memo", {})
        key = (name, state)
        try:
            return memo[key]
        except KeyError:
            found = (self._actions_by_key.get(key)
                     if self.machine.get_transitions(trigger=name, source=state) else None)
            memo[key] = found
            return found

    def actions_from(self, state: str) -> list[ActionSpec]:
        """The actions available in ``state``, worked out once per state of this version (the
        state machine's trigger lookup is dear, and every state entry asks)."""
        memo = self.__dict__.setdefault("_actions_from", {})
        try:
            return list(memo[state])
        except KeyError:
            found = tuple(self._actions_by_key[(t, state)] for t in self.machine.get_triggers(state)
                          if (t, state) in self._actions_by_key)
            memo[state] = found
            return list(found)

    def roles_acting_in(self, state: str) -> frozenset[str]:
        """The roles that may act in ``state``: its owner's and every available action's,
        worked out once per state of this version."""
        memo = self.__dict__.setdefault("_roles_acting_in", {})
        try:
            return memo[state]
        except KeyError:
            owner = self.spec.states[state].owner
            roles = frozenset({r for a in self.actions_from(state) for r in a.roles} | ({owner} if owner else set()))
            memo[state] = roles
            return roles

    def expr(self, source: str) -> Expr:
        cache = self.__dict__.setdefault("_exprs", {})
        if source not in cache:
            cache[source] = compile_expr(source)
        return cache[source]

    def form(self, form_id: str | None) -> FormSpec | None:
        return self.forms.get(form_id) if form_id else None

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> "CompiledProcedure":
        return cls(ProcedureSpec.model_validate(snapshot["procedure"]),
                   {k: FormSpec.model_validate(v) for k, v in snapshot["forms"].items()})


@dataclass
class Library:
    procedures: dict[str, CompiledProcedure] = field(default_factory=dict)
    forms: dict[str, FormSpec] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    # procedure id -> the problems that disable it (its own, and those of the forms it uses)
    disabled: dict[str, list[Issue]] = field(default_factory=dict)

    def get(self, procedure_id: str, needed_by: str = "") -> CompiledProcedure:
        from engine.errors import InputError
        self.require_enabled(procedure_id, needed_by)
        if procedure_id not in self.procedures:
            known = ", ".join(sorted(self.procedures)) or "(none)"
            raise InputError("PROCEDURE", f"unknown procedure {procedure_id!r}; known: {known}")
        return self.procedures[procedure_id]

    def disabled_lines(self) -> list[str]:
        """One line per disabled procedure with its problems (what serve and worker print)."""
        return [str(ProcedureDisabled(pid, issues)) for pid, issues in sorted(self.disabled.items())]

    def require_enabled(self, procedure_id: str, needed_by: str = "") -> None:
        """Refuse (``ProcedureDisabled``) when problems in its files disable the procedure."""
        if procedure_id in self.disabled:
            raise ProcedureDisabled(procedure_id, self.disabled[procedure_id], needed_by)


def forms_dir_for(procedures_dir: Path) -> Path:
    return procedures_dir.parent / "forms"


def _yaml_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.glob("*.yaml"))
        else:
            out.append(p)
    return out


M = TypeVar("M", bound=BaseModel)


def _load_model(path: Path, model: type[M], issues: list[Issue]) -> tuple[M | None, Positions | None]:
    """The model and its positions; no model when the file is broken (``issues`` say why),
    and no positions either when it is not even YAML."""
    try:
        data, pos = load_file(path)
    except ProcedureError as e:
        issues += e.issues
        return None, None
    if not isinstance(data, dict):
        issues.append(Issue(str(path), 1, 1, "expected a mapping at the top level"))
        return None, pos
    try:
        return model.model_validate(data), pos
    except ValidationError as e:
        issues += issues_from_validation(e, pos, model)
        return None, pos


def load_library(procedure_paths: Iterable[Path], form_paths: Iterable[Path],
                 roles: Iterable[str], context_paths: Iterable[Path] = ()) -> Library:
    """Load and check everything; the returned library's ``issues`` lists all problems and
    ``disabled`` the procedures they disable (only enabled ones are in ``procedures``).

    ``context_paths`` are more procedure files a spawn may name, read only to resolve
    spawns and never checked (lint of a single file: its siblings in the same folder).
    """
    lib = Library()
    form_pos: dict[str, Positions] = {}
    form_issues: dict[str, list[Issue]] = {}  # form id (file stem when it did not load) -> its problems
    for path in _yaml_files(form_paths):
        mine: list[Issue] = []
        form, pos = _load_model(path, FormSpec, mine)
        if pos is None:  # not YAML: no form either
            form = None
        elif form is not None and form.id in lib.forms:
            mine.append(pos.issue(("id",), f"form id {form.id!r} is also defined in {lib.files['form:' + form.id]}"))
            form = None
        if form is not None and pos is not None:
            if path.stem != form.id:
                mine.append(pos.issue(("id",), f"form id {form.id!r} differs from the file name {path.name!r}"))
            lib.forms[form.id], form_pos[form.id] = form, pos
            lib.files["form:" + form.id] = path
            mine += checks.check_form(form, pos)
        lib.issues += mine
        if mine:
            form_issues.setdefault(path.stem, []).extend(mine)
            if form is not None and form.id != path.stem:
                form_issues.setdefault(form.id, []).extend(mine)
    loaded: list[tuple[ProcedureSpec, Positions, Path, list[Issue]]] = []
    broken: dict[str, list[Issue]] = {}  # procedure files that did not load, by file stem
    for path in _yaml_files(procedure_paths):
        mine = []
        spec, pos = _load_model(path, ProcedureSpec, mine)
        if spec is None or pos is None:  # (a model always comes with its positions)
            lib.issues += mine
            broken.setdefault(path.stem, []).extend(mine)
            continue
        if path.stem != spec.id:
            mine.append(pos.issue(("id",), f"procedure id {spec.id!r} differs from the file name {path.name!r}"))
        loaded.append((spec, pos, path, mine))
    # A spawn of a procedure whose file is broken is not "unknown": that procedure is disabled.
    specs: dict[str, ProcedureSpec] = {}
    context_ids: set[str] = set()
    for path in _yaml_files(context_paths):
        spec, _ = _load_model(path, ProcedureSpec, [])
        context_ids.add(path.stem)
        if spec is not None:
            specs[spec.id] = spec
    specs.update({s.id: s for s, _, _, _ in loaded})
    ids = set(specs) | set(broken) | context_ids
    roles = set(roles)
    for spec, pos, path, mine in loaded:
        mine += checks.check_procedure(spec, pos, lib.forms, roles, ids)
        mine += checks.check_form_conditions(spec, pos, lib.forms, form_pos)
        mine += checks.check_spawn_data(spec, pos, lib.forms, specs)
        lib.issues += mine
        used = {f for f in (spec.start.form, *(a.form for a in spec.actions)) if f is not None}
        forms = {f: lib.forms[f] for f in used if f in lib.forms}
        lib.files["procedure:" + spec.id] = path
        problems = mine + [i for f in sorted(used) for i in form_issues.get(f, [])]
        if problems:
            lib.disabled[spec.id] = problems
        else:
            lib.procedures[spec.id] = CompiledProcedure(spec, forms)
    for stem, problems in broken.items():
        lib.disabled.setdefault(stem, []).extend(problems)
    return lib


def load_checked(procedures_dir: Path, roles: Iterable[str]) -> Library:
    """Load a procedures directory (and its sibling forms/) or raise with every issue
    (tests and tools that want all or nothing; the runtime uses ``load_library`` and runs
    what is enabled)."""
    lib = load_directory(procedures_dir, roles)
    if lib.issues:
        raise ProcedureError(lib.issues)
    return lib


def load_directory(procedures_dir: Path, roles: Iterable[str]) -> Library:
    """A procedures directory and its sibling forms/: every problem collected, the procedures
    they touch disabled, the others ready to run."""
    forms_dir = forms_dir_for(procedures_dir)
    # No forms/ at all is fine until a procedure names a form ("unknown form" then says so).
    return load_library([procedures_dir], [forms_dir] if forms_dir.is_dir() else [], roles)
