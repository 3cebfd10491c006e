"""Optional end-user API keys on the tenant proxy (off by default).

When the tenant spec lists `end_user_key_sha256`, every route except the operational ones
(`/healthz`, `/metrics`, `/openapi.json`) needs `Authorization: Bearer <key>` with a key
whose SHA-256 is listed; several entries allow rotating a key without downtime. A tenant admin
key (app/admin_keys.py) is accepted too. The proxy never sees the keys themselves, only their digests.
"""

from __future__ import annotations

from flask import Flask, request

from llm_common.errors import ApiError
from llm_common.keys import bearer_token, digest_matches

OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})


def require_end_user_keys(app: Flask, digests: list[str], admin_digests: list[str]) -> None:
    """Refuse requests without a listed (end-user or admin) key; does nothing when `digests` is empty."""
    if not digests:
        return
    accepted = frozenset(digests) | frozenset(admin_digests)

    @app.before_request
    def _authenticate() -> None:
        if request.path in OPEN_PATHS:
            return
        key = bearer_token(request)
        if key is None:
            raise ApiError(
                401, "this assistant needs an API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        if not digest_matches(key, accepted):
            raise ApiError(401, "unknown API key", code="invalid_api_key")
