"""Fair sharing of a full pool (fair_queue.py). On one event loop, step by step: which waiting request
gets each freed slot, the slots a tenant's claim keeps for it, the per-tenant bound and the queue
deadline. Then through real gateway processes in front of a slow stub: a light tenant's next stream
does not wait behind a heavy tenant's backlog, with one gateway worker and no Redis (this queue), and
with the tenants sending through two gateways that share the pool's slots in Redis (pool_admission.py;
its own tests are in test_pool_admission.py)."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import pytest

from llm_common.errors import Refusal
from llm_common.metrics_registry import MetricsRegistry
from llm_gateway.fair_queue import FairQueue
from llm_gateway.metrics import GatewayMetrics
from openai_stub import stub_models
from tenantctl.local import launchers
from tests.helpers import free_port, metric_value, stub_backend, tenant_route, wait_for


def fair_queue(capacity: int, **settings) -> FairQueue:
    settings = {"max_queued_per_tenant": 100, "queue_timeout": 30.0, "share_hold": 1.0, **settings}
    return FairQueue("vllm", lambda: capacity, GatewayMetrics(MetricsRegistry(None)), **settings)


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    """Let every task that can run, run (the queue hands slots over through futures)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def grant_order(
    queue: FairQueue, holders: list[str], arrivals: list[tuple[str, float]], releases: int
) -> list[str]:
    """Queue `arrivals` (tenant, weight) in order behind a pool full with `holders`' requests, free
    `releases` slots one at a time, oldest first; returns the tenants in the order they got them."""
    order: list[str] = []
    holding = list(holders)

    async def wait(tenant: str, weight: float) -> None:
        await queue.acquire(tenant, weight)
        order.append(tenant)
        holding.append(tenant)

    tasks = []
    for tenant, weight in arrivals:
        tasks.append(asyncio.create_task(wait(tenant, weight)))
        await settle()
    for _ in range(releases):
        queue.release(holding.pop(0))
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
        return await grant_order(queue, ["heavy"], arrivals, releases=6)

    assert asyncio.run(scenario()) == ["light", "heavy", "heavy", "heavy", "heavy", "heavy"]


def test_two_backlogged_tenants_alternate():
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        await queue.acquire("a")
        return await grant_order(queue, ["a"], [("a", 1.0)] * 4 + [("b", 1.0)] * 4, releases=8)

    assert asyncio.run(scenario()) == ["b", "a", "b", "a", "b", "a", "b", "a"]


def test_slots_are_shared_by_weight():
    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        await queue.acquire("x")
        return await grant_order(queue, ["x"], [("big", 2.0)] * 8 + [("small", 1.0)] * 8, releases=9)

    order = asyncio.run(scenario())
    assert order.count("big") == 6 and order.count("small") == 3


def test_idle_time_earns_no_credit():
    """A tenant that had the pool to itself for a while does not starve the others afterwards (and the
    one that was idle does not get a burst of every slot either)."""

    async def scenario() -> list[str]:
        queue = fair_queue(capacity=1)
        for _ in range(50):  # "a" alone: fifty requests one after the other
            await queue.acquire("a")
            queue.release("a")
        await queue.acquire("a")
        return await grant_order(queue, ["a"], [("b", 1.0)] * 4 + [("a", 1.0)] * 4, releases=6)

    assert asyncio.run(scenario())[:4] in (["b", "a", "b", "a"], ["a", "b", "a", "b"])


async def backlog(queue: FairQueue, tenant: str, count: int) -> list[asyncio.Task]:
    """`count` requests of `tenant` waiting for a slot."""
    tasks = [asyncio.create_task(queue.acquire(tenant)) for _ in range(count)]
    await settle()
    assert queue.waiting(tenant) == count
    return tasks


