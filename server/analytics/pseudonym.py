"""Pseudonyms: a keyed hash of (issuer, subject), so analytics never holds who someone is.

The key comes from settings (`analytics_secret`) or, when that is empty, from a random key made
once in `data_dir/analytics.key` (mode 0600). Without the key a pseudonym cannot be linked back
to a subject by hashing guesses; rotating the key starts everyone afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_key(secret: str, data_dir: Path) -> bytes:
    if secret:
        return secret.encode("utf-8")
    path = data_dir / "analytics.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the analytics key must be at least 16 bytes")
        self._key = key

    def __call__(self, issuer: str, subject: str) -> str:
        """32 hex characters (128 bits) of HMAC-SHA256(key, issuer|subject)."""
        msg = f"{issuer}|{subject}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]
