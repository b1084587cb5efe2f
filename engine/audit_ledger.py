"""The store-wide ledger's hashes and its verification against the event log (pure).

Each committed transaction that appended events adds one ledger row: its ``entries`` are
the ``[instance_id, seq, hash]`` of those events in the order they were appended, its
``leaf`` the SHA-256 of their canonical JSON, its ``head`` the SHA-256 of
``[seq, prev, leaf]`` where ``prev`` is the head of the row before (the genesis head is 64
zeros). The head of the newest row therefore commits to every event hash ever appended, in
order, across all instances; a checkpoint (engine/checkpoint.py) signs one such head.

``check`` compares the ledger with the per-instance logs and names every difference:

- a ledger row that is missing, reordered or altered (its seq, prev, leaf or head);
- an event the ledger references that the store no longer holds (deleted, or its whole
  instance deleted), or holds with another hash (edited and re-hashed: a consistent
  rewrite of the instance's chain);
- an event the store holds that no ledger row references (inserted);
- against a checkpoint: a ledger whose head at the checkpoint's seq is not the signed
  head (the ledger itself was rewritten), an instance whose event at the checkpoint's
  seq differs or is gone, a different count of events, a different Merkle root.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

from engine.audit import StoredEvent, canonical_json
from engine.core.model import GENESIS_HASH

LEDGER_GENESIS = GENESIS_HASH


def leaf_hash(entries_json: str) -> str:
    return hashlib.sha256(entries_json.encode("utf-8")).hexdigest()


def head_hash(seq: int, prev: str, leaf: str) -> str:
    return hashlib.sha256(canonical_json([seq, prev, leaf]).encode("utf-8")).hexdigest()


def entries_json(entries: list[tuple[int, int, str]]) -> str:
    return canonical_json([list(e) for e in entries])


class MerkleRoot:
    """RFC 6962-style Merkle tree hash of event hashes added in order, kept as the
    perfect subtrees' roots (O(log n) memory): leaf = H(0x00 || hash), node = H(0x01 || l || r)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (size, root) of perfect subtrees, largest first
        self.count = 0

    def add(self, event_hash: str) -> None:
        node = hashlib.sha256(b"\x00" + event_hash.encode("ascii")).digest()
        size = 1
        while self._stack and self._stack[-1][0] == size:
            left = self._stack.pop()[1]
            node = hashlib.sha256(b"\x01" + left + node).digest()
            size *= 2
        self._stack.append((size, node))
        self.count += 1

    def root(self) -> str:
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _size, left in reversed(self._stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node.hex()


@dataclass(frozen=True)
class Finding:
    """One piece of tampering found: what kind, where (instance, seq, ledger seq), and how."""

    kind: str  # edited | rewritten | inserted | deleted | instance_deleted | reordered | ledger | checkpoint
    detail: str
    instance_id: Optional[int] = None
    seq: Optional[int] = None
    ledger_seq: Optional[int] = None

    def __str__(self) -> str:
        where = []
        if self.instance_id is not None:
            where.append(f"instance {self.instance_id}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.ledger_seq is not None:
            where.append(f"ledger seq {self.ledger_seq}")
        return f"{self.kind}: {' '.join(where) + ': ' if where else ''}{self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "instance": self.instance_id, "seq": self.seq, "ledger_seq": self.ledger_seq,
                "detail": self.detail}


@dataclass
class LedgerState:
    """What a walk of the ledger learnt: per instance, the (seq, hash, ledger seq) it
    references in ledger order, the head at each checkpointable seq, and the findings."""

    refs: dict[int, list[tuple[int, str, int]]] = field(default_factory=dict)
    rows: int = 0
    last_seq: int = 0
    head: str = LEDGER_GENESIS
    head_at: Optional[str] = None  # at the checkpoint's seq (or the last row): the head,
    # the Merkle root of the event hashes up to there and their count
    merkle_at: Optional[str] = None
    events_at: Optional[int] = None
    findings: list[Finding] = field(default_factory=list)


def walk_ledger(rows: Iterable[Any], at_seq: Optional[int] = None, limit: int = 100) -> LedgerState:
    """Recompute the ledger chain from its rows ``(seq, entries, leaf, prev, head)`` in seq order."""
    st = LedgerState()
    merkle = MerkleRoot()
    prev, expected = LEDGER_GENESIS, 1
    for seq, entries_text, leaf, stored_prev, head in rows:
        st.rows += 1
        if seq != expected:
            kind = "ledger"
            detail = (f"ledger rows {expected}..{seq - 1} are missing" if seq > expected
                      else f"ledger row {seq} is out of order (expected {expected})")
            _note(st, limit, Finding(kind, detail, ledger_seq=seq))
        if stored_prev != prev:
            _note(st, limit, Finding("ledger", "prev does not match the previous row's head "
                                               "(a row was removed, inserted or rewritten before it)", ledger_seq=seq))
        if leaf_hash(entries_text) != leaf:
            _note(st, limit, Finding("ledger", "leaf does not match the row's entries (entries edited)",
                                     ledger_seq=seq))
        if head_hash(seq, stored_prev, leaf) != head:
            _note(st, limit, Finding("ledger", "head does not match the row's seq, prev and leaf", ledger_seq=seq))
        try:
            entries = _entries(entries_text)
        except ValueError as e:
            _note(st, limit, Finding("ledger", f"entries unreadable: {e}", ledger_seq=seq))
            entries = []
        for iid, eseq, h in entries:
            st.refs.setdefault(iid, []).append((eseq, h, seq))
            if at_seq is None or seq <= at_seq:
                merkle.add(h)
        if at_seq is not None and seq == at_seq:
            st.head_at, st.merkle_at, st.events_at = head, merkle.root(), merkle.count
        prev, expected, st.last_seq, st.head = head, seq + 1, seq, head
    if at_seq is None:  # the whole ledger
        st.head_at, st.merkle_at, st.events_at = st.head, merkle.root(), merkle.count
    return st


def _entries(text: str) -> list[tuple[int, int, str]]:
    import json

    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(e, list) and len(e) == 3 for e in value):
        raise ValueError("not a list of [instance, seq, hash]")
    return [(int(a), int(b), str(c)) for a, b, c in value]


