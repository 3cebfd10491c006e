"""One admission for a model's pool across gateway processes (pool_admission.py), against a real Redis.

Each `Process` here is what one gateway worker holds: its own Redis client, lease refresh and admission hub
(its own wake-up channel), all on the test's one event loop; two of them share a pool's slots as two worker
processes do. The fair-queue tests (test_fair_queue.py) are replayed with the tenants in different processes:
which waiting request gets each freed slot, the slots a claim keeps, the per-tenant bound and the deadline.
Then what only sharing has: the member a slot is on, a dead process's slots and waiting requests lapsing, a
member's own count of sequences (vLLM) taken off its free slots, and Redis down."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
import redis

import openai_stub
from llm_common.errors import Refusal
from llm_common.metrics_registry import MetricsRegistry
from llm_gateway.backends import AiohttpClient, BackendPool, PoolMember
from llm_gateway.concurrency import ConcurrencyLeases
from llm_gateway.limits import LimitsConfig, SharedCounters
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.pool_admission import AdmissionHub, PoolAdmission, Slot, engine_sequences
from tenantctl.local import launchers
from tests.helpers import InProcessServer, free_port

LEASE_SECONDS = 1  # the shortest lease: a dead process's slots lapse within a second


async def until(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Wait (on the event loop) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Process:
    """One gateway worker's side of shared admission: its Redis client, lease refresh and hub."""

    def __init__(self, redis_url: str, prefix: str, **limits):
        settings = {"lease_seconds": LEASE_SECONDS, **limits}
        self.counters = SharedCounters(LimitsConfig(redis_url=redis_url, key_prefix=prefix, **settings))
        self.leases = ConcurrencyLeases(self.counters)
        self.hub = AdmissionHub(self.counters, self.leases)
        self.metrics = GatewayMetrics(MetricsRegistry(None))
        self.pools: list[PoolAdmission] = []

    def pool(self, capacity: int, members: list[str] | None = None, unleased: dict | None = None, **settings):
        """A pool of `members` (one by default) with `capacity` slots on each."""
        settings = {"max_queued_per_tenant": 100, "queue_timeout": 30.0, "share_hold": 1.0, **settings}
        urls = members or ["http://member-0"]
        unleased = unleased if unleased is not None else {}

        def view(exclude: frozenset[str]) -> list[tuple[str, int]]:
            return [(url, unleased.get(url, 0)) for url in urls if url not in exclude]

        admission = PoolAdmission("model", capacity, view, self.metrics, hub=self.hub, **settings)
        admission.start()
        self.pools.append(admission)
        return admission

    async def die(self) -> None:
        """What SIGKILL leaves behind: nothing refreshes this process's slots or waiting requests any more."""
        await self.leases.aclose()
        for admission in self.pools:
            await admission.aclose()

    async def close(self) -> None:
        await self.die()
        await self.counters.aclose()


def processes(redis_url: str, count: int = 2, **limits) -> list[Process]:
    prefix = f"pool-test-{uuid.uuid4().hex}"
    return [Process(redis_url, prefix, **limits) for _ in range(count)]


def fair(redis_url: str, scenario, **limits) -> object:
    """Run `scenario(first, second)` with two processes sharing one prefix."""

    async def run():
        first, second = processes(redis_url, **limits)
        try:
            return await scenario(first, second)
        finally:
            await first.close()
            await second.close()

    return asyncio.run(run())


class Holders:
    """Slots held by the test, given back oldest first; waiting requests in order of arrival."""

    def __init__(self) -> None:
        self.slots: list[tuple[str, Slot]] = []
        self.order: list[str] = []
        self.tasks: list[asyncio.Task] = []

    async def take(self, admission: PoolAdmission, tenant: str, weight: float = 1.0) -> Slot:
        slot = await admission.acquire(tenant, weight)
        self.slots.append((tenant, slot))
        return slot

    async def queue(self, admission: PoolAdmission, tenant: str, weight: float = 1.0) -> None:
        """One more waiting request of `tenant` (returns once it waits)."""
        before = admission.shared.waiting(tenant)

        async def wait() -> None:
            slot = await admission.acquire(tenant, weight)
            self.order.append(tenant)
            self.slots.append((tenant, slot))

        self.tasks.append(asyncio.create_task(wait()))
        await until(lambda: admission.shared.waiting(tenant) > before or self.tasks[-1].done(), "the request to wait")

    async def release_oldest(self) -> None:
        """Give the oldest slot back and wait until a waiting request took it (if any waits)."""
        granted = len(self.order)
        _, slot = self.slots.pop(0)
        slot.release()
        if any(not task.done() for task in self.tasks):
            await until(lambda: len(self.order) > granted, "a waiting request to get the freed slot")

    async def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def grant_order(holders: Holders, arrivals: list[tuple[PoolAdmission, str, float]], releases: int) -> list:
    for admission, tenant, weight in arrivals:
        await holders.queue(admission, tenant, weight)
    for _ in range(releases):
        await holders.release_oldest()
    await holders.cancel()
    return holders.order


