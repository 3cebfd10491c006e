"""Rate limits against a real Redis: the admission script, windows, Retry-After, and what happens
when Redis cannot be reached (fail open by default, counted and logged; or deny)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import uuid

import httpx
import pytest
import redis

from llm_gateway.limits import (
    ADMIT_SCRIPT,
    FINISH_SCRIPT,
    SEED_SCRIPT,
    Amount,
    LimiterUnavailable,
    LimitsConfig,
    RateLimits,
    SharedCounters,
    rate_limit_checks,
    tokens_key,
    window,
)
from tenantctl.local import launchers
from tests.helpers import (
    away_from_a_minute_boundary,
    chat,
    controlled_gateway_config,
    free_port,
    metric_value,
    tenant_route,
)

LIMITS = RateLimits(requests_per_minute=3, requests_per_hour=5, tokens_per_minute=100)


class Counters:
    """SharedCounters (asyncio Redis) driven from a test: each call awaited on the fixture's one event loop."""

    def __init__(self, shared: SharedCounters, runner: asyncio.Runner):
        self.shared, self.runner = shared, runner

    def key(self, *parts: object) -> str:
        return self.shared.key(*parts)

    def admit(self, checks):
        return self.runner.run(self.shared.admit(checks))

    def finish(self, amounts):
        return self.runner.run(self.shared.finish(amounts))


@pytest.fixture
def counters(redis_url):
    with asyncio.Runner() as runner:
        shared = SharedCounters(LimitsConfig(redis_url=redis_url, key_prefix=f"test-{uuid.uuid4().hex}"))
        yield Counters(shared, runner)
        runner.run(shared.aclose())


def admitted(counters: Counters, now: float, limits: RateLimits = LIMITS) -> str | None:
    refused = counters.admit(rate_limit_checks(counters, "t", limits, now))
    return None if refused is None else refused.reason


def test_requests_per_minute_then_per_hour(counters):
    start = 3600 * 1000.0  # the start of an hour (and of a minute)
    assert [admitted(counters, start + i) for i in range(4)] == [None, None, None, "rate_limit_requests_per_minute"]
    assert [admitted(counters, start + 60 + i) for i in range(3)] == [None, None, "rate_limit_requests_per_hour"]
    assert admitted(counters, start + 3600) is None  # a new hour, a new minute


def test_a_refusal_counts_nothing(counters):
    start = 3600 * 2000.0
    for _ in range(3):
        admitted(counters, start)
    for _ in range(5):
        assert admitted(counters, start) == "rate_limit_requests_per_minute"
    assert admitted(counters, start + 60) is None  # the refusals did not use up the hour


def test_tokens_per_minute_refuse_once_used_up(counters):
    start = 3600 * 3000.0
    limits = RateLimits(requests_per_minute=100, requests_per_hour=100, tokens_per_minute=100)
    assert admitted(counters, start, limits) is None
    counters.finish([Amount(tokens_key(counters, "t", start), 99, 120)])
    assert admitted(counters, start, limits) is None
    counters.finish([Amount(tokens_key(counters, "t", start), 1, 120)])
    assert admitted(counters, start + 1, limits) == "rate_limit_tokens_per_minute"
    assert admitted(counters, start + 60, limits) is None


def test_a_redis_that_stops_answering_is_unavailable_after_the_timeout(process_group, tmp_path):
    """A Redis that accepts but never answers (stopped with SIGSTOP) is given up on after
    `socket_timeout_seconds`, and the connection it held is not reused for the next call."""
    port, password = free_port(), "redis-test-password"
    server = process_group(launchers.redis_server(port, tmp_path / "redis", password=password))
    settings = LimitsConfig(
        redis_url=launchers.redis_url("127.0.0.1", port, password),
        key_prefix="stopped",
        socket_timeout_seconds=0.2,
        retry_after_error_seconds=0,
    )
    with asyncio.Runner() as runner:
        counters = Counters(SharedCounters(settings), runner)
        start = 3600 * 4000.0
        assert admitted(counters, start) is None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(LimiterUnavailable):
                admitted(counters, start)
            with pytest.raises(LimiterUnavailable):
                counters.finish([Amount(tokens_key(counters, "t", start), 5, 120)])
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # Answering again, on a fresh connection. The admission given up on was still queued in Redis and
        # ran when it resumed: it counts (as it did with redis-py's own socket timeout).
        assert admitted(counters, start) is None
        assert admitted(counters, start) == "rate_limit_requests_per_minute"
        runner.run(counters.shared.aclose())


