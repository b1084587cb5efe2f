"""The procedure's state diagram as SVG, the current state highlighted: Graphviz ``dot``.

Graphviz does the layout (a solved problem; Debian's ``graphviz`` package, installed by the
browser tests and CI). Without ``dot`` on the PATH :func:`svg` returns None and the
instance page shows the states as a list instead. Diagrams are cached per procedure
version and state: a procedure version never changes.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from typing import Optional

from engine.spec.models import ProcedureSpec

CURRENT = "#1565c0"
FONT = "Noto Sans CJK SC,WenQuanYi Zen Hei,sans-serif"


def _q(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, a line break as DOT's centred ``\\n``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(spec: ProcedureSpec, current: Optional[str]) -> str:
    lines = ["digraph procedure {", "  rankdir=TB; bgcolor=\"transparent\";",
             f"  node [shape=box style=\"rounded,filled\" fillcolor=\"#ffffff\" color=\"#90a4ae\" "
             f"fontname={_q(FONT)} fontsize=12];",
             f"  edge [fontname={_q(FONT)} fontsize=10 color=\"#78909c\" fontcolor=\"#455a64\"];",
             "  __start [shape=point width=0.15 label=\"\" fillcolor=\"#455a64\"];",
             f"  __start -> {_q(spec.start.state)};"]
    for name, st in spec.states.items():
        attrs = [f"label={_q(st.title)}", f"id={_q('state_' + name)}", f"tooltip={_q(name)}"]
        if st.kind == "final":
            attrs.append("peripheries=2")
        if name == current:
            attrs += [f"fillcolor={_q(CURRENT)}", "fontcolor=\"#ffffff\"", f"color={_q(CURRENT)}", "penwidth=2"]
        lines.append(f"  {_q(name)} [{' '.join(attrs)}];")
    edges: dict[tuple[str, str], list[str]] = {}  # one edge per pair of states, its actions' titles on it
    for a in spec.actions:
        for s in (["__any"] if a.source == "*" else a.source):
            target = a.to or (s if s != "__any" else None)
            if target is not None:
                edges.setdefault((s, target), []).append(a.title)
    if any(s == "__any" for s, _ in edges):
        lines.append("  __any [label=\"任意未结束状态\" style=\"dashed,rounded\" fillcolor=\"#fafafa\"];")
    for (s, target), titles in edges.items():
        style = " style=dashed" if s == target else ""
        lines.append(f"  {_q(s)} -> {_q(target)} [label={_q(chr(10).join(titles))}{style}];")
    lines += _fork_and_join(spec)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _fork_and_join(spec: ProcedureSpec) -> list[str]:
    """A parallel state as BPMN draws it: a bar forking into its branches, whose final
    states meet at a join bar leading to ``next``."""
    lines = []
    for name, st in spec.states.items():
        if st.kind != "parallel" or not st.next:
            continue
        fork, join = _q(f"__fork_{name}"), _q(f"__join_{name}")
        bar = "shape=box style=filled fillcolor=\"#455a64\" height=0.06 width=1.6 label=\"\""
        lines += [f"  {fork} [{bar} id={_q('fork_' + name)}];", f"  {join} [{bar} id={_q('join_' + name)}];",
                  f"  {_q(name)} -> {fork};"]
        for branch, b in st.branches.items():
            lines.append(f"  {fork} -> {_q(b.start)} [label={_q(b.title)}];")
            lines += [f"  {_q(s)} -> {join};" for s in b.states if s in spec.states and spec.states[s].kind == "final"]
        rule = "、".join(st.branches[b].title for b in st.join if b in st.branches) + " 完成" \
            if isinstance(st.join, list) else {"all": "全部完成", "any": "任一完成"}[st.join]
        lines.append(f"  {join} -> {_q(st.next)} [label={_q(rule)}];")
    return lines


def available() -> bool:
    return shutil.which("dot") is not None


@lru_cache(maxsize=256)
def _render(source: str) -> Optional[str]:
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-Tsvg"], input=source.encode("utf-8"), capture_output=True, timeout=20,
                              check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    svg = done.stdout.decode("utf-8")
    start = svg.find("<svg")
    if start < 0:
        return None
    # scale with the page: drop the fixed pt size, keep the viewBox
    svg = re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg class="diagram" role="img"', svg[start:], count=1)
    return svg


def svg(spec: ProcedureSpec, current: Optional[str]) -> Optional[str]:
    """The diagram as inline SVG, or None when Graphviz is not installed (or fails)."""
    if not available():
        return None
    return _render(dot_source(spec, current))
