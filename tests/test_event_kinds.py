"""Event kinds are typed (``EventKind``, a StrEnum) without changing a stored byte.

Every kind constant the engine's modules define is a member; a member is written as its
plain text, so hashing with the member gives the golden hash; a kind this engine does not
know (an old log's) still loads as its text.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine import codec
from engine.core import clocks, fire, model, parallel, watchers
from engine.core.model import EventKind

GOLDEN = Path(__file__).parent / "golden" / "histories" / "events.jsonl"


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("module", [model, clocks, fire, parallel, watchers], ids=lambda m: m.__name__)
def test_every_kind_constant_of_the_core_is_an_event_kind_member(module: object) -> None:
    constants = {name: value for name, value in vars(module).items()
                 if name.isupper() and isinstance(value, str) and value[:1].isupper() and value.isalpha()}
    assert constants
    for name, value in constants.items():
        assert type(value) is EventKind, name


def test_every_golden_event_kind_is_a_member_and_hashes_as_its_plain_text() -> None:
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        kind = EventKind(e["type"])
        data = json.loads(e["data"])
        assert codec.encode_event(e["instance_id"], e["seq"], kind, e["actor"], e["role"],
                                  _instant(e["occurred_at"]), _instant(e["recorded_at"]), data,
                                  e["prev_hash"]) == (e["data"], e["hash"])


def test_a_member_equals_and_hashes_as_its_stored_text() -> None:
    # Folds are registered under members and looked up with the text read from the store.
    for kind in EventKind:
        assert kind == kind.value and hash(kind) == hash(kind.value) and {kind: 1}[kind.value] == 1
        assert f"{kind}" == kind.value and codec.canonical_json([kind]) == json.dumps([kind.value])


def test_an_unknown_stored_kind_loads_as_its_text() -> None:
    assert EventKind.of("SlaReset") is EventKind.SLA_RESET
    assert EventKind.of("RetiredKindOf2024") == "RetiredKindOf2024"

