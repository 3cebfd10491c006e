"""Pool routing decisions on real pool objects (members point at closed ports; nothing is called).
The pool's calls are awaited, each test on an event loop of its own (`asyncio.run`)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from llm_common.metrics_registry import MetricsRegistry
from llm_gateway.backends import AiohttpClient, BackendPool, PoolMember, UpstreamUnavailable
from llm_gateway.backends.outlier import OutlierPolicy
from llm_gateway.metrics import GatewayMetrics
from tests.helpers import free_port


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_pool(count: int, clock: FakeClock) -> BackendPool:
    members = []
    for _ in range(count):
        url = f"http://127.0.0.1:{free_port()}"
        members.append(PoolMember(url, AiohttpClient(url + "/v1", "x", connect_timeout=0.2, read_timeout=1)))
    return BackendPool(
        "smollm2-135m-instruct",  # a self-hosted model's pool is named after it
        members,
        GatewayMetrics(MetricsRegistry(None)),
        outlier=OutlierPolicy(eject_seconds=10),
        health_path="/health",
        unhealthy_threshold=2,
        clock=clock,
    )


def test_least_outstanding_member_is_tried_first():
    pool = make_pool(3, FakeClock())
    a, b, c = pool.members
    a.outstanding, b.outstanding, c.outstanding = 4, 1, 2
    assert pool._members_to_try() == [b, c, a]


def test_ejected_member_returns_after_the_cool_down():
    clock = FakeClock()
    pool = make_pool(2, clock)
    first, second = pool.members

    async def both_fail() -> None:
        try:
            await pool.chat({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        finally:
            await pool.aclose()

    with pytest.raises(UpstreamUnavailable, match=r"all 2 member\(s\) failed"):  # both are closed ports
        asyncio.run(both_fail())
    assert pool._members_to_try() == []
    assert not pool.is_available()
    clock.now += 10.1
    assert pool._members_to_try() == [first, second]


def test_health_checks_need_consecutive_failures():
    pool = make_pool(1, FakeClock())
    member = pool.members[0]

    async def check() -> None:
        async with httpx.AsyncClient(timeout=0.5) as http:
            await pool.check_health_once(http)
            assert member.healthy  # one failure is tolerated (a busy server may miss one check)
            await pool.check_health_once(http)
            assert not member.healthy

    asyncio.run(check())


def test_member_up_returns_to_1_after_the_cool_down_without_health_checks():
    """The OpenAI backend is never probed: its member_up must still recover once the ejection ends."""
    clock = FakeClock()
    metrics = GatewayMetrics(MetricsRegistry(None))
    url = f"http://127.0.0.1:{free_port()}"
    pool = BackendPool(
        "openai",
        [PoolMember(url, AiohttpClient(url, "x", connect_timeout=0.2, read_timeout=1))],
        metrics,
        outlier=OutlierPolicy(eject_seconds=10),
        health_interval=0.05,
        clock=clock,
    )

    def member_up() -> float:
        return metrics.member_up.labels(backend="openai", member=url)._value.get()

    async def scenario() -> None:
        with pytest.raises(UpstreamUnavailable):
            await pool.chat({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert member_up() == 0
        pool.start_health_checks()
        try:
            clock.now += 10.1
            deadline = time.monotonic() + 5
            while member_up() != 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert member_up() == 1
        finally:
            await pool.aclose()

    asyncio.run(scenario())
