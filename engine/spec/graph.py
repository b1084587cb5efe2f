"""A procedure as a Mermaid state diagram (``sop graph``), for reviews and the docs."""
from __future__ import annotations

from engine.spec.models import ProcedureSpec


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
    for name, st in spec.states.items():
        if st.kind == "final":
            lines.append(f"    {name} --> [*]")
    return "\n".join(lines) + "\n"
