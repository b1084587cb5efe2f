"""A strict YAML loader that remembers where every key and value was written.

PyYAML's defaults are dangerous for a DSL that process owners edit by hand:
``on``/``no``/``off`` become booleans (YAML 1.1), ``9:00`` becomes the integer 540
(sexagesimal), a duplicate key silently wins, and a few hundred bytes of anchors and
aliases can expand to 10^8 nodes. This loader keeps YAML 1.2 core scalars only
(``true``/``false``, decimal/hex/octal ints, floats, null), leaves dates and times as
strings for the models to parse, refuses duplicate keys, anchors, aliases and tags, and
refuses files above a size limit. It builds plain Python objects from the node tree and
returns a :class:`Positions` map so every later error can name ``file:line:col``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.errors import Issue, ProcedureError

MAX_BYTES = 512 * 1024

PathKey = tuple[str | int, ...]


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema scalars: nothing else is implicitly typed."""


_Resolver.yaml_implicit_resolvers = {}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    """Reader → scanner → parser → composer, with our resolver and no constructor."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


try:  # libyaml, when PyYAML was built with it
    from yaml._yaml import CParser as _LibYaml
except ImportError:  # pragma: no cover - PyYAML's wheels carry it
    _CParser: type[_LibYaml] | None = None
else:
    _CParser = _LibYaml  # (None in a test: the reference loader only)


if _CParser is not None:
    class _FastLoader(_LibYaml, _Resolver):
        """libyaml's scanner, parser and composer with our resolver: about ten times the pure
        Python loader, which made every ``sop`` command spend seconds reading the library.
        libyaml composes anchors and aliases itself, so :func:`loads` sends here only text
        in which libyaml's own events show neither; the rest (and any error) goes through
        :class:`_Loader`, whose messages and checks are the reference."""

        def __init__(self, stream: str) -> None:
            _LibYaml.__init__(self, stream)
            _Resolver.__init__(self)


def _anchored(text: str) -> bool:
    """Whether libyaml sees an anchor or an alias (its events, without composing)."""
    parser = _LibYaml(text)
    while True:
        event = parser.get_event()
        if event is None or isinstance(event, yaml.events.StreamEndEvent):
            return False
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            return True


def _compose(text: str) -> Node | None:
    if _CParser is not None and (("&" not in text and "*" not in text) or not _safe_anchored(text)):
        try:
            return _FastLoader(text).get_single_node()
        except yaml.YAMLError:
            pass  # the reference loader below says what is wrong, in its words
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _safe_anchored(text: str) -> bool:
    try:
        return _anchored(text)
    except yaml.YAMLError:
        return True  # a syntax error: let the reference loader report it


@dataclass
class Positions:
    """Where each value (and each mapping key) of a loaded document was written."""

    file: str
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Best known position for ``path``: walks up to the nearest located parent."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def issue(self, path: PathKey, message: str, *, key: bool = False, hint: str = "") -> Issue:
        line, col = self.of(path, key=key)
        return Issue(self.file, line, col, message, path=dotted(path), hint=hint)


def dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: ScalarNode, file: str) -> Any:
    tag, value = node.tag, node.value
    if tag not in _SCALAR_TAGS:
        line, col = _mark(node)
        raise ProcedureError([Issue(file, line, col, f"tag {tag} is not allowed")])
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:int":
        return int(value, 0) if value.startswith(("0x", "0o")) else int(value)
    return float(value.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf")
                 .replace(".nan", "nan").replace(".NaN", "nan").replace(".NAN", "nan"))


def _build(node: Node, path: PathKey, pos: Positions) -> Any:
    pos.values[path] = _mark(node)
    if not isinstance(node, ScalarNode) and node.tag not in _COLLECTION_TAGS:
        raise ProcedureError([Issue(pos.file, *_mark(node), f"tag {node.tag} is not allowed")])
    if isinstance(node, ScalarNode):
        return _scalar(node, pos.file)
    if isinstance(node, SequenceNode):
        return [_build(item, path + (i,), pos) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line, col = _mark(key_node)
                raise ProcedureError([Issue(pos.file, line, col, "mapping keys must be plain scalars")])
            key = _scalar(key_node, pos.file)
            key = key if isinstance(key, str) else str(key) if key is not None else "null"
            if key in out:
                line, col = _mark(key_node)
                first = pos.keys[path + (key,)]
                raise ProcedureError([Issue(
                    pos.file, line, col, f"duplicate key {key!r} (first defined at line {first[0]})",
                    path=dotted(path + (key,)),
                )])
            pos.keys[path + (key,)] = _mark(key_node)
            out[key] = _build(value_node, path + (key,), pos)
        return out
    raise ProcedureError([Issue(pos.file, *_mark(node), "unsupported YAML node")])  # pragma: no cover


# Characters a definition may not hold: control characters YAML does not print (NUL and
# the rest of C0 but tab and line breaks, DEL, C1 but NEL), lone surrogates, the
# non-characters U+FFFE/U+FFFF, and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069) that make text display in another order than it is read
# ("Trojan Source"). Each is refused at its own line and column, before YAML sees it.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff"
                        "\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # line breaks as PyYAML counts them
_MAX_CHAR_ISSUES = 20


def _forbidden_characters(text: str, file: str) -> list[Issue]:
    """One located issue per forbidden character (at most _MAX_CHAR_ISSUES)."""
    import unicodedata

    issues: list[Issue] = []
    for m in _FORBIDDEN.finditer(text):
        if len(issues) == _MAX_CHAR_ISSUES:
            break
        start = m.start()
        before = text[:start]
        line = 1 + len(_BREAKS.findall(before))
        last_break = max((b.end() for b in _BREAKS.finditer(before)), default=0)
        ch = m.group()
        name = unicodedata.name(ch, "")
        what = ("bidirectional control character" if "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069"
                else "control character" if ch < "\ud800" else "character")
        hint = "it makes text display in another order than it reads" if what.startswith("bidi") else ""
        issues.append(Issue(file, line, start - last_break + 1,
                            f"{what} U+{ord(ch):04X}{f' ({name})' if name else ''} is not allowed; remove it",
                            hint=hint))
    return issues


def loads(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Parse one YAML document strictly; raise ProcedureError located in ``file``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ProcedureError([Issue(file, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
    if _FORBIDDEN.search(text):
        raise ProcedureError(_forbidden_characters(text, file))
    pos = Positions(file)
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        started = e.context_mark if e.problem and e.context else None
        hint = f"{e.context} at line {started.line + 1}" if started and started.line + 1 != line else ""
        raise ProcedureError([Issue(file, line, col, f"YAML syntax: {e.problem or e.context}", hint=hint)]) from e
    except yaml.reader.ReaderError as e:  # a character YAML refuses: at its line and column
        before = text[:e.position]
        line = 1 + len(_BREAKS.findall(before))
        col = e.position - max((b.end() for b in _BREAKS.finditer(before)), default=0) + 1
        raise ProcedureError([Issue(file, line, col, f"YAML: character U+{e.character:04X} is not allowed"
                                    if isinstance(e.character, int) else f"YAML: {e.reason}")]) from e
    except yaml.YAMLError as e:
        raise ProcedureError([Issue(file, 1, 1, f"YAML: {' '.join(str(e).split())}")]) from e
    if node is None:
        return None, pos
    return _build(node, (), pos), pos


def load_file(path: str | Path) -> tuple[Any, Positions]:
    """Read and parse a YAML file; size is checked before reading it all."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ProcedureError([Issue(str(p), 1, 1, f"cannot read file: {e.strerror}")]) from e
    if size > MAX_BYTES:
        raise ProcedureError([Issue(str(p), 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProcedureError([Issue(str(p), 1, 1, "file is not valid UTF-8")]) from e
    return loads(text, str(p))
