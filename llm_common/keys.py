"""API keys as both services check them: `Authorization: Bearer <key>`, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_token(request) -> str | None:
    """The key of a (Flask or Starlette) request's `Authorization: Bearer <key>` header, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def digest_matches(key: str, digests: list[str] | frozenset[str]) -> bool:
    """Whether `key` hashes to one of `digests`, compared in constant time."""
    digest = sha256_hex(key)
    return any(hmac.compare_digest(digest, known) for known in digests)
