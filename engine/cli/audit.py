"""``sop audit verify`` and ``sop audit checkpoint`` (engine/runtime/auditing.py, docs/audit.md)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import click

from engine import checkpoint as cp
from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag
from engine.errors import InputError


@click.group()
def audit() -> None:
    """Audit the log: hash chains, the store-wide ledger, signed checkpoints (docs/audit.md)."""

@audit.command("verify")
@json_flag
@click.option("--against", "against", type=click.Path(path_type=Path), metavar="CHECKPOINT",
              help="Also check everything this signed checkpoint (sop audit checkpoint) vouched for.")
@click.option("--public-key", type=click.Path(path_type=Path), metavar="FILE",
              help="The trusted public key for --against (default: the .pub beside the site's signing key).")
@pass_ctx
@fail_cleanly
def audit_verify(ctx: Context, against: Optional[Path], public_key: Optional[Path]) -> None:
    """Check every hash chain and the ledger; exit 1 naming every kind of tampering found."""
    from engine.runtime import auditing

    doc, key_id = None, None
    if against is not None:
        doc = cp.read(against)
        key_id = cp.check_signature(doc, _trusted(public_key), str(against))
    rep = auditing.run(ctx.engine, doc)
    broken = rep.broken
    payload = {"ok": rep.ok, "instances": rep.instances, "events": rep.events,
               "broken": None if broken is None else {"instance": broken.instance_id, "seq": broken.seq,
                                                      "reason": broken.reason},
               "ledger": {"rows": rep.ledger_rows, "seq": rep.ledger_seq, "head": rep.head},
               "checkpoint": None if doc is None else {**(rep.checkpoint or {}), "key_id": key_id,
                                                       "file": str(against)},
               "findings": [f.as_json() for f in rep.findings]}

    def human() -> None:
        if rep.ok:
            line = (f"ok: {rep.instances} instances, {rep.events} events, every chain intact; "
                    f"ledger of {rep.ledger_rows} rows intact (head {rep.head[:16]})")
            if doc is not None:
                line += f"; matches checkpoint seq {doc['ledger_seq']} signed by key {key_id}"
            click.echo(line)
            return
        if broken is not None:
            click.echo(f"broken: {broken}")
        for f in rep.findings:
            if not (broken is not None and f.kind == "edited" and f.instance_id == broken.instance_id
                    and f.seq == broken.seq):
                click.echo(f"broken: {f}")

    emit(ctx, payload, human)
    if not rep.ok:
        sys.exit(1)

@audit.command("checkpoint")
@json_flag
@click.option("--out", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="File (or folder: checkpoint-<seq>.json in it) to write; never over another file.")
@click.option("--key", "key_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Ed25519 signing key (default $SOP_AUDIT_KEY or $SOP_CONFIG_DIR/audit-ed25519.key, "
                   "~/.config/sop when unset; made on first use, mode 0600).")
@click.option("--send-to", multiple=True, metavar="RECIPIENT",
              help="Queue the checkpoint in the outbox for this staff id or e-mail address (repeatable; "
                   "default $SOP_AUDIT_RECIPIENTS, comma-separated).")
@pass_ctx
@fail_cleanly
def audit_checkpoint(ctx: Context, out: Path, key_path: Optional[Path], send_to: tuple[str, ...]) -> None:
    """Verify everything, then sign the ledger's head into a checkpoint file for auditors."""
    from engine.runtime import auditing

    recipients = list(send_to) or [r.strip() for r in os.environ.get("SOP_AUDIT_RECIPIENTS", "").split(",")
                                   if r.strip()]
    eng = ctx.engine
    for r in recipients:
        if "@" not in r and not eng.org.has(r):
            raise InputError("--send-to", f"{r!r} is neither a staff id of the org file nor an e-mail address")
    _check_out(out)
    doc, _rep = auditing.make_checkpoint(eng, key_path or cp.default_key_path())
    path = cp.write(out, doc)
    queued = auditing.send(eng, doc, recipients)
    payload = {"file": str(path), "ledger_seq": doc["ledger_seq"], "head": doc["head"], "events": doc["events"],
               "instances": doc["instance_count"], "key_id": doc["key_id"], "queued_for": queued}
    emit(ctx, payload, lambda: click.echo(
        f"checkpoint of ledger seq {doc['ledger_seq']} (head {doc['head'][:16]}, {doc['events']} events, "
        f"{doc['instance_count']} instances) signed by key {doc['key_id']} -> {path}"
        + (f"; queued for {', '.join(queued)}" if queued else "")))


def _trusted(public_key: Optional[Path]) -> str:
    if public_key is not None:
        return cp.load_public_key(public_key)
    default = cp.default_key_path().with_suffix(".pub")
    if not default.exists():
        raise InputError("--public-key", f"no trusted public key: give --public-key FILE (the site's is {default})")
    return cp.load_public_key(default)


def _check_out(out: Path) -> None:
    """Refuse a bad --out before anything is signed (cp.write checks again as it writes)."""
    if out.exists() and not out.is_dir():
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            old = None
        if not cp.is_checkpoint(old):
            raise InputError("--out", f"{out} exists and is not an sop checkpoint; not overwritten")


COMMANDS = (audit,)