async def cancel(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def light_answer_ends_while_heavy_waits(queue: FairQueue) -> list[asyncio.Task]:
    """Of a 4-slot pool the light tenant uses one and the heavy tenant three, with ten more waiting; then the
    light tenant's answer ends. Returns the heavy tenant's waiting requests."""
    await queue.acquire("light")
    for _ in range(3):
        await queue.acquire("heavy")
    waiting = await backlog(queue, "heavy", 10)
    queue.release("light")
    await settle()
    return waiting


def test_a_light_tenants_next_request_takes_the_slot_its_last_answer_freed_though_others_wait():
    """The light tenant uses one slot of four; the heavy one fills the rest and queues more. When the light
    tenant's answer ends, its slot stays free for it: its next request, a moment later, takes it at once
    instead of waiting for the next answer to end (as long as a whole answer)."""

    async def scenario() -> tuple[int, int, int]:
        queue = fair_queue(capacity=4, clock=Clock())
        waiting = await light_answer_ends_while_heavy_waits(queue)
        free_after_release = 4 - queue.in_use
        await asyncio.wait_for(queue.acquire("light"), timeout=5)
        heavy_waiting = queue.waiting("heavy")
        await cancel(waiting)
        return free_after_release, queue.in_use, heavy_waiting

    assert asyncio.run(scenario()) == (1, 4, 10)


def test_a_claim_ends_share_hold_seconds_after_the_tenant_last_used_its_slots():
    async def scenario() -> tuple[int, int]:
        queue = fair_queue(capacity=2, share_hold=0.05)
        await queue.acquire("light")
        await queue.acquire("heavy")
        waiting = await backlog(queue, "heavy", 3)
        queue.release("light")  # and the light tenant sends nothing more
        await settle()
        held = queue.waiting("heavy")
        await asyncio.wait_for(asyncio.shield(waiting[0]), timeout=5)  # the claim ends; the heavy tenant gets it
        still_waiting = queue.waiting("heavy")
        await cancel(waiting)
        return held, still_waiting

    assert asyncio.run(scenario()) == (3, 2)


def test_a_claim_is_never_more_than_the_tenants_share():
    """A tenant that used the whole pool alone keeps no more than its share (here half) for itself once
    another tenant comes."""

    async def scenario() -> tuple[int, int]:
        queue = fair_queue(capacity=4, clock=Clock())
        for _ in range(4):
            await queue.acquire("first")
        for _ in range(4):
            queue.release("first")
        granted = 0
        waiting = []
        for _ in range(4):
            task = asyncio.create_task(queue.acquire("second"))
            await settle()
            if task.done():
                granted += 1
            else:
                waiting.append(task)
        await cancel(waiting)
        return granted, len(waiting)

    assert asyncio.run(scenario()) == (2, 2)


def test_without_share_hold_the_backlog_takes_every_freed_slot():
    async def scenario() -> tuple[int, int]:
        queue = fair_queue(capacity=4, share_hold=0)
        waiting = await light_answer_ends_while_heavy_waits(queue)
        in_use, heavy_waiting = queue.in_use, queue.waiting("heavy")
        await cancel(waiting)
        return in_use, heavy_waiting

    assert asyncio.run(scenario()) == (4, 9)


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
        order = await grant_order(queue, ["a"], [("c", 1.0)], releases=1)
        return waiting, queue.in_use, order

    assert asyncio.run(scenario()) == (0, 1, ["c"])


# -- through a real gateway ------------------------------------------------------------------------

TOKENS, INTERVAL = 20, 0.25  # the stub's streams: 5 s an answer
CAPACITY, HEAD_START_TOKENS = 4, 4
STREAM_BODY = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}


