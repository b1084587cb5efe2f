"""Uploaded evidence (signatures, photos): files kept by their SHA-256 in a site directory.

The event holds ``{filename, sha256, size, content_type}`` (the ``Evidence`` value of an
``attachment``/``signature`` field) and the hash chain covers it, so the bytes a page
shows can be checked against the log: the file is stored under its own hash and read
back only by it. Storing is idempotent (the same bytes twice are one file) and atomic
(written to a temporary name, then renamed).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Optional

HEX64 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 16


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Optional[Path]:
        """Where the file with this hash is, or None if it is not stored (or not a hash)."""
        if not HEX64.match(sha256):
            return None
        p = self.root / sha256[:2] / sha256
        return p if p.is_file() else None

    def put(self, stream: BinaryIO, filename: str, content_type: Optional[str]) -> dict[str, Any]:
        """Store the stream's bytes; the ``Evidence`` value for the event."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            final = self.root / sha[:2] / sha
            final.parent.mkdir(exist_ok=True)
            if final.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        name = os.path.basename(filename.replace("\\", "/")).strip()[:255] or "upload"
        return {"filename": name, "sha256": sha, "size": size,
                "content_type": (content_type or "application/octet-stream")[:127]}

    def matches(self, value: Any) -> bool:
        """Whether ``value`` is an evidence object whose bytes are stored here, unchanged in size."""
        if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
            return False
        p = self.path(value["sha256"])
        return p is not None and p.stat().st_size == value.get("size")


def is_evidence(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("sha256"), str) and "filename" in value