def _note(st: LedgerState, limit: int, finding: Finding) -> None:
    if len(st.findings) < limit:
        st.findings.append(finding)


def compare_instance(st: LedgerState, iid: int, events: list[StoredEvent], limit: int = 100) -> None:
    """One instance's stored events against what the ledger references for it (then forgotten)."""
    refs = st.refs.pop(iid, [])
    by_seq: dict[int, tuple[str, int]] = {}
    expected = 1
    for eseq, h, lseq in refs:
        if eseq in by_seq:
            _note(st, limit, Finding("reordered", "the ledger references this event twice", iid, eseq, lseq))
        elif eseq != expected:
            _note(st, limit, Finding("reordered", f"the ledger references seq {eseq} where seq {expected} comes next",
                                     iid, eseq, lseq))
        by_seq[eseq] = (h, lseq)
        expected = eseq + 1
    stored = {e.seq: e for e in events}
    for e in events:
        ref = by_seq.get(e.seq)
        if ref is None:
            _note(st, limit, Finding("inserted", "the event is in the store but no ledger row references it",
                                     iid, e.seq))
        elif ref[0] != e.hash:
            _note(st, limit, Finding("rewritten", "the event's hash differs from the one the ledger recorded "
                                                  "(payload, actor or time changed and the chain re-hashed, "
                                                  "or events reordered)", iid, e.seq, ref[1]))
    missing = [(s, lseq) for s, (_h, lseq) in sorted(by_seq.items()) if s not in stored]
    if missing and not events:
        _note(st, limit, Finding("instance_deleted", f"the ledger references {len(by_seq)} events of this "
                                                     f"instance and the store holds none", iid, None, missing[0][1]))
    else:
        for s, lseq in missing:
            _note(st, limit, Finding("deleted", "the ledger references this event and the store no longer holds it",
                                     iid, s, lseq))


def leftover(st: LedgerState, limit: int = 100) -> Iterator[Finding]:
    """Instances the ledger references that the store's walk never reached (deleted rows)."""
    for iid, refs in sorted(st.refs.items()):
        yield Finding("instance_deleted", f"the ledger references {len(refs)} events of this instance and the "
                                          "store has no such instance", iid, None, refs[0][2])