def test_a_tenant_alone_uses_the_whole_pool_across_processes_spread_over_the_members(redis_url):
    members = ["http://member-0", "http://member-1"]

    async def scenario(first: Process, second: Process):
        pools = [first.pool(2, members), second.pool(2, members)]
        holders = Holders()
        for index in range(4):
            await holders.take(pools[index % 2], "alone")
        on_members = sorted(slot.member for _, slot in holders.slots)
        await holders.queue(pools[0], "alone")  # the fifth waits, whichever process it comes through
        waiting = pools[0].shared.waiting("alone")
        await holders.cancel()
        return on_members, waiting

    assert fair(redis_url, scenario) == (sorted(members * 2), 1)


def test_a_freed_slot_goes_to_the_light_tenant_waiting_in_another_process_before_the_heavy_backlog(redis_url):
    async def scenario(first: Process, second: Process):
        heavy, light = first.pool(1), second.pool(1)
        holders = Holders()
        await holders.take(heavy, "heavy")
        arrivals = [(heavy, "heavy", 1.0)] * 5 + [(light, "light", 1.0)]
        return await grant_order(holders, arrivals, releases=6)

    assert fair(redis_url, scenario) == ["light", "heavy", "heavy", "heavy", "heavy", "heavy"]


def test_two_backlogged_tenants_in_two_processes_alternate(redis_url):
    async def scenario(first: Process, second: Process):
        a, b = first.pool(1), second.pool(1)
        holders = Holders()
        await holders.take(a, "a")
        return await grant_order(holders, [(a, "a", 1.0)] * 4 + [(b, "b", 1.0)] * 4, releases=8)

    assert fair(redis_url, scenario) == ["b", "a", "b", "a", "b", "a", "b", "a"]


def test_slots_are_shared_by_weight_across_processes(redis_url):
    async def scenario(first: Process, second: Process):
        big, small = first.pool(1), second.pool(1)
        holders = Holders()
        await holders.take(big, "x")
        return await grant_order(holders, [(big, "big", 2.0)] * 8 + [(small, "small", 1.0)] * 8, releases=9)

    order = fair(redis_url, scenario)
    assert order.count("big") == 6 and order.count("small") == 3


def test_idle_time_earns_no_credit_across_processes(redis_url):
    async def scenario(first: Process, second: Process):
        a, b = first.pool(1), second.pool(1)
        for _ in range(20):  # "a" alone: twenty requests one after the other
            slot = await a.acquire("a", 1.0)
            slot.release()
        await until(lambda: a.shared.held == 0, "the last release")
        holders = Holders()
        await holders.take(a, "a")
        return await grant_order(holders, [(b, "b", 1.0)] * 4 + [(a, "a", 1.0)] * 4, releases=6)

    assert fair(redis_url, scenario)[:4] in (["b", "a", "b", "a"], ["a", "b", "a", "b"])


def test_a_light_tenants_next_request_takes_the_slot_its_last_answer_freed_though_another_process_queues(
    redis_url,
):
    """Of 4 slots the light tenant (second process) uses one and the heavy tenant (first process) three, with
    ten more waiting. When the light answer ends its slot stays free for it: its next request takes it at once."""

    async def scenario(first: Process, second: Process):
        heavy, light = first.pool(4), second.pool(4)
        holders = Holders()
        light_slot = await light.acquire("light", 1.0)
        for _ in range(3):
            await holders.take(heavy, "heavy")
        for _ in range(10):
            await holders.queue(heavy, "heavy")
        light_slot.release()
        await until(lambda: light.shared.held == 0, "the light slot given back")
        next_light = await asyncio.wait_for(light.acquire("light", 1.0), timeout=10)
        heavy_waiting = heavy.shared.waiting("heavy")
        next_light.release()
        await holders.cancel()
        return next_light.member, heavy_waiting

    assert fair(redis_url, scenario) == ("http://member-0", 10)