@pytest.mark.parametrize("gateways", ["one gateway, no Redis", "two gateways sharing Redis"])
def test_a_light_tenants_next_stream_does_not_wait_behind_a_heavy_tenants_backlog(
    process_group, tmp_path, request, gateways
):
    """A 4-slot pool: the heavy tenant's three streams run a second ahead of the light tenant's one, and
    six more heavy streams wait. The light answer ends a second after the first heavy ones, whose slots the
    backlog took; the next light stream starts at once. Without claims the backlog would take the light
    tenant's slot too, and its next stream would wait for the next heavy answer to end (about 4 s).

    Shared: the heavy tenant sends through one gateway and the light tenant through another, each of one
    worker, sharing the slots in Redis, so the claim and the fair order hold across processes. The one
    timing assertion compares with half an answer (2.5 s), against the ~4 s a missing claim costs: it holds
    on a loaded machine, and fails when the claim does not work."""
    stub_port = free_port()
    process_group(
        stub_backend(
            stub_port, tmp_path, "--stream-tokens", str(TOKENS), "--token-interval", str(INTERVAL), "--no-seen"
        )
    )
    extra = {}
    if gateways == "two gateways sharing Redis":
        redis_url = request.getfixturevalue("redis_url")
        extra["limits"] = {"redis_url": redis_url, "key_prefix": f"fair-{uuid.uuid4().hex}"}
    config = {
        "tenants": [tenant_route("light", "kl"), tenant_route("heavy", "kh")],
        **stub_models(f"http://127.0.0.1:{stub_port}", entry={"max_sequences": CAPACITY}),
        **extra,
    }
    urls = []
    for index in range(2 if extra else 1):
        port = free_port()
        process_group(launchers.gateway(config, port, tmp_path / f"gateway-{index}", workers=1))
        urls.append(f"http://127.0.0.1:{port}")
    heavy_gateway, light_gateway = urls[0], urls[-1]

    def heavy_waiting() -> float:
        return metric_value(httpx.get(heavy_gateway + "/metrics").text, "llm_gateway_pool_queue_depth", tenant="heavy")

    async def scenario() -> tuple[float, list[bool]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as client:
            ahead = [HeavyStream(client, heavy_gateway) for _ in range(CAPACITY - 1)]
            running = [asyncio.create_task(stream.run()) for stream in ahead]
            for stream in ahead:
                await stream.head_start.wait()
            light = await client.post(
                light_gateway + "/v1/chat/completions", json=STREAM_BODY, headers={"Authorization": "Bearer kl"}
            )
            await light.content.readline()  # the light tenant holds the last slot
            running += [asyncio.create_task(HeavyStream(client, heavy_gateway).run()) for _ in range(6)]
            await asyncio.to_thread(wait_for, lambda: heavy_waiting() == 6, timeout=60, what="the heavy backlog")
            async for _ in light.content:
                pass
            light.release()
            next_light = await time_to_first_token(client, light_gateway, "kl")
            return next_light, await asyncio.gather(*running)

    next_light_ttft, heavy_finished = asyncio.run(scenario())
    assert next_light_ttft < TOKENS * INTERVAL / 2
    assert all(heavy_finished)


class HeavyStream:
    """One stream of the heavy tenant, read to its end; `head_start` is set once HEAD_START_TOKENS came."""

    def __init__(self, client: aiohttp.ClientSession, gateway: str):
        self.client, self.gateway = client, gateway
        self.head_start = asyncio.Event()

    async def run(self) -> bool:
        tokens, done = 0, False
        async with self.client.post(
            self.gateway + "/v1/chat/completions", json=STREAM_BODY, headers={"Authorization": "Bearer kh"}
        ) as answer:
            async for line in answer.content:
                tokens += b'"content"' in line
                if tokens >= HEAD_START_TOKENS:
                    self.head_start.set()
                done = done or line.startswith(b"data: [DONE]")
        return answer.status == 200 and done


async def time_to_first_token(client: aiohttp.ClientSession, gateway: str, key: str) -> float:
    began = asyncio.get_running_loop().time()
    async with client.post(
        gateway + "/v1/chat/completions", json=STREAM_BODY, headers={"Authorization": f"Bearer {key}"}
    ) as answer:
        async for line in answer.content:
            if b'"content"' in line:
                return asyncio.get_running_loop().time() - began
    raise AssertionError("the stream ended without content")
