"""Tenant admin keys: what it takes to change a tenant's knowledge (add or delete documents).

The spec's `admin_key_sha256` lists SHA-256 digests of the keys; a write needs
`Authorization: Bearer <admin key>`. Reads, searches and `/ask` keep the end-user key rules
(app/end_user_keys.py), which also accept an admin key. With no admin key configured nobody can
write: local mode generates one per tenant (tenantctl/local/state.py); on a cluster the spec lists them.
A header a web page cannot set without the proxy's consent (a CORS preflight it never grants),
so a page in a visitor's browser cannot plant a document, even where no end-user key is required.
"""

from __future__ import annotations

from flask import request

from llm_common.errors import ApiError
from llm_common.keys import bearer_token, digest_matches


def require_admin_key(digests: list[str]) -> None:
    """Raise a 401/403 unless the request carries one of the admin keys hashed in `digests`."""
    if not digests:
        raise ApiError(
            403,
            "this tenant has no admin key (admin_key_sha256 in its spec), so its documents cannot be changed",
            code="admin_key_not_configured",
        )
    key = bearer_token(request)
    if key is None:
        raise ApiError(
            401,
            "changing documents needs the tenant admin key: send 'Authorization: Bearer <admin key>'",
            code="missing_admin_key",
        )
    if not digest_matches(key, digests):
        raise ApiError(
            403, "this key may not change documents: a tenant admin key is needed", code="admin_key_required"
        )
