"""Fair sharing of a full pool (fair_queue.py), on one event loop, step by step: which waiting request
gets each freed slot, the per-tenant bound and the queue deadline."""

from __future__ import annotations

import asyncio

import pytest

from llm_common.errors import Refusal
from llm_common.metrics_registry import MetricsRegistry
from llm_gateway.fair_queue import FairQueue
from llm_gateway.metrics import GatewayMetrics


def fair_queue(capacity: int, **bounds) -> FairQueue:
    settings = {"max_queued_per_tenant": 100, "queue_timeout": 30.0, **bounds}
    return FairQueue("vllm", lambda: capacity, GatewayMetrics(MetricsRegistry(None)), **settings)


async def settle() -> None:
    """Let every task that can run, run (the queue hands slots over through futures)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def grant_order(queue: FairQueue, arrivals: list[tuple[str, float]], releases: int) -> list[str]:
    """Queue `arrivals` (tenant, weight) in order behind a full pool, free `releases` slots one at a time;
    returns the tenants in the order they got them."""
    order: list[str] = []

    async def wait(tenant: str, weight: float) -> None:
        await queue.acquire(tenant, weight)
        order.append(tenant)

    tasks = []
    for tenant, weight in arrivals:
        tasks.append(asyncio.create_task(wait(tenant, weight)))
        await settle()
    for _ in range(releases):
        queue.release()
        await settle()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return order


def test_a_tenant_alone_uses_the_whole_pool():
    async def scenario() -> int:
        queue = fair_queue(capacity=4)
        for _ in range(4):
            await queue.acquire("heavy")
        return queue.in_use

    assert asyncio.run(scenario()) == 4


def test_a_freed_slot_goes_to_the_light_tenant_before_the_heavy_tenants_backlog():
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        await queue.acquire("heavy")  # the heavy tenant holds the only slot...
        arrivals = [("heavy", 1.0)] * 5 + [("light", 1.0)]  # ...and queued five more before the light one came
        return await grant_order(queue, arrivals, releases=6)

    assert asyncio.run(scenario()) == ["light", "heavy", "heavy", "heavy", "heavy", "heavy"]


def test_two_backlogged_tenants_alternate():
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        await queue.acquire("a")
        return await grant_order(queue, [("a", 1.0)] * 4 + [("b", 1.0)] * 4, releases=8)

    assert asyncio.run(scenario()) == ["b", "a", "b", "a", "b", "a", "b", "a"]


def test_slots_are_shared_by_weight():
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        await queue.acquire("x")
        return await grant_order(queue, [("big", 2.0)] * 8 + [("small", 1.0)] * 8, releases=9)

    order = asyncio.run(scenario())
    assert order.count("big") == 6 and order.count("small") == 3


def test_idle_time_earns_no_credit():
    """A tenant that had the pool to itself for a while does not starve the others afterwards (and the
    one that was idle does not get a burst of every slot either)."""
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        for _ in range(50):  # "a" alone: fifty requests one after the other
            await queue.acquire("a")
            queue.release()
        await queue.acquire("a")
        return await grant_order(queue, [("b", 1.0)] * 4 + [("a", 1.0)] * 4, releases=6)

    assert asyncio.run(scenario())[:4] in (["b", "a", "b", "a"], ["a", "b", "a", "b"])


def test_a_full_tenant_queue_is_a_429_and_a_long_wait_a_503_both_with_retry_after():
    async def scenario() -> tuple[Refusal, Refusal, int]:
        queue = fair_queue(capacity=1, max_queued_per_tenant=1, queue_timeout=0.2)
        await queue.acquire("a")
        waiting = asyncio.create_task(queue.acquire("a"))
        await settle()
        with pytest.raises(Refusal) as full:
            await queue.acquire("a")
        with pytest.raises(Refusal) as timed_out:
            await waiting
        return full.value, timed_out.value, queue.waiting("a")

    full, timed_out, still_waiting = asyncio.run(scenario())
    assert (full.status, full.reason, full.headers["Retry-After"]) == (429, "pool_queue_full", "1")
    assert (timed_out.status, timed_out.reason, timed_out.headers["Retry-After"]) == (503, "pool_queue_timeout", "1")
    assert still_waiting == 0


def test_a_caller_that_leaves_while_waiting_leaves_the_queue_and_takes_no_slot():
    async def scenario() -> tuple[int, int, list[str]]:
        queue = fair_queue(capacity=1)
        await queue.acquire("a")
        leaving = asyncio.create_task(queue.acquire("b"))
        await settle()
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        waiting = queue.waiting("b")
        order = await grant_order(queue, [("c", 1.0)], releases=1)
        return waiting, queue.in_use, order

    assert asyncio.run(scenario()) == (0, 1, ["c"])
