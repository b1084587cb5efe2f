"""``sop lint``: check procedure and form files and report every problem, located.

Paths may be files or directories, procedures or forms; a file is a procedure when it
has ``states`` at the top level. Procedures are checked against the forms given plus
the ``forms/`` directory beside their own directory, and against the org's roles. A spawn
of a procedure not given is resolved from the procedure files of the same folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from engine.errors import Issue, ProcedureError
from engine.spec.library import _yaml_files, forms_dir_for, load_library
from engine.spec.yamlio import load_file


def _is_procedure(path: Path) -> bool:
    try:
        data, _ = load_file(path)
    except ProcedureError:
        return "procedures" in path.parts or path.parent.name == "procedures"
    return isinstance(data, dict) and ("states" in data or "start" in data)


def lint(paths: Iterable[Path], roles: Iterable[str]) -> list[Issue]:
    procedures: list[Path] = []
    forms: list[Path] = []
    missing: list[Issue] = []
    for p in paths:
        if not p.exists():
            missing.append(Issue(str(p), 1, 1, "no such file or directory"))
    for f in _yaml_files(p for p in paths if p.exists()):
        (procedures if _is_procedure(f) else forms).append(f)
    form_dirs = {forms_dir_for(p.parent) for p in procedures}
    explicit = {f.resolve() for f in forms}
    extra_forms = [f for d in sorted(form_dirs) if d.is_dir() for f in sorted(d.glob("*.yaml"))
                   if f.resolve() not in explicit]
    # A spawn names a procedure of the same folder: read the siblings not given to resolve it
    # (and check the data passed to its start form), without linting them.
    given = {f.resolve() for f in procedures}
    siblings = sorted({q for p in procedures for q in p.parent.glob("*.yaml") if q.resolve() not in given})
    lib = load_library(procedures, forms + extra_forms, roles, context_paths=siblings)
    # Problems of the sibling forms on their own belong to a lint of those files; problems
    # a procedure causes in them (a condition naming a field it never collects) stay.
    form_local = {str(i) for i in load_library([], extra_forms, roles).issues} if extra_forms else set()
    issues = [i for i in lib.issues if str(i) not in form_local]
    return missing + sorted(issues, key=lambda i: (i.file, i.line, i.col))
