"""Signed checkpoints of the ledger: the file an auditor keeps, and the key that signs it.

A checkpoint is a JSON document::

    {"sop_checkpoint": 1, "ledger_seq": N, "head": "<ledger head at N>",
     "events": <events referenced by ledger rows 1..N>, "merkle_root": "<of their hashes>",
     "instances": {"<id>": [<last seq>, "<last hash>"], ...}, "created_at": "<UTC ISO>",
     "key_id": "<sha256 of the public key, 16 hex>", "public_key": "<Ed25519, base64>",
     "signature": "<Ed25519 over the canonical JSON of everything else, base64>"}

The signing key is an Ed25519 private key in a file outside the repository, by default
``$SOP_CONFIG_DIR/audit-ed25519.key`` (``~/.config/sop`` when the variable is unset),
generated on first use with mode 0600, its public half written beside it (``.pub``) for
auditors. An auditor checks a checkpoint with the public key alone (``sop audit verify
--against FILE --public-key PUB``): whoever can sign must hold the private key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from engine.audit import canonical_json
from engine.errors import InputError

FORMAT = 1
KEY_NAME = "audit-ed25519.key"


def config_dir() -> Path:
    return Path(os.environ.get("SOP_CONFIG_DIR") or Path.home() / ".config" / "sop")


def default_key_path() -> Path:
    return Path(os.environ.get("SOP_AUDIT_KEY") or config_dir() / KEY_NAME)


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as e:  # pragma: no cover  (a dependency of the package)
        raise InputError("audit", "signing needs the 'cryptography' package (pip install cryptography)") from e
    return ed25519


def load_or_create_key(path: Path) -> Any:
    """The Ed25519 private key in ``path`` (raw 32 bytes, base64); made with mode 0600 if absent."""
    ed25519 = _crypto()
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise InputError("--key", f"{path}: the signing key is readable by others (mode {mode:o}); "
                                      f"chmod 600 it")
        try:
            raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError("--key", f"{path}: not an sop audit signing key ({e})") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ed25519.Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization as ser

    raw = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(raw).decode("ascii") + "\n")
    pub = path.with_suffix(".pub")
    if not pub.exists():
        pub.write_text(public_key_text(key.public_key()) + "\n", encoding="ascii")
    return key


def public_key_text(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization as ser

    return base64.b64encode(public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)).decode("ascii")


def key_id(public_text: str) -> str:
    return hashlib.sha256(public_text.encode("ascii")).hexdigest()[:16]


def load_public_key(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
        _crypto().Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except FileNotFoundError:
        raise InputError("--public-key", f"{path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("--public-key", f"{path}: not an Ed25519 public key ({e})") from None
    return text


def sign(body: dict[str, Any], key: Any) -> dict[str, Any]:
    public = public_key_text(key.public_key())
    doc = {**body, "sop_checkpoint": FORMAT, "key_id": key_id(public), "public_key": public}
    doc["signature"] = base64.b64encode(key.sign(canonical_json(doc).encode("utf-8"))).decode("ascii")
    return doc


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file's document (InputError naming the file if it is not one)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("--against", f"{path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("--against", f"{path}: not a checkpoint (not JSON: {e})") from None
    if not is_checkpoint(doc):
        raise InputError("--against", f"{path}: not an sop checkpoint (no sop_checkpoint, ledger_seq, head, "
                                      f"signature)")
    return doc


def is_checkpoint(doc: Any) -> bool:
    return (isinstance(doc, dict) and doc.get("sop_checkpoint") == FORMAT and isinstance(doc.get("ledger_seq"), int)
            and isinstance(doc.get("head"), str) and isinstance(doc.get("signature"), str)
            and isinstance(doc.get("instances"), dict))


def check_signature(doc: dict[str, Any], trusted_public: Optional[str], source: str) -> str:
    """The key id the checkpoint is signed with; InputError if the signature does not hold
    or (given a trusted public key) another key signed it."""
    public = doc.get("public_key")
    if not isinstance(public, str):
        raise InputError("--against", f"{source}: no public_key")
    if trusted_public is not None and public != trusted_public:
        raise InputError("--against", f"{source}: signed by key {key_id(public)}, not the trusted key "
                                      f"{key_id(trusted_public)}")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        key = _crypto().Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(doc["signature"], validate=True), canonical_json(body).encode("utf-8"))
    except Exception as e:  # noqa: BLE001  (InvalidSignature, bad base64, bad key: all "does not hold")
        raise InputError("--against", f"{source}: the signature does not hold ({type(e).__name__}): the "
                                      f"checkpoint was altered or not signed by its key") from None
    return key_id(public)


def write(path: Path, doc: dict[str, Any]) -> Path:
    """Write the checkpoint to ``path`` (a directory: ``checkpoint-<seq>.json`` in it), never
    over another file (only over the same checkpoint again); atomically (a temporary file,
    then a rename)."""
    if path.is_dir():
        path = path / f"checkpoint-{doc['ledger_seq']:08d}.json"
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise InputError("--out", f"{path} exists and is not a regular file; not overwritten")
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            old = None
        if not is_checkpoint(old):
            raise InputError("--out", f"{path} exists and is not an sop checkpoint; not overwritten")
        if (old["ledger_seq"], old["head"]) != (doc["ledger_seq"], doc["head"]):
            raise InputError("--out", f"{path} holds the checkpoint of ledger seq {old['ledger_seq']}; "
                                      f"not overwritten (an auditor's earlier checkpoint is evidence)")
    if not path.parent.is_dir():
        raise InputError("--out", f"folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
