"""One admission for a model's pool across real gateway processes sharing one Redis (pool_admission.py): a
tenant alone holds exactly the pool's capacity at the model servers, spread over both members, never more;
and the slots of a gateway worker killed with SIGKILL come back once their leases lapse.

The model servers are two stubs (`openai_stub/`) that count the requests they are answering (`/stats`) and
hold each one (`stub-fault:hold:<s>`) until told to let go (`POST /control`); they also report that count as
vLLM's `/metrics` does, so the gateways' drift correction runs against them and must find nothing to correct."""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from openai_stub import stub_models
from tenantctl.local import launchers
from tests.helpers import chat, free_port, metric_value, stub_backend, tenant_route, wait_for

pytestmark = pytest.mark.e2e

KEY = "k-alone"
MAX_SEQUENCES = 4  # per member: the pool of two holds 8
HOLD = {"stream": True, "messages": [{"role": "user", "content": "stub-fault:hold:600"}]}  # until let go


def stubs(process_group, tmp_path: Path, count: int) -> list[str]:
    urls = []
    for index in range(count):
        port = free_port()
        process_group(stub_backend(port, tmp_path / f"stub-{index}", "--no-seen"))
        urls.append(f"http://127.0.0.1:{port}")
    return urls


def gateways(process_group, tmp_path: Path, members: list[str], redis_url: str, workers: list[int], **limits):
    """Gateways (one per entry of `workers`, with that many workers) sharing one Redis; [(process, url)]."""
    config = {
        "tenants": [tenant_route("alone", KEY)],
        **stub_models(
            members,
            entry={"engine": "vllm", "gpus": 1, "max_sequences": MAX_SEQUENCES},
            health_path="/health",
            health_interval_seconds=0.5,
            queue_timeout_seconds=60,
        ),
        "limits": {"redis_url": redis_url, "key_prefix": f"shared-pool-{uuid.uuid4().hex}", **limits},
    }
    started = []
    for index, count in enumerate(workers):
        port = free_port()
        process = process_group(launchers.gateway(config, port, tmp_path / f"gateway-{index}", workers=count))
        started.append((process, f"http://127.0.0.1:{port}"))
    return started


def stats(member: str) -> dict:
    return httpx.get(member + "/stats").json()


def waiting(gateway_urls: list[str]) -> float:
    """Requests waiting for a slot, in every worker of every gateway."""
    return sum(
        metric_value(httpx.get(url + "/metrics").text, "llm_gateway_pool_queue_depth", tenant="alone")
        for url in gateway_urls
    )


def streamed_to_the_end(response: httpx.Response) -> bool:
    return response.status_code == 200 and "data: [DONE]" in response.text


def test_a_tenant_alone_holds_exactly_the_pools_capacity_across_two_gateways_never_more(
    process_group, tmp_path, redis_url
):
    """Two gateways of two workers each, a pool of two stubs with max_sequences 4: twelve held streams,
    six through each gateway. Exactly eight run at the model servers, four on each, while four wait; once
    the stubs let go, the four waiting ones run and every stream ends; neither stub ever ran more than 4."""
    members = stubs(process_group, tmp_path, 2)
    urls = [url for _, url in gateways(process_group, tmp_path, members, redis_url, workers=[2, 2])]
    with ThreadPoolExecutor(12) as pool:
        streams = [pool.submit(chat, urls[index % 2], KEY, timeout=120, **HOLD) for index in range(12)]
        wait_for(
            lambda: sum(stats(member)["in_flight"] for member in members) == 8 and waiting(urls) == 4,
            timeout=60,
            what="8 streams at the model servers and 4 waiting",
        )
        running = [stats(member)["in_flight"] for member in members]
        for member in members:
            httpx.post(member + "/control", json={"holds": "released"})
        answers = [stream.result() for stream in streams]
    assert running == [MAX_SEQUENCES, MAX_SEQUENCES]
    assert all(streamed_to_the_end(answer) for answer in answers)
    assert [stats(member)["peak_in_flight"] for member in members] == [MAX_SEQUENCES, MAX_SEQUENCES]
    assert waiting(urls) == 0


def test_a_gateway_worker_killed_with_sigkill_gives_its_slots_back_once_their_leases_lapse(
    process_group, tmp_path, redis_url
):
    """One gateway worker holds the whole pool (one stub, 4 slots) with held streams; a request through the
    other gateway waits for a slot. The first worker is killed (SIGKILL: nothing gives its slots back), and
    the waiting request is admitted once the dead worker's leases lapse (`lease_seconds`, 2 s here)."""
    (member,) = stubs(process_group, tmp_path, 1)
    (doomed_process, doomed), (_, survivor) = gateways(
        process_group, tmp_path, [member], redis_url, workers=[1, 1], lease_seconds=2
    )
    with ThreadPoolExecutor(5) as pool:
        held = [pool.submit(_held_until_killed, doomed) for _ in range(MAX_SEQUENCES)]
        wait_for(lambda: stats(member)["in_flight"] == MAX_SEQUENCES, timeout=60, what="the pool full of held streams")
        queued = pool.submit(chat, survivor, KEY, timeout=120)
        wait_for(lambda: waiting([survivor]) == 1, timeout=60, what="the survivor's request to wait for a slot")
        (worker,) = _children(doomed_process.pid)
        os.kill(worker, signal.SIGKILL)
        answer = queued.result()
        killed = [stream.result() for stream in held]
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert killed == [None] * MAX_SEQUENCES  # the dead worker's streams broke off; none was answered


def _held_until_killed(gateway: str) -> int | None:
    try:
        response = chat(gateway, KEY, timeout=120, **HOLD)
    except httpx.HTTPError:
        return None
    return response.status_code if streamed_to_the_end(response) else None


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (a gunicorn master's workers)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children
