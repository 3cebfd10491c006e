"""Prefix-cache isolation on vLLM: every request to the vLLM pool carries its tenant's `cache_salt`.

vLLM reuses the KV cache of a prompt prefix it has seen (automatic prefix caching). Shared across
tenants, that cache is a side channel: a tenant could time its own requests to learn whether
another tenant recently sent a given prefix (a system prompt, a document). vLLM keys cached
blocks by the request's `cache_salt` too, so requests with different salts never share blocks.

The salt is HMAC-SHA256(secret, "tenant:<name>") — or "group:<prefix_cache_group>" for tenants
whose specs opt into sharing one cache. Callers cannot choose it: `cache_salt` is not a parameter
the request contract accepts, and the gateway sets it on every vLLM request. The secret
(`cache_salt_secret`, or LLM_CACHE_SALT_SECRET[_FILE]) makes salts unguessable by anything else
that can reach vLLM; it must be the same on every gateway worker and replica, or a tenant's cache
is split between them. Only self-hosted chat models get a salt (routing.py): OpenAI and the embedding
servers would refuse (or ignore) the field.
"""

from __future__ import annotations

import hashlib
import hmac

from tenant_spec.route import TenantRoute


class CacheSalts:
    def __init__(self, secret: str | None):
        self._secret = (secret or "").encode()
        self._salts: dict[tuple[str, str | None], str] = {}

    def for_tenant(self, tenant: TenantRoute) -> str:
        key = (tenant.name, tenant.prefix_cache_group)
        salt = self._salts.get(key)
        if salt is None:
            scope = f"group:{tenant.prefix_cache_group}" if tenant.prefix_cache_group else f"tenant:{tenant.name}"
            salt = self._salts[key] = hmac.new(self._secret, scope.encode(), hashlib.sha256).hexdigest()
        return salt

    def salted(self, tenant: TenantRoute, payload: dict) -> dict:
        """`payload` with the tenant's salt."""
        return {**payload, "cache_salt": self.for_tenant(tenant)}
