"""Long streams through one real gateway process (uvicorn worker) in front of a slow stub model server:
many at once, each served as it comes (none waits for another's answer), and a caller that leaves
frees the upstream stream and its pool slot at once."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx

from llm_gateway.ledger import open_ledger
from openai_stub import stub_models
from tenantctl.local import launchers
from tests.helpers import free_port, metric_value, stub_backend, tenant_route, wait_for

TOKENS, INTERVAL = 20, 0.25  # the stub's streams: 20 tokens 0.25 s apart, 5 s an answer
STREAMS = 300


def slow_gateway(process_group, tmp_path) -> str:
    """One gateway worker in front of a stub that streams slowly; returns the gateway's URL."""
    stub_port, port = free_port(), free_port()
    process_group(
        stub_backend(
            stub_port, tmp_path, "--stream-tokens", str(TOKENS), "--token-interval", str(INTERVAL), "--no-seen"
        )
    )
    # A generous connect timeout: hundreds of connects at once on a busy machine must not eject the one member.
    config = {
        "tenants": [tenant_route("t", "k")],
        **stub_models(f"http://127.0.0.1:{stub_port}", connect_timeout_seconds=30),
        "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"},
    }
    process_group(launchers.gateway(config, port, tmp_path / "gateway", workers=1))
    return f"http://127.0.0.1:{port}"


async def first_tokens(url: str, count: int) -> list[float | None]:
    """Open `count` streams at once; the time each took to its first content chunk (None: it failed).
    aiohttp, as the gateway itself: httpx's asyncio client spends milliseconds of CPU per request,
    which with hundreds at once would measure the client."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as client:

        async def one() -> float | None:
            began = asyncio.get_running_loop().time()
            first = None
            async with client.post(
                url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
            ) as answer:
                if answer.status != 200:
                    return None
                async for line in answer.content:
                    if first is None and b'"content"' in line:
                        first = asyncio.get_running_loop().time() - began
                    if line.startswith(b"data: [DONE]"):
                        return first
            return None

        return await asyncio.gather(*(one() for _ in range(count)))


def test_hundreds_of_streams_are_served_at_once_by_one_worker(process_group, tmp_path):
    """With a thread per stream (the former gthread workers: 32 per worker) the 33rd stream waited for a
    whole answer before its first token; here every stream's first token comes before the stub could
    have finished even one answer (TOKENS x INTERVAL)."""
    gateway = slow_gateway(process_group, tmp_path)
    firsts = asyncio.run(first_tokens(gateway, STREAMS))
    assert None not in firsts, f"{firsts.count(None)} of {STREAMS} streams failed"
    assert max(firsts) < TOKENS * INTERVAL


def test_a_caller_that_leaves_frees_the_upstream_stream_and_its_pool_slot(process_group, tmp_path):
    gateway = slow_gateway(process_group, tmp_path)

    def in_flight() -> float:
        return metric_value(httpx.get(gateway + "/metrics").text, "llm_gateway_pool_member_in_flight_requests")

    with httpx.stream(
        "POST",
        gateway + "/v1/chat/completions",
        headers={"Authorization": "Bearer k"},
        json={"messages": [{"role": "user", "content": "Hi"}], "stream": True},
        timeout=60,
    ) as answer:
        for line in answer.iter_lines():
            if '"content"' in line:
                assert in_flight() == 1  # one token read, 19 to come
                break  # leaving the iteration closes the connection: the caller is gone
    wait_for(lambda: in_flight() == 0, timeout=30, what="the pool slot to be given back")

    def recorded() -> list[str]:
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        try:
            return [row.status for row in ledger.recent("t")]
        finally:
            ledger.close()

    wait_for(lambda: recorded() == ["client_closed"], timeout=30, what="the stream's ledger row")
