"""Per-tenant concurrency limits (`max_concurrent_requests`) across real gateway processes sharing one
Redis: the limit holds across replicas, the other tenant is served, a long stream keeps its lease, and
the leases of a gateway killed with SIGKILL lapse on their own. The stub holds requests on demand
(`stub-fault:hold:<s>`); one test runs against the real model server."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tenantctl.local import launchers
from tests.helpers import STUB_MODEL, chat, controlled_gateway_config, free_port, tenant_route, wait_for

pytestmark = pytest.mark.e2e

BUSY, CALM = "k-busy", "k-calm"
LEASE_SECONDS = 2


def gateways(
    process_group,
    tmp_path,
    backend_url: str,
    redis_url: str,
    limit: int,
    count: int = 2,
    health_path: str = "/health",
    api_key: str | None = None,
    served_name: str | None = None,
    **route,
) -> list:
    config = controlled_gateway_config(
        [tenant_route("busy", BUSY, max_concurrent_requests=limit, **route), tenant_route("calm", CALM, **route)],
        backend_url,
        redis_url,
        limits={"key_prefix": f"cc-{uuid.uuid4().hex}", "lease_seconds": LEASE_SECONDS},
    )
    for pool in config["pools"].values():
        pool["health_path"] = health_path
        if api_key is not None:
            pool["api_key"] = api_key
    if served_name is not None:  # the name the backend knows the chat model by
        config["models"][STUB_MODEL]["served_name"] = served_name
    started = []
    for index in range(count):
        port = free_port()
        process = process_group(launchers.gateway(config, port, tmp_path / f"gateway-{index}", workers=2))
        started.append((process, f"http://127.0.0.1:{port}"))
    return started


def seen_by_stub(stub_url: str, request_id: str) -> bool:
    return any(seen["request_id"] == request_id for seen in httpx.get(stub_url + "/seen").json())


class Held:
    """A request in a background thread, kept in progress by the backend for `seconds`."""

    def __init__(self, url: str, key: str, seconds: float, stream: bool = False):
        self.request_id = str(uuid.uuid4())
        self.response: httpx.Response | None = None
        body = {"messages": [{"role": "user", "content": f"stub-fault:hold:{seconds}"}], "stream": stream}

        def run() -> None:
            try:
                self.response = chat(url, key, headers={"X-Request-Id": self.request_id}, timeout=60, **body)
            except httpx.HTTPError:  # its gateway was killed
                pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> httpx.Response:
        self.thread.join(60)
        assert self.response is not None
        return self.response


def test_a_tenant_at_its_limit_gets_429_across_gateways_while_the_other_is_served(
    process_group, tmp_path, stub_url, redis_url
):
    (_, first), (_, second) = gateways(process_group, tmp_path, stub_url, redis_url, limit=2)
    held = [Held(first, BUSY, 4), Held(second, BUSY, 4, stream=True)]
    wait_for(lambda: all(seen_by_stub(stub_url, h.request_id) for h in held), 30, "both held requests upstream")

    for url in (first, second):
        refused = chat(url, BUSY)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["Retry-After"] == "1"
        assert chat(url, CALM).status_code == 200  # the other tenant is served meanwhile
    metrics = httpx.get(first + "/metrics").text
    assert 'llm_gateway_refusals_total{reason="concurrency_limit_exceeded",tenant="busy"} 1.0' in metrics

    assert [h.join().status_code for h in held] == [200, 200]
    assert chat(first, BUSY).status_code == 200  # the leases were given back


def test_a_long_stream_keeps_its_lease_and_a_killed_gateways_leases_lapse(process_group, tmp_path, stub_url, redis_url):
    (doomed, first), (_, second) = gateways(process_group, tmp_path, stub_url, redis_url, limit=1)
    held = Held(first, BUSY, 3 * LEASE_SECONDS, stream=True)
    wait_for(lambda: seen_by_stub(stub_url, held.request_id), 30, "the held stream upstream")
    refreshed_until = time.monotonic() + 1.5 * LEASE_SECONDS
    while time.monotonic() < refreshed_until:  # past the lease's own life: still held, being refreshed
        assert chat(second, BUSY).status_code == 429
    doomed.kill()  # SIGKILL: nothing gives the lease back
    assert chat(second, BUSY).status_code == 429
    wait_for(lambda: chat(second, BUSY).status_code == 200, 10 * LEASE_SECONDS, "the dead gateway's lease to lapse")


def test_at_the_limit_on_the_real_model_the_other_tenant_is_served(
    process_group, tmp_path, model_url, model_api_key, redis_url
):
    """The real model server: one long stream holds acme's only slot; acme's next request is refused at
    once while closed's is answered."""
    ((_, gateway),) = gateways(
        process_group,
        tmp_path,
        model_url,
        redis_url,
        limit=1,
        count=1,
        health_path=launchers.EMBEDDED_MODEL_HEALTH_PATH,
        api_key=model_api_key,
        served_name=launchers.EMBEDDED_MODEL_NAME,
        max_tokens=1500,
    )
    # SmolLM2's end tokens (<|endoftext|> 0, <|im_end|> 2) banned: the answer runs to 1,500 tokens (seconds even
    # on an idle machine), so the stream is still generating, holding the lease, when the next request comes.
    body = {
        "messages": [{"role": "user", "content": "Count from 1 to 2000, one number per line."}],
        "stream": True,
        "max_tokens": 1500,
        "logit_bias": {"0": -100, "2": -100},
    }
    with httpx.stream(
        "POST", gateway + "/v1/chat/completions", json=body, timeout=120, headers={"Authorization": f"Bearer {BUSY}"}
    ) as stream:
        assert stream.status_code == 200
        # Keep the line iterator referenced: a throwaway generator over it would be collected after next(),
        # closing the response, and the gateway (rightly) ends a stream whose caller has gone.
        lines = stream.iter_lines()
        next(line for line in lines if line.startswith("data: "))  # generating
        refused = chat(gateway, BUSY)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "concurrency_limit_exceeded"
        served = chat(gateway, CALM, timeout=120)
        assert served.status_code == 200, served.text
        assert served.json()["choices"][0]["message"]["content"]
