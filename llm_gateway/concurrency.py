"""Per-tenant concurrency limit (`max_concurrent_requests`), exact across gateway replicas.

Each request in progress holds a lease: a member of the tenant's sorted set in Redis
(`<prefix>:cc:<tenant>`), scored by its expiry on Redis's clock. Admission (the same Lua call
as the rate limits and budgets, `limits.ADMIT_SCRIPT`) drops expired leases and adds one only
while fewer than the limit remain; the call after the answer (`limits.FINISH_SCRIPT`) removes
it. While a request runs — a long stream included — its gateway worker pushes the expiry
forward every third of `lease_seconds` (a task on the worker's event loop); a gateway that dies stops
doing so, and its leases lapse within `lease_seconds` (30 s by default), so a crash cannot hold a
tenant's slots forever.

Over the limit: 429 `concurrency_limit_exceeded` with Retry-After 1. Without Redis (no
`limits` in the gateway config, or Redis unreachable with `on_redis_error: allow`) the limit
is not enforced, like the rate limits.

The same task keeps a model pool's slots and waiting requests alive (pool_admission.py): a slot is
two leases (in its member's set and in its tenant's), a waiting request a key of its own
(`keep_alive`), all refreshed in the one round trip.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from llm_common.errors import Refusal
from llm_gateway.limits import Lease, LimiterUnavailable, SharedCounters
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)
REASON = "concurrency_limit_exceeded"
RETRY_AFTER_SECONDS = 1


class ConcurrencyLeases:
    """The leases (and whole keys) this worker holds, refreshed by one task on its event loop."""

    def __init__(self, counters: SharedCounters):
        self.counters = counters
        self._held: dict[tuple[str, str], Lease] = {}
        self._keys: dict[str, int] = {}  # key -> how many holders keep it alive
        self._task: asyncio.Task | None = None

    def lease_for(self, tenant: TenantRoute) -> Lease | None:
        """A new lease to ask for with the request's admission (None: the tenant has no limit)."""
        if tenant.max_concurrent_requests is None:
            return None
        return Lease(self.counters.key("cc", tenant.name), uuid.uuid4().hex, tenant.max_concurrent_requests)

    def held(self, lease: Lease) -> None:
        """Admission granted the lease: keep it alive until `released` (called on the event loop)."""
        self._held[(lease.key, lease.id)] = lease
        self._start()

    def released(self, lease: Lease) -> None:
        """Stop refreshing the lease (it is removed from Redis with the request's counters)."""
        self._held.pop((lease.key, lease.id), None)

    def keep_alive(self, key: str) -> None:
        """Push the expiry of a whole key until as many `let_go` calls (on the event loop)."""
        self._keys[key] = self._keys.get(key, 0) + 1
        self._start()

    def let_go(self, key: str) -> None:
        count = self._keys.get(key, 0) - 1
        if count > 0:
            self._keys[key] = count
        else:
            self._keys.pop(key, None)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_loop(), name="lease-refresh")

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.counters.settings.lease_seconds / 3)
            try:
                await self.counters.refresh_leases(list(self._held.values()), list(self._keys))
            except LimiterUnavailable:
                pass  # logged by SharedCounters; leases lapse if Redis stays away

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def refusal(lease: Lease) -> Refusal:
    return Refusal(
        429,
        f"this tenant already has {lease.limit} requests in progress (its max_concurrent_requests); "
        "retry when one has finished",
        reason=REASON,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
