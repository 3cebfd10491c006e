"""Caller authentication: the tenant is derived from its gateway key, nothing else.

Keys are stored only as SHA-256 digests. Several digests per tenant allow
rotation: the old and new key are both valid until the old one is removed.
Headers such as X-Tenant-Id are never read.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request

from llm_common.errors import ApiError
from llm_common.keys import bearer_token, digest_matches, sha256_hex
from tenant_spec.route import TenantRoute

KEY_PREFIX = "gk-"


def generate_gateway_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_gateway_key(key: str) -> str:
    return sha256_hex(key)


class TenantDirectory:
    """Key digest -> tenant. `replace` swaps the whole table at once, so a lookup never sees half of an update."""

    def __init__(self, tenants: list[TenantRoute]):
        self.replace(tenants)

    def replace(self, tenants: list[TenantRoute]) -> None:
        self._by_digest = {digest: tenant for tenant in tenants for digest in tenant.key_sha256}

    def tenant_for_key(self, key: str) -> TenantRoute | None:
        tenant = self._by_digest.get(hash_gateway_key(key))
        # The final check is constant-time; the dict lookup is on a hash of the key.
        if tenant is not None and digest_matches(key, tenant.key_sha256):
            return tenant
        return None

    def authenticate(self, request: Request) -> TenantRoute:
        key = bearer_token(request)
        if key is None:
            raise ApiError(401, "missing gateway key: send 'Authorization: Bearer <key>'", code="missing_api_key")
        tenant = self.tenant_for_key(key)
        if tenant is None:
            raise ApiError(401, "unknown gateway key", code="invalid_api_key")
        return tenant
