"""A procedure as a Mermaid state diagram (``sop graph``), for reviews and the docs."""
from __future__ import annotations

from engine.spec.models import ProcedureSpec, StateSpec


def mermaid(spec: ProcedureSpec) -> str:
    lines = ["stateDiagram-v2", f"    %% {spec.id}: {spec.title}"]
    for name, st in spec.states.items():
        lines.append(f"    {name} : {st.title}")
    lines.append(f"    [*] --> {spec.start.state}")
    for a in spec.actions:
        sources = ["*"] if a.source == "*" else a.source
        for s in sources:
            src = "any_state" if s == "*" else s
            lines.append(f"    {src} --> {a.to or src} : {a.name} ({a.title})")
    if any(a.source == "*" for a in spec.actions):
        lines.append("    note right of any_state : any state that is not final")
    in_branch = {s: p for p, st in spec.states.items() for b in st.branches.values() for s in b.states}
    for name, st in spec.states.items():
        if st.kind == "final":
            lines.append(f"    {name} --> {name_of_join(in_branch[name]) if name in in_branch else '[*]'}")
        if st.kind == "parallel":
            lines += _fork_and_join(name, st)
    return "\n".join(lines) + "\n"


def name_of_join(parallel: str) -> str:
    return f"{parallel}_join"


def _fork_and_join(name: str, st: StateSpec) -> list[str]:
    """A parallel state: a fork bar to each branch's start, a join bar on to ``next``."""
    join = st.join if isinstance(st.join, str) else "+".join(st.join)
    lines = [f"    state {name}_fork <<fork>>", f"    state {name_of_join(name)} <<join>>",
             f"    {name} --> {name}_fork"]
    lines += [f"    {name}_fork --> {b.start} : {branch} ({b.title})" for branch, b in st.branches.items()]
    lines.append(f"    {name_of_join(name)} --> {st.next} : join {join}")
    return lines