def test_retry_after_is_the_time_left_in_the_window():
    assert window(60, 120.0) == (2, 60)
    assert window(60, 179.2) == (2, 1)
    assert window(3600, 3600 * 5 + 59.5) == (5, 3541)


def gateway_with_limits(process_group, tmp_path, stub_url, redis_url, **limits):
    config = controlled_gateway_config(
        [tenant_route("t1", "k1", rate_limits=LIMITS.model_dump())], stub_url, redis_url, limits=limits
    )
    port = free_port()
    process_group(launchers.gateway(config, port, tmp_path, workers=1))
    return f"http://127.0.0.1:{port}"


def test_over_the_limit_is_a_429_with_retry_after(process_group, tmp_path, stub_url, redis_url):
    gateway = gateway_with_limits(process_group, tmp_path, stub_url, redis_url, key_prefix=uuid.uuid4().hex)
    away_from_a_minute_boundary()
    statuses = [chat(gateway, "k1").status_code for _ in range(4)]
    refused = chat(gateway, "k1")
    assert statuses[:3] == [200, 200, 200] and statuses[3] == refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] == {
        "type": "rate_limit_error",
        "code": "rate_limit_requests_per_minute",
        "message": refused.json()["error"]["message"],
        "request_id": refused.headers["X-Request-Id"],
    }
    metrics = httpx.get(gateway + "/metrics").text
    refusals = metric_value(metrics, "llm_gateway_refusals_total", tenant="t1", reason="rate_limit_requests_per_minute")
    assert refusals == 2


def test_a_gateway_worker_loads_the_scripts_and_connects_before_its_first_request(
    process_group, tmp_path, stub_url, own_redis
):
    """So that a worker's first admissions are one round trip each, not a connection, a missing script and
    its loading inside the call's deadline (on a busy machine that could overrun it and fail open). The
    connection that loaded them stays open in the worker's pool."""
    direct = redis.Redis.from_url(own_redis)
    shas = [hashlib.sha1(script.encode()).hexdigest() for script in (ADMIT_SCRIPT, FINISH_SCRIPT, SEED_SCRIPT)]
    assert direct.script_exists(*shas) == [False] * 3
    gateway_with_limits(process_group, tmp_path, stub_url, own_redis)  # one worker, answering: its lifespan has run
    assert direct.script_exists(*shas) == [True] * 3
    assert [client["cmd"] for client in direct.client_list() if client["cmd"] != "client|list"] == ["script|load"]


def test_redis_down_fails_open_by_default_counted_and_logged(process_group, tmp_path, stub_url):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    gateway = gateway_with_limits(process_group, tmp_path, stub_url, nowhere)
    # The worker could not connect at start; the first request tries again (and is counted with the rest).
    assert [chat(gateway, "k1").status_code for _ in range(5)] == [200] * 5  # more than the limit of 3
    metrics = httpx.get(gateway + "/metrics").text
    assert metric_value(metrics, "llm_gateway_limiter_unavailable_total", tenant="t1", decision="allowed") == 5
    log = (tmp_path / "gateway.log").read_text()
    assert "does not answer yet" in log and "limits and budgets are NOT enforced" in log


def test_redis_down_can_deny_instead(process_group, tmp_path, stub_url):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    gateway = gateway_with_limits(process_group, tmp_path, stub_url, nowhere, on_redis_error="deny")
    response = chat(gateway, "k1")
    assert response.status_code == 503 and response.json()["error"]["code"] == "limiter_unavailable"
    assert response.headers["Retry-After"] == "5"