def test_a_claim_ends_share_hold_after_the_tenant_last_used_its_slots(redis_url):
    async def scenario(first: Process, second: Process):
        heavy, light = first.pool(2, share_hold=0.2), second.pool(2, share_hold=0.2)
        holders = Holders()
        light_slot = await light.acquire("light", 1.0)
        await holders.take(heavy, "heavy")
        for _ in range(3):
            await holders.queue(heavy, "heavy")
        light_slot.release()  # and the light tenant sends nothing more
        await until(lambda: light.shared.held == 0, "the light slot given back")
        held = heavy.shared.waiting("heavy")
        await until(lambda: heavy.shared.waiting("heavy") == 2, "the claim to end and the heavy tenant to get it")
        await holders.cancel()
        return held

    assert fair(redis_url, scenario) == 3


def test_a_claim_is_never_more_than_the_tenants_share(redis_url):
    async def scenario(first: Process, second: Process):
        one, two = first.pool(4), second.pool(4)
        slots = [await one.acquire("first", 1.0) for _ in range(4)]
        for slot in slots:
            slot.release()
        await until(lambda: one.shared.held == 0, "the slots given back")
        holders = Holders()
        granted = 0
        for _ in range(4):
            await holders.queue(two, "second")
            granted += holders.tasks[-1].done()
        waiting = two.shared.waiting("second")
        await holders.cancel()
        return granted, waiting

    assert fair(redis_url, scenario) == (2, 2)


def test_without_share_hold_the_backlog_takes_every_freed_slot(redis_url):
    async def scenario(first: Process, second: Process):
        heavy, light = first.pool(4, share_hold=0), second.pool(4, share_hold=0)
        holders = Holders()
        light_slot = await light.acquire("light", 1.0)
        for _ in range(3):
            await holders.take(heavy, "heavy")
        for _ in range(10):
            await holders.queue(heavy, "heavy")
        light_slot.release()
        await until(lambda: heavy.shared.waiting("heavy") == 9, "the backlog to take the freed slot")
        await holders.cancel()
        return heavy.shared.waiting("heavy")

    assert fair(redis_url, scenario) == 0


def test_the_per_tenant_bound_counts_every_process_and_a_long_wait_is_a_503(redis_url):
    async def scenario(first: Process, second: Process):
        one = first.pool(1, max_queued_per_tenant=1, queue_timeout=0.5)
        two = second.pool(1, max_queued_per_tenant=1, queue_timeout=0.5)
        holder = await one.acquire("a", 1.0)
        waiting = asyncio.create_task(one.acquire("a", 1.0))
        await until(lambda: one.shared.waiting("a") == 1, "the first waiting request")
        with pytest.raises(Refusal) as full:
            await two.acquire("a", 1.0)  # the tenant's one waiting request is in the other process
        with pytest.raises(Refusal) as timed_out:
            await waiting
        still_waiting = await second.counters.redis.zcard(two.shared.key("q", "a"))
        holder.release()
        return full.value, timed_out.value, still_waiting

    full, timed_out, still_waiting = fair(redis_url, scenario)
    assert (full.status, full.reason, full.headers["Retry-After"]) == (429, "pool_queue_full", "1")
    assert (timed_out.status, timed_out.reason, timed_out.headers["Retry-After"]) == (503, "pool_queue_timeout", "1")
    assert still_waiting == 0


def test_a_caller_that_leaves_while_waiting_leaves_the_queue_and_takes_no_slot(redis_url):
    async def scenario(first: Process, second: Process):
        one, two = first.pool(1), second.pool(1)
        holders = Holders()
        await holders.take(one, "a")
        leaving = asyncio.create_task(two.acquire("b", 1.0))
        await until(lambda: two.shared.waiting("b") == 1, "b to wait")
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        queue = two.shared.key("q", "b")
        await _until_redis(lambda: second.counters.redis.zcard(queue), 0, "b's request to leave the queue in Redis")
        order = await grant_order(holders, [(one, "c", 1.0)], releases=1)
        in_use = await second.counters.redis.zcard(two.shared.key("m", "http://member-0"))
        return order, in_use

    assert fair(redis_url, scenario) == (["c"], 1)


