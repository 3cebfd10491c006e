"""Per-tenant concurrency limit (`max_concurrent_requests`), exact across gateway replicas.

Each request in progress holds a lease: a member of the tenant's sorted set in Redis
(`<prefix>:cc:<tenant>`), scored by its expiry on Redis's clock. Admission (the same Lua call
as the rate limits and budgets, `limits.ADMIT_SCRIPT`) drops expired leases and adds one only
while fewer than the limit remain; the call after the answer (`limits.FINISH_SCRIPT`) removes
it. While a request runs — a long stream included — its gateway worker pushes the expiry
forward every third of `lease_seconds`; a gateway that dies stops doing so, and its leases
lapse within `lease_seconds` (30 s by default), so a crash cannot hold a tenant's slots forever.

Over the limit: 429 `concurrency_limit_exceeded` with Retry-After 1. Without Redis (no
`limits` in the gateway config, or Redis unreachable with `on_redis_error: allow`) the limit
is not enforced, like the rate limits.
"""

from __future__ import annotations

import logging
import threading
import uuid

from llm_common.errors import Refusal
from llm_gateway.config import TenantRoute
from llm_gateway.limits import Lease, LimiterUnavailable, SharedCounters

log = logging.getLogger(__name__)
REASON = "concurrency_limit_exceeded"
RETRY_AFTER_SECONDS = 1


class ConcurrencyLeases:
    """The leases this worker holds, refreshed by one daemon thread."""

    def __init__(self, counters: SharedCounters):
        self.counters = counters
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def lease_for(self, tenant: TenantRoute) -> Lease | None:
        """A new lease to ask for with the request's admission (None: the tenant has no limit)."""
        if tenant.max_concurrent_requests is None:
            return None
        return Lease(self.counters.key("cc", tenant.name), uuid.uuid4().hex, tenant.max_concurrent_requests)

    def held(self, lease: Lease) -> None:
        """Admission granted the lease: keep it alive until `released`."""
        with self._lock:
            self._held[lease.id] = lease
            if self._thread is None:
                self._thread = threading.Thread(target=self._refresh_loop, name="lease-refresh", daemon=True)
                self._thread.start()

    def released(self, lease: Lease) -> None:
        """Stop refreshing the lease (it is removed from Redis with the request's counters)."""
        with self._lock:
            self._held.pop(lease.id, None)

    def _refresh_loop(self) -> None:
        while not self._stopping.wait(self.counters.settings.lease_seconds / 3):
            with self._lock:
                leases = list(self._held.values())
            try:
                self.counters.refresh_leases(leases)
            except LimiterUnavailable:
                pass  # counted and logged by SharedCounters; leases lapse if Redis stays away

    def close(self) -> None:
        self._stopping.set()


def refusal(lease: Lease) -> Refusal:
    return Refusal(429, f"this tenant already has {lease.limit} requests in progress (its max_concurrent_requests); "
                        "retry when one has finished", reason=REASON,
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
