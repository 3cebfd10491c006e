"""Fair sharing of a saturated pool: per-tenant queues served in weighted fair order, and the slots a
tenant below its share is using kept for it.

A pool with a capacity (`capacity_per_member` concurrent sequences on each usable member) admits a
request at once while a slot is free and nobody is waiting, so a tenant alone may use the whole
pool. When the pool is full, requests wait in their tenant's queue; each freed slot goes to the
head of the queue of the backlogged tenant with the least *virtual service*, the requests it was
given divided by its weight (start-time fair queueing, as in virtual-token counting, counting
requests: a slot is a sequence, whatever its length). A tenant that was idle starts at the
smallest virtual service of the busy tenants, so idling earns no credit to burst with later.

Fair order alone does not keep a light tenant's time to first token: a heavy tenant's backlog takes
every slot the moment it frees, so the light tenant's next request — arriving a moment after its
previous answer ended — waits for the next slot to free, a whole answer when answers end in step.
So each tenant also holds a *claim*: as many slots as it recently used at once (within
`share_hold` seconds), never more than its share (the capacity split by weight between the tenants
that are busy or hold a claim, rounded down). Slots a tenant claims but is not using are not given
to others while the claim lasts; the tenant's next request takes one at once, queue or not. A
claim ends `share_hold` seconds after the tenant last used that many slots, so a tenant that left
keeps slots idle that long at most; 0 turns claims off (purely work-conserving).

Bounds: at most `max_queued_per_tenant` requests wait per tenant (beyond: 429
`pool_queue_full`), each at most `queue_timeout_seconds` (then 503 `pool_queue_timeout`);
both carry Retry-After.

This queue counts the slots of one gateway worker process. With Redis configured (`limits`), a
pool's slots are shared by every process and replica instead, in the same order with the same
claims, kept in Redis (pool_admission.py); this queue then serves only while Redis is unavailable,
over the whole capacity.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_common.errors import Refusal
from llm_gateway.metrics import GatewayMetrics

RETRY_AFTER_SECONDS = 1


def queue_full(max_queued_per_tenant: int) -> Refusal:
    return Refusal(
        429,
        f"the model pool is full and this tenant already has {max_queued_per_tenant} "
        "requests waiting for it; retry shortly",
        reason="pool_queue_full",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def queue_timeout(seconds: float) -> Refusal:
    return Refusal(
        503,
        f"the model pool stayed full for {seconds:g} s; retry shortly",
        reason="pool_queue_timeout",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@dataclass
class _Tenant:
    weight: float
    virtual: float = 0.0  # requests given / weight
    waiting: deque = field(default_factory=deque)  # futures, oldest first
    in_flight: int = 0  # slots it holds
    claim: int = 0  # the most slots it held at once lately...
    claimed_at: float = 0.0  # ...when it last held that many

    def busy(self) -> bool:
        return self.in_flight > 0 or bool(self.waiting)


class FairQueue:
    """Slots of one pool, shared between tenants. `capacity()` is read at each decision (members come
    and go); `acquire` returns once the caller holds a slot, which `release` gives back."""

    def __init__(
        self,
        backend: str,
        capacity: Callable[[], int],
        metrics: GatewayMetrics,
        *,
        max_queued_per_tenant: int,
        queue_timeout: float,
        share_hold: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.backend = backend
        self.capacity = capacity
        self.metrics = metrics
        self.max_queued_per_tenant = max_queued_per_tenant
        self.queue_timeout = queue_timeout
        self.share_hold = share_hold
        self._clock = clock
        self.in_use = 0
        self._tenants: dict[str, _Tenant] = {}
        self._virtual_now = 0.0  # the virtual service at which the latest slot was given
        self._claim_timer: asyncio.TimerHandle | None = None

    def waiting(self, tenant: str) -> int:
        state = self._tenants.get(tenant)
        return len(state.waiting) if state is not None else 0

    async def acquire(self, tenant: str, weight: float = 1.0, timeout: float | None = None) -> None:
        """Return once `tenant` holds a slot; waits at most `timeout` (default: `queue_timeout`)."""
        state = self._tenant(tenant, weight)
        if not state.waiting and self._may_take_now(tenant):
            self._grant(state)
            return
        if len(state.waiting) >= self.max_queued_per_tenant:
            raise queue_full(self.max_queued_per_tenant)
        if not state.waiting:
            state.virtual = max(state.virtual, self._virtual_now)  # no credit for idle time
        waiter = asyncio.get_running_loop().create_future()
        state.waiting.append(waiter)
        self._publish_depth(tenant, state)
        self.dispatch()  # a slot may be free yet held by a claim: wait for the claim to end, in fair order
        queued = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout if timeout is None else timeout)
        except TimeoutError:
            self._leave(tenant, state, waiter)
            raise queue_timeout(self.queue_timeout) from None
        except BaseException:  # cancelled (the caller left) while waiting, or just granted
            self._leave(tenant, state, waiter)
            raise
        finally:
            self.metrics.queue_wait.labels(tenant=tenant, backend=self.backend).observe(time.perf_counter() - queued)

    def release(self, tenant: str) -> None:
        """Give `tenant`'s slot back; the fairest waiter that may take it (if any) does."""
        state = self._tenants[tenant]
        if state.in_flight == state.claim:
            state.claimed_at = self._clock()  # it held its whole claim until now
        state.in_flight -= 1
        self.in_use -= 1
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters (after a release, when the capacity grew — a member came back — or
        when a claim ended)."""
        while True:
            capacity = self.capacity()
            if self.in_use >= capacity:
                return
            unclaimed = self._unclaimed(capacity)
            eligible = [
                (state.virtual, name)
                for name, state in self._tenants.items()
                if state.waiting and self._free_for(name, capacity, unclaimed)
            ]
            if not eligible:
                self._wake_when_a_claim_ends(unclaimed)
                return
            _, name = min(eligible)
            state = self._tenants[name]
            waiter = state.waiting.popleft()
            self._publish_depth(name, state)
            self._grant(state)
            waiter.set_result(None)

    # --- claims ----------------------------------------------------------------------------------

    def _may_take_now(self, tenant: str) -> bool:
        """A request that just came: it takes a slot at once if nobody waits for one, or if the slot
        is one its tenant claims (others wait, but they are not owed that slot)."""
        capacity = self.capacity()
        unclaimed = self._unclaimed(capacity)
        if not self._free_for(tenant, capacity, unclaimed):
            return False
        waiting = any(state.waiting for state in self._tenants.values())
        return not waiting or unclaimed.get(tenant, 0) > 0

    def _free_for(self, tenant: str, capacity: int, unclaimed: dict[str, int]) -> bool:
        """Is a slot free that no *other* tenant's claim holds?"""
        held_for_others = sum(unclaimed.values()) - unclaimed.get(tenant, 0)
        return capacity - self.in_use - held_for_others >= 1

    def _unclaimed(self, capacity: int) -> dict[str, int]:
        """Slots each tenant claims but does not use now, by tenant (claims capped at its share); ends
        the claims that are over."""
        now = self._clock()
        for state in self._tenants.values():
            if now - state.claimed_at > self.share_hold:
                state.claim, state.claimed_at = state.in_flight, now  # over: it claims what it uses
        present_weight = sum(state.weight for state in self._tenants.values() if state.busy() or state.claim)
        held = {}
        for name, state in self._tenants.items():
            if state.claim > state.in_flight:
                share = int(capacity * state.weight / present_weight)
                if min(state.claim, share) > state.in_flight:
                    held[name] = min(state.claim, share) - state.in_flight
        return held

    def _wake_when_a_claim_ends(self, unclaimed: dict[str, int]) -> None:
        """Waiters remain while free slots are held by claims: look again when the oldest of those claims
        may end."""
        if not unclaimed or self._claim_timer is not None:
            return
        oldest = min(self._tenants[name].claimed_at for name in unclaimed)
        delay = max(0.0, oldest + self.share_hold - self._clock()) + 0.001
        self._claim_timer = asyncio.get_running_loop().call_later(delay, self._claim_ended)

    def _claim_ended(self) -> None:
        self._claim_timer = None
        self.dispatch()

    # --- bookkeeping -----------------------------------------------------------------------------

    def _grant(self, state: _Tenant) -> None:
        self.in_use += 1
        state.in_flight += 1
        if state.in_flight >= state.claim:
            state.claim, state.claimed_at = state.in_flight, self._clock()
        state.virtual = max(state.virtual, self._virtual_now)
        self._virtual_now = state.virtual
        state.virtual += 1 / state.weight

    def _leave(self, tenant: str, state: _Tenant, waiter: asyncio.Future) -> None:
        """A waiter gives up: out of the queue, or, if a slot was granted to it meanwhile, that slot back."""
        if waiter.done() and not waiter.cancelled():
            self.release(tenant)
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