async def _until_redis(ask, expected, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while await ask() != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def test_a_dead_processs_slots_and_waiting_requests_lapse_within_the_lease(redis_url):
    """The first process holds the only slot and has a request waiting, then dies (nothing refreshes them any
    more). The second process's request waits behind them and is admitted once they lapse; the dead process's
    waiting request never holds the slot for long, and nothing of it stays in Redis."""

    async def scenario(first: Process, second: Process):
        doomed, survivor = first.pool(1, queue_timeout=120), second.pool(1, queue_timeout=120)
        await doomed.acquire("x", 1.0)
        dead_waiter = asyncio.create_task(doomed.acquire("x", 1.0))
        await until(lambda: doomed.shared.waiting("x") == 1, "the doomed process's waiting request")
        await first.die()
        waiting = asyncio.create_task(survivor.acquire("y", 1.0))
        await until(lambda: survivor.shared.waiting("y") == 1 or waiting.done(), "the survivor's request to wait")
        queued_behind_the_dead = not waiting.done()
        slot = await asyncio.wait_for(waiting, timeout=30)
        member = survivor.shared.key("m", "http://member-0")
        leases = await second.counters.redis.zrange(member, 0, -1)
        dead_queue = survivor.shared.key("q", "x")

        async def dead_waiting() -> int:
            await survivor.shared.dispatch()  # any call drops what lapsed
            return await second.counters.redis.zcard(dead_queue)

        await _until_redis(dead_waiting, 0, "the dead process's waiting request to lapse")
        waiting_count = await second.counters.redis.hget(survivor.shared.key("waiting"), "x")
        slot.release()
        dead_waiter.cancel()
        await asyncio.gather(dead_waiter, return_exceptions=True)
        holders = [lease.decode().rpartition(".")[0] for lease in leases]
        return queued_behind_the_dead, holders == [second.hub.token], waiting_count

    # A 2 s lease: the survivor's request comes well within the dead one's last lease, so it has to wait.
    assert fair(redis_url, scenario, lease_seconds=2) == (True, True, b"0")


def test_a_slot_goes_to_the_member_with_the_most_free_slots_and_unleased_sequences_take_slots(redis_url):
    """Member 0 runs one sequence nobody leased (vLLM said so): of 2 slots each, it has one free."""
    members = ["http://member-0", "http://member-1"]

    async def scenario(first: Process, second: Process):
        one = first.pool(2, members, unleased={"http://member-0": 1})
        two = second.pool(2, members, unleased={"http://member-0": 1})
        holders = Holders()
        for admission in (one, two, one):
            await holders.take(admission, "t")
        placed = [slot.member for _, slot in holders.slots]
        await holders.queue(two, "t")
        waiting = two.shared.waiting("t")
        await holders.cancel()
        return placed, waiting

    placed, waiting = fair(redis_url, scenario)
    assert placed == ["http://member-1", "http://member-0", "http://member-1"] and waiting == 1


def test_engine_sequences_are_read_from_vllm_metrics():
    text = (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 2.0\n'
        'vllm:num_requests_swapped{engine="0",model_name="m"} 7.0\n'
        "model_server_requests_total 9\n"
    )
    assert engine_sequences(text) == 5
    assert engine_sequences("model_server_requests_total 9\n") is None


def test_a_vllm_members_own_count_beyond_its_leases_takes_its_free_slots_but_not_a_cpu_members(redis_url):
    """The stub reports one sequence nobody leased: a vllm pool of 2 slots admits one request, then queues;
    a cpu pool in front of the same server ignores the report (the CPU model server exports no such count)."""
    server = InProcessServer(openai_stub.app)
    url = server.start()

    async def second_request_waits(engine: str, process: Process) -> tuple[int, bool]:
        """(the member's unleased count, whether a second request must wait) with 2 slots and one reported."""
        member = PoolMember(url, AiohttpClient(url + "/v1", "x", connect_timeout=1, read_timeout=5))
        pool = BackendPool(
            f"model-{engine}",
            [member],
            process.metrics,
            health_path="/health",
            capacity_per_member=2,
            engine=engine,
            admission_hub=process.hub,
        )
        async with httpx.AsyncClient(timeout=5) as http:
            await pool.check_sequences_once(http)
        first_slot = await pool.admission.acquire("t", 1.0)
        second = asyncio.create_task(pool.admission.acquire("t", 1.0))
        await until(lambda: pool.admission.shared.waiting("t") == 1 or second.done(), "the second request")
        waits = not second.done()
        second.cancel()
        for outcome in await asyncio.gather(second, return_exceptions=True):
            if isinstance(outcome, Slot):
                outcome.release()
        first_slot.release()
        await pool.aclose()
        return member.unleased, waits

    async def scenario(first: Process, second: Process):
        httpx.post(url + "/control", json={"extra_running": 1})
        return {"vllm": await second_request_waits("vllm", first), "cpu": await second_request_waits("cpu", second)}

    try:
        results = fair(redis_url, scenario)
    finally:
        httpx.post(url + "/control", json={"extra_running": 0})
        server.stop()
    assert results == {"vllm": (1, True), "cpu": (0, False)}


def test_a_connect_failure_gives_the_slot_back_and_the_request_is_served_on_another_member(redis_url):
    server = InProcessServer(openai_stub.app)
    url = server.start()
    closed = f"http://127.0.0.1:{free_port()}"

    async def scenario(first: Process, second: Process):
        members = [
            PoolMember(address, AiohttpClient(address + "/v1", "x", connect_timeout=1, read_timeout=5))
            for address in (closed, url)  # the closed port first: the pick of equal members
        ]
        pool = BackendPool("model", members, first.metrics, capacity_per_member=1, admission_hub=first.hub)
        reply = await pool.chat({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}, tenant=None)
        redis_client = first.counters.redis
        for address in (closed, url):
            key = pool.admission.shared.key("m", address)
            await _until_redis(lambda key=key: redis_client.zcard(key), 0, f"no lease left on {address}")
        await pool.aclose()
        return b"Hello" in reply.content, members[0].usable(time.monotonic()), members[1].usable(time.monotonic())

    try:
        assert fair(redis_url, scenario) == (True, False, True)
    finally:
        server.stop()


def test_redis_down_falls_back_to_the_local_queue_over_the_whole_pool_and_returns_when_it_answers(
    process_group, tmp_path
):
    port, password = free_port(), "pool-admission-test"
    url = launchers.redis_url("127.0.0.1", port, password)

    async def scenario():
        (process,) = processes(url, count=1, retry_after_error_seconds=0.05)
        try:
            admission = process.pool(2, ["http://member-0", "http://member-1"])
            local = [await admission.acquire("t", 1.0) for _ in range(4)]  # the whole pool, from this process
            fallback = process.metrics.admission_fallback.labels(backend="model")._value.get()
            queued = asyncio.create_task(admission.acquire("t", 1.0))
            await until(lambda: admission.local.waiting("t") == 1, "a fifth request to wait locally")
            for slot in local:
                slot.release()
            await asyncio.wait_for(queued, 10)
            (await queued).release()

            await asyncio.to_thread(process_group, launchers.redis_server(port, tmp_path / "redis", password=password))

            async def shared_slot() -> Slot | None:
                slot = await admission.acquire("t", 1.0)
                if slot.member is None:
                    slot.release()
                    return None
                return slot

            deadline, slot = time.monotonic() + 30, None
            while slot is None and time.monotonic() < deadline:
                slot = await shared_slot()
            leased = await process.counters.redis.zcard(admission.shared.key("m", slot.member))
            slot.release()
            return [s.member for s in local], fallback, leased
        finally:
            await process.close()

    members, fallback, leased = asyncio.run(scenario())
    assert members == [None] * 4 and fallback == 4
    assert leased == 1
    assert redis.Redis.from_url(url).ping()


def test_a_grant_whose_message_is_lost_is_found_by_the_poll(redis_url):
    async def scenario(first: Process, second: Process):
        one, two = first.pool(1), second.pool(1)
        holder = await one.acquire("a", 1.0)
        waiting = asyncio.create_task(two.acquire("b", 1.0))
        await until(lambda: two.shared.waiting("b") == 1, "b to wait")
        second.hub._listener.cancel()  # its subscription is gone: the grant's message reaches nobody
        holder.release()
        slot = await asyncio.wait_for(waiting, timeout=20)
        slot.release()
        return slot.member

    assert fair(redis_url, scenario) == "http://member-0"


def test_a_request_waiting_when_redis_stops_moves_to_the_local_queue(process_group, tmp_path):
    """The pool's one slot is held (shared); a request waits for it in Redis; Redis stops. The waiting
    request moves to this process's queue, whose capacity is the pool's minus the shared slots still held,
    and it gets the slot once that one is given back."""
    port, password = free_port(), "pool-admission-test"
    server = process_group(launchers.redis_server(port, tmp_path / "redis", password=password))
    url = launchers.redis_url("127.0.0.1", port, password)

    async def scenario():
        (process,) = processes(url, count=1, retry_after_error_seconds=0.05)
        try:
            admission = process.pool(1, queue_timeout=60)
            holder = await admission.acquire("a", 1.0)
            waiting = asyncio.create_task(admission.acquire("b", 1.0))
            await until(lambda: admission.shared.waiting("b") == 1, "b to wait in Redis")
            await asyncio.to_thread(server.stop)
            await until(lambda: admission.local.waiting("b") == 1, "b to wait in the local queue")
            holder.release()  # Redis cannot be told: the shared slot is no longer this process's
            slot = await asyncio.wait_for(waiting, timeout=20)
            fallback = process.metrics.admission_fallback.labels(backend="model")._value.get()
            slot.release()
            return holder.member, slot.member, fallback
        finally:
            await process.close()

    assert asyncio.run(scenario()) == ("http://member-0", None, 1)
