"""A rate limit or budget refusal of the gateway reaches the proxy's caller as the gateway said it:
429, its Retry-After, its error type and code."""

from __future__ import annotations

import uuid

import httpx

from tenantctl.local import launchers
from tests.helpers import away_from_a_minute_boundary, controlled_gateway_config, free_port, tenant_route


def test_the_proxy_relays_a_429_with_retry_after(process_group, tmp_path, stub_url, redis_url):
    limits = {"requests_per_minute": 1, "requests_per_hour": 100, "tokens_per_minute": 10_000}
    config = controlled_gateway_config(
        [tenant_route("limited", "k-limited", rate_limits=limits)],
        stub_url,
        redis_url,
        limits={"key_prefix": uuid.uuid4().hex},
    )
    gateway_port, proxy_port = free_port(), free_port()
    process_group(launchers.gateway(config, gateway_port, tmp_path, workers=1))
    process_group(
        launchers.tenant_proxy(
            {
                "tenant": "limited",
                "system_prompt": "p",
                "gateway_url": f"http://127.0.0.1:{gateway_port}/v1",
                "gateway_key": "k-limited",
            },
            proxy_port,
            tmp_path,
            workers=1,
        )
    )
    away_from_a_minute_boundary()
    ask = [httpx.post(f"http://127.0.0.1:{proxy_port}/ask", json={"question": "hi"}, timeout=30) for _ in range(2)]
    assert ask[0].status_code == 200, ask[0].text
    assert ask[1].status_code == 429
    assert 1 <= int(ask[1].headers["Retry-After"]) <= 60
    assert ask[1].json()["error"]["type"] == "rate_limit_error"
    assert ask[1].json()["error"]["code"] == "rate_limit_requests_per_minute"
