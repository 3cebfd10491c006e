"""Two gateway processes (two gunicorn workers each) sharing one Redis: under many parallel
requests, the number admitted equals the tenant's limit (within one)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tenantctl.local import launchers
from tests.helpers import (
    away_from_a_minute_boundary,
    chat,
    controlled_gateway_config,
    free_port,
    metric_value,
    tenant_route,
)

LIMIT = 25
REQUESTS = 80


def test_two_gateways_admit_exactly_the_limit(process_group, tmp_path, stub_url, redis_url):
    limits = {"requests_per_minute": LIMIT, "requests_per_hour": 10_000, "tokens_per_minute": 10_000_000}
    config = controlled_gateway_config(
        [tenant_route("shared", "k-shared", rate_limits=limits)],
        stub_url,
        redis_url,
        limits={"key_prefix": f"test-{uuid.uuid4().hex}"},
    )
    gateways = []
    for index in range(2):
        port = free_port()
        process_group(launchers.gateway(config, port, tmp_path / f"gateway-{index}", workers=2))
        gateways.append(f"http://127.0.0.1:{port}")

    away_from_a_minute_boundary()
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda i: chat(gateways[i % 2], "k-shared").status_code, range(REQUESTS)))
    admitted = statuses.count(200)
    # Admitted without Redis (it did not answer in time): the first thing to look at when this fails.
    unanswered = sum(
        metric_value(httpx.get(gateway + "/metrics").text, "llm_gateway_limiter_unavailable_total")
        for gateway in gateways
    )
    assert set(statuses) == {200, 429}, f"{admitted} admitted, {unanswered} of them without Redis"
    assert abs(admitted - LIMIT) <= 1, f"admitted {admitted} of {REQUESTS} with a limit of {LIMIT}"
