"""``sop audit verify`` and ``sop audit checkpoint``: every chain, the ledger, a signed checkpoint.

``audit`` reads the whole store in one consistent snapshot (a read transaction on SQLite,
REPEATABLE READ on PostgreSQL, so a commit landing meanwhile is not mistaken for an
insert): it recomputes every instance's hash chain (engine/audit.py), the ledger's chain
(engine/audit_ledger.py), compares the two, and, given a checkpoint, compares both with
what the checkpoint signed. ``checkpoint`` does the same and, if nothing is wrong, signs
the ledger's current head (engine/checkpoint.py), writes it to a file and queues it in the
outbox for the configured recipients.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

from sqlalchemy.engine import Connection

from engine import audit
from engine import audit_ledger as al
from engine import checkpoint as cp
from engine.errors import InputError, StoredDataCorrupt
from engine.store import ledger as ledger_store

LIMIT = 100  # findings reported at most (the first ones, in ledger then instance order)


@dataclass
class AuditReport:
    instances: int = 0
    events: int = 0
    broken: Optional[audit.BrokenLink] = None  # the first broken chain link, as ``Engine.verify`` gives it
    ledger_rows: int = 0
    ledger_seq: int = 0
    head: str = al.LEDGER_GENESIS
    findings: list[al.Finding] = field(default_factory=list)
    checkpoint: Optional[dict[str, Any]] = None  # what was checked against: seq, head, key id
    tips: dict[int, tuple[int, str]] = field(default_factory=dict)
    merkle_root: Optional[str] = None
    ledger_events: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.findings


@contextmanager
def snapshot(engine: Any) -> Iterator[Connection]:
    """A read transaction that sees one state of the whole store."""
    sa_engine = engine.connections.engine
    conn = sa_engine.connect().execution_options(sop_read_only=True)
    if sa_engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        with conn.begin():
            yield conn
    finally:
        conn.close()


def run(engine: Any, against: Optional[dict[str, Any]] = None) -> AuditReport:
    """Verify every chain and the ledger (and, given a checkpoint document whose signature
    the caller checked, everything it signed)."""
    rep = AuditReport()
    at_seq = against["ledger_seq"] if against else None
    with snapshot(engine) as conn:
        st = al.walk_ledger(ledger_store.iter_rows(conn), at_seq, LIMIT)
        rep.ledger_rows, rep.ledger_seq, rep.head = st.rows, st.last_seq, st.head
        rep.merkle_root, rep.ledger_events = st.merkle_at, st.events_at or 0
        rep.findings.extend(st.findings)
        if against is not None:
            _against_ledger(rep, st, against)
        signed = {int(k): (int(v[0]), str(v[1])) for k, v in against["instances"].items()} if against else {}
        newest_signed = max(signed, default=0)
        tips: dict[int, tuple[int, str]] = {}
        for iid, last_hash, revision, rows in engine.store.iter_chains(conn):
            rep.instances += 1
            if isinstance(rows, StoredDataCorrupt):
                unreadable = audit.BrokenLink(iid, 1, f"unreadable stored value: {rows.reason}")
                rep.broken = rep.broken or unreadable
                _add(rep, al.Finding("edited", unreadable.reason, iid, 1))
                st.refs.pop(iid, None)
                signed.pop(iid, None)
                continue
            rep.events += len(rows)
            link = audit.verify_chain(iid, rows, last_hash, revision)
            if link is not None:
                rep.broken = rep.broken or link
                _add(rep, al.Finding("edited", link.reason, iid, link.seq))
            al.compare_instance(st, iid, rows, LIMIT)
            if rows:
                tips[iid] = (rows[-1].seq, rows[-1].hash)
            if iid in signed:
                _against_instance(rep, iid, rows, signed.pop(iid))
            elif iid < newest_signed and rows:
                # Ids are handed out in ascending order: an instance older (by id) than ones
                # the checkpoint signed, but not in it, was slipped into a gap afterwards (on
                # PostgreSQL, only a start still running as the checkpoint was taken could be).
                _add(rep, al.Finding("inserted", f"this instance is not in the checkpoint, though instances with "
                                                 f"higher ids (up to {newest_signed}) are: put in a free id after it",
                                     iid))
        for f in st.findings:
            if f not in rep.findings:
                _add(rep, f)
        for f in al.leftover(st, LIMIT):
            _add(rep, f)
        for iid, (seq, _h) in sorted(signed.items()):
            _add(rep, al.Finding("instance_deleted", f"the checkpoint signed this instance at seq {seq} and the "
                                                     "store has no such instance", iid))
        rep.tips = tips
    return rep


def _add(rep: AuditReport, finding: al.Finding) -> None:
    if len(rep.findings) < LIMIT and finding not in rep.findings:
        rep.findings.append(finding)


def _against_ledger(rep: AuditReport, st: al.LedgerState, doc: dict[str, Any]) -> None:
    seq = doc["ledger_seq"]
    rep.checkpoint = {"ledger_seq": seq, "head": doc["head"], "key_id": doc.get("key_id")}
    if st.head_at is None:
        _add(rep, al.Finding("checkpoint", f"the checkpoint signed ledger seq {seq} and the ledger ends at seq "
                                           f"{st.last_seq} (ledger rows deleted)", ledger_seq=seq))
        return
    if st.head_at != doc["head"]:
        _add(rep, al.Finding("checkpoint", "the ledger's head at this seq is not the signed head: the ledger was "
                                           "rewritten up to here (see the instances named below)", ledger_seq=seq))
    if st.events_at != doc.get("events"):
        _add(rep, al.Finding("checkpoint", f"ledger rows up to here reference {st.events_at} events, the checkpoint "
                                           f"signed {doc.get('events')}", ledger_seq=seq))
    if st.merkle_at != doc.get("merkle_root"):
        _add(rep, al.Finding("checkpoint", "the Merkle root of the event hashes up to here is not the signed one",
                             ledger_seq=seq))


def _against_instance(rep: AuditReport, iid: int, rows: list[audit.StoredEvent], signed: tuple[int, str]) -> None:
    seq, h = signed
    if not rows:
        _add(rep, al.Finding("instance_deleted", f"the checkpoint signed this instance at seq {seq} and the store "
                                                 "holds none of its events", iid))
        return
    at = next((r for r in rows if r.seq == seq), None)
    if at is None:
        _add(rep, al.Finding("deleted", f"the checkpoint signed this instance up to seq {seq} and the store's log "
                                        f"ends at seq {rows[-1].seq}", iid, seq))
    elif at.hash != h:
        _add(rep, al.Finding("rewritten", "the event's hash is not the one the checkpoint signed: this instance's "
                                          f"log was rewritten at or before seq {seq}, before the checkpoint", iid, seq))


def checkpoint_body(rep: AuditReport) -> dict[str, Any]:
    return {"ledger_seq": rep.ledger_seq, "head": rep.head, "events": rep.ledger_events,
            "merkle_root": rep.merkle_root, "instances": {str(k): list(v) for k, v in sorted(rep.tips.items())},
            "instance_count": len(rep.tips), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def make_checkpoint(engine: Any, key_path: Path) -> tuple[dict[str, Any], AuditReport]:
    """Verify everything, then sign the ledger's head as it stands; InputError if anything is wrong
    (a checkpoint must never vouch for tampering)."""
    key = cp.load_or_create_key(key_path)
    rep = run(engine)
    if not rep.ok:
        first = rep.findings[0] if rep.findings else rep.broken
        raise InputError("audit checkpoint", f"the store does not verify ({first}); no checkpoint signed "
                                             "(sop audit verify lists what is wrong)")
    return cp.sign(checkpoint_body(rep), key), rep


def send(engine: Any, doc: dict[str, Any], recipients: list[str]) -> list[str]:
    """Queue the checkpoint in the outbox for each recipient (a staff id, or an e-mail address
    the dispatcher mails directly), once per checkpoint and recipient; the ones queued."""
    if not recipients:
        return []
    text = (f"sop 审计检查点 / audit checkpoint: ledger seq {doc['ledger_seq']}, head {doc['head']}, "
            f"key {doc['key_id']}. Keep this message: sop audit verify --against <file with the JSON below>.\n\n"
            + json.dumps(doc, ensure_ascii=False, sort_keys=True))
    with engine.transaction() as conn:
        return ledger_store.queue_checkpoint(conn, doc["ledger_seq"], recipients, text, engine.clock.now())
