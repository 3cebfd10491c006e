"""Fair sharing of a saturated pool: per-tenant queues served in weighted fair order.

A pool with a capacity (`capacity_per_member` concurrent sequences on each usable member) admits a
request at once while a slot is free and nobody is waiting, so a tenant alone may use the whole
pool. When the pool is full, requests wait in their tenant's queue; each freed slot goes to the
head of the queue of the backlogged tenant with the least *virtual service*, the requests it was
given divided by its weight (start-time fair queueing, as in virtual-token counting, counting
requests: a slot is a sequence, whatever its length). A tenant that was idle starts at the
smallest virtual service of the busy tenants, so idling earns no credit to burst with later.
Under contention each tenant thus gets at least its weight's share of the slots, however much
more another one sends.

Bounds: at most `max_queued_per_tenant` requests wait per tenant (beyond: 429
`pool_queue_full`), each at most `queue_timeout_seconds` (then 503 `pool_queue_timeout`);
both carry Retry-After. Counts are per gateway worker, like the pool's outstanding counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from llm_common.errors import Refusal
from llm_gateway.metrics import GatewayMetrics

RETRY_AFTER_SECONDS = 1


@dataclass
class _Tenant:
    weight: float
    virtual: float = 0.0  # requests given / weight
    waiting: deque = field(default_factory=deque)  # futures, oldest first


class FairQueue:
    """Slots of one pool, shared between tenants. `capacity()` is read at each decision (members come
    and go); `acquire` returns once the caller holds a slot, which `release` gives back."""

    def __init__(self, backend: str, capacity: Callable[[], int], metrics: GatewayMetrics, *,
                 max_queued_per_tenant: int, queue_timeout: float):
        self.backend = backend
        self.capacity = capacity
        self.metrics = metrics
        self.max_queued_per_tenant = max_queued_per_tenant
        self.queue_timeout = queue_timeout
        self.in_use = 0
        self._tenants: dict[str, _Tenant] = {}
        self._virtual_now = 0.0  # the virtual service at which the latest slot was given

    def waiting(self, tenant: str) -> int:
        state = self._tenants.get(tenant)
        return len(state.waiting) if state is not None else 0

    async def acquire(self, tenant: str, weight: float = 1.0) -> None:
        state = self._tenant(tenant, weight)
        if self.in_use < self.capacity() and not any(t.waiting for t in self._tenants.values()):
            self._grant(state)
            return
        if len(state.waiting) >= self.max_queued_per_tenant:
            raise Refusal(429, f"the model pool is full and this tenant already has {self.max_queued_per_tenant} "
                               "requests waiting for it; retry shortly", reason="pool_queue_full",
                          headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        if not state.waiting:
            state.virtual = max(state.virtual, self._virtual_now)  # no credit for idle time
        waiter = asyncio.get_running_loop().create_future()
        state.waiting.append(waiter)
        self._publish_depth(tenant, state)
        queued = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout)
        except asyncio.TimeoutError:
            self._leave(tenant, state, waiter)
            raise Refusal(503, f"the model pool stayed full for {self.queue_timeout:g} s; retry shortly",
                          reason="pool_queue_timeout", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        except BaseException:  # cancelled (the caller left) while waiting, or just granted
            self._leave(tenant, state, waiter)
            raise
        finally:
            self.metrics.queue_wait.labels(tenant=tenant, backend=self.backend).observe(time.perf_counter() - queued)

    def release(self) -> None:
        """Give a slot back; the fairest waiter (if any) takes it."""
        self.in_use -= 1
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters (after a release, or when the capacity grew: a member came back)."""
        while self.in_use < self.capacity():
            backlogged = [(state.virtual, name) for name, state in self._tenants.items() if state.waiting]
            if not backlogged:
                return
            _, name = min(backlogged)
            state = self._tenants[name]
            waiter = state.waiting.popleft()
            self._publish_depth(name, state)
            self._grant(state)
            waiter.set_result(None)

    def _grant(self, state: _Tenant) -> None:
        self.in_use += 1
        state.virtual = max(state.virtual, self._virtual_now)
        self._virtual_now = state.virtual
        state.virtual += 1 / state.weight

    def _leave(self, tenant: str, state: _Tenant, waiter: asyncio.Future) -> None:
        """A waiter gives up: out of the queue, or, if a slot was granted to it meanwhile, that slot back."""
        if waiter.done() and not waiter.cancelled():
            self.release()
            return
        waiter.cancel()
        if waiter in state.waiting:
            state.waiting.remove(waiter)
            self._publish_depth(tenant, state)

    def _tenant(self, name: str, weight: float) -> _Tenant:
        state = self._tenants.get(name)
        if state is None:
            state = self._tenants[name] = _Tenant(weight)
        state.weight = weight
        return state

    def _publish_depth(self, tenant: str, state: _Tenant) -> None:
        self.metrics.queue_depth.labels(tenant=tenant, backend=self.backend).set(len(state.waiting))
