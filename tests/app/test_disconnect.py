"""A client that disconnects mid-stream frees the upstream request at every hop."""

from __future__ import annotations

import httpx

from tenant_spec.models import DEFAULT_MODEL
from tests.helpers import metric_value, wait_for


def in_flight(platform) -> tuple[float, float]:
    gateway = metric_value(
        httpx.get(platform.gateway_url + "/metrics").text,
        "llm_gateway_pool_member_in_flight_requests",
        backend=DEFAULT_MODEL,  # acme-corp's default model's own pool
    )
    proxy = metric_value(
        httpx.get(platform.tenant_urls["acme-corp"] + "/metrics").text, "tenant_proxy_in_flight_requests", route="/ask"
    )
    return gateway, proxy


def test_disconnect_mid_stream_frees_upstream(platform):
    body = {"question": "Write a long essay about the history of computing.", "stream": True, "max_tokens": 256}
    with httpx.stream("POST", platform.tenant_urls["acme-corp"] + "/ask", json=body, timeout=120) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        while not next(lines).startswith('data: {"type":"delta"'):
            pass
        assert in_flight(platform)[0] == 1  # the gateway holds one upstream request
    # leaving the block closed the connection after the first delta
    wait_for(lambda: in_flight(platform) == (0, 0), timeout=60, what="nothing in flight at gateway and proxy")
    follow_up = platform.ask("acme-corp", question="Say hi.", max_tokens=5)
    assert follow_up.status_code == 200
