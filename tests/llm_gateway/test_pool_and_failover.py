"""Self-hosted pool routing, passive ejection, the OpenAI backend path, and failover to a tenant's fallback
model (`models.fallback`).

These tests start their own gateways (and a second model server to kill), so the
session platform stays intact.
"""

from __future__ import annotations

import time

import httpx
import pytest

from llm_gateway.auth import hash_gateway_key
from tenantctl.local import launchers
from tenantctl.local.model_cache import SMOLLM2_SOURCE
from tests.helpers import free_port, metric_value

SELF_HOSTED = launchers.EMBEDDED_MODEL_NAME  # a cpu model of the catalogue: served by a pool of its own
OPENAI = "gpt-4o-mini"  # an openai model, served under the self-hosted model's name by the servers these tests use
KEY_FALLBACK, KEY_SELF_HOSTED, KEY_OPENAI = "gk-test-fallback", "gk-test-self-hosted", "gk-test-openai"


def tenant(name: str, key: str, *allowed: str, fallback: str | None = None) -> dict:
    return {
        "name": name,
        "models": {"allowed": list(allowed), "fallback": fallback},
        "max_tokens": 16,
        "key_sha256": [hash_gateway_key(key)],
    }


KEY_LONG = "gk-test-long"
TENANTS = [
    tenant("t-fallback", KEY_FALLBACK, SELF_HOSTED, OPENAI, fallback=OPENAI),  # the self-hosted model, then OpenAI
    tenant("t-self-hosted", KEY_SELF_HOSTED, SELF_HOSTED),
    tenant("t-openai", KEY_OPENAI, OPENAI),
    {**tenant("t-long", KEY_LONG, SELF_HOSTED, OPENAI, fallback=OPENAI), "max_tokens": 400},
]


def gateway_config(pool: dict | None = None, openai: bool = False) -> dict:
    """Both models in the catalogue; a model whose servers (`pool`) or OpenAI key (`openai`) this gateway
    lacks is disabled, as a config must say."""
    return {
        "tenants": TENANTS,
        "models": {
            SELF_HOSTED: {"engine": "cpu", "source": SMOLLM2_SOURCE, "enabled": pool is not None},
            OPENAI: {"engine": "openai", "served_name": SELF_HOSTED, "enabled": openai},
        },
        "pools": {SELF_HOSTED: pool} if pool is not None else {},
    }


def pool(*endpoints: str) -> dict:
    return {
        "endpoints": list(endpoints),
        "health_path": launchers.EMBEDDED_MODEL_HEALTH_PATH,
        "health_interval_seconds": 0.5,
        "eject_cooldown_seconds": 30,
    }


def ask(gateway_url: str, key: str, **extra) -> httpx.Response:
    return httpx.post(
        gateway_url + "/v1/chat/completions",
        timeout=120,
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 4, **extra},
    )


def start_gateway(process_group, tmp_path, config: dict, env: dict | None = None) -> str:
    port = free_port()
    process_group(launchers.gateway(config, port, tmp_path, workers=1, extra_env=env))
    return f"http://127.0.0.1:{port}"


def test_dead_pool_member_is_retried_elsewhere_and_ejected(process_group, tmp_path, model_url, model_api_key):
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = start_gateway(
        process_group,
        tmp_path,
        gateway_config({**pool(dead, model_url), "api_key": model_api_key, "health_interval_seconds": 60}),
    )  # no health check before our calls
    for _ in range(3):
        response = ask(gateway, KEY_SELF_HOSTED)
        assert response.status_code == 200, response.text
    metrics = httpx.get(gateway + "/metrics").text
    assert metric_value(metrics, "llm_gateway_pool_member_up", member=dead) == 0
    assert metric_value(metrics, "llm_gateway_pool_member_up", member=model_url) == 1
    assert metric_value(metrics, "llm_gateway_upstream_errors_total", backend=SELF_HOSTED, reason="connect") == 1


def test_openai_backend_runs_the_real_sdk_path(process_group, tmp_path, model_url, model_api_key):
    """The openai backend pointed at a local OpenAI-compatible server (llama.cpp)."""
    gateway = start_gateway(
        process_group,
        tmp_path,
        gateway_config(openai=True),
        env={"OPENAI_API_KEY": model_api_key, "OPENAI_BASE_URL": model_url + "/v1"},
    )
    response = ask(gateway, KEY_OPENAI)
    assert response.status_code == 200, response.text
    assert response.headers["X-LLM-Backend"] == "openai"
    streamed = httpx.post(
        gateway + "/v1/chat/completions",
        timeout=120,
        headers={"Authorization": f"Bearer {KEY_OPENAI}"},
        json={"messages": [{"role": "user", "content": "Count to five."}], "stream": True},
    )
    assert streamed.status_code == 200
    assert streamed.text.rstrip().endswith("data: [DONE]")
    assert streamed.text.count("data: ") >= 4
    self_hosted_only = ask(gateway, KEY_SELF_HOSTED)  # its model has no servers on this gateway
    assert self_hosted_only.status_code == 503
    assert self_hosted_only.json()["error"]["code"] == "model_disabled"


def test_a_gateway_with_the_openai_backend_boots_and_answers_through_a_stub(process_group, tmp_path, stub_url):
    """The gateway's worker builds the SDK client at start: what the SDK is handed must be its own kind of
    value whichever HTTP library it runs on (a foreign timeout object once stopped every worker booting)."""
    gateway = start_gateway(
        process_group,
        tmp_path,
        gateway_config(openai=True),
        env={"OPENAI_API_KEY": "sk-stub", "OPENAI_BASE_URL": stub_url + "/v1"},
    )
    plain = ask(gateway, KEY_OPENAI)
    assert plain.status_code == 200, plain.text
    assert plain.headers["X-LLM-Backend"] == "openai"
    assert plain.json()["choices"][0]["message"]["content"]
    request_id = plain.headers["X-Request-Id"]
    assert request_id in {seen["request_id"] for seen in httpx.get(stub_url + "/seen").json()}

    streamed = httpx.post(
        gateway + "/v1/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {KEY_OPENAI}"},
        json={"messages": [{"role": "user", "content": "Say OK."}], "stream": True},
    )
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["X-LLM-Backend"] == "openai"
    assert streamed.text.rstrip().endswith("data: [DONE]")

    refused = ask(gateway, KEY_OPENAI, messages=[{"role": "user", "content": "stub-fault:429:7"}])
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "7"


def test_an_unreachable_openai_is_counted_as_a_connect_failure(process_group, tmp_path):
    gateway = start_gateway(
        process_group,
        tmp_path,
        gateway_config(openai=True),
        env={"OPENAI_API_KEY": "sk-stub", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"},
    )
    response = ask(gateway, KEY_OPENAI)
    assert response.status_code in (502, 503), response.text
    metrics = httpx.get(gateway + "/metrics").text
    assert metric_value(metrics, "llm_gateway_upstream_errors_total", backend="openai", reason="connect") == 1


@pytest.fixture
def doomed_model_server(process_group, tmp_path):
    port = free_port()
    server = process_group(
        launchers.catalogue_model_server("doomed", SMOLLM2_SOURCE, SELF_HOSTED, port, tmp_path / "doomed", threads=1)
    )
    return server, f"http://127.0.0.1:{port}"


def test_killing_the_model_server_fails_over_or_gives_a_clear_503(
    process_group, tmp_path, model_url, model_api_key, doomed_model_server
):
    server, doomed_url = doomed_model_server
    gateway = start_gateway(
        process_group,
        tmp_path,
        gateway_config(pool(doomed_url), openai=True),
        env={"OPENAI_API_KEY": model_api_key, "OPENAI_BASE_URL": model_url + "/v1"},
    )
    before = ask(gateway, KEY_FALLBACK)
    assert before.status_code == 200 and before.headers["X-LLM-Backend"] == SELF_HOSTED

    body = {"messages": [{"role": "user", "content": "Write a long story."}], "stream": True, "max_tokens": 400}
    with httpx.stream(
        "POST", gateway + "/v1/chat/completions", json=body, timeout=60, headers={"Authorization": f"Bearer {KEY_LONG}"}
    ) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        server.kill()  # mid-stream: bytes were already sent, so no failover; the stream must end cleanly
        rest = [line for line in lines if line.startswith("data: ")]
    assert '"type":"upstream_error"' in rest[-1] and f"{SELF_HOSTED} stream broke" in rest[-1]

    started = time.monotonic()
    after = ask(gateway, KEY_FALLBACK)  # the fallback model answers
    assert after.status_code == 200, after.text
    assert after.headers["X-LLM-Backend"] == "openai"
    self_hosted_only = ask(gateway, KEY_SELF_HOSTED)  # no fallback: a clear error naming the backend
    assert self_hosted_only.status_code in (502, 503)
    assert SELF_HOSTED in self_hosted_only.json()["error"]["message"]
    assert time.monotonic() - started < 60  # nothing hangs (generous bound, not a benchmark)
    ready = httpx.get(gateway + "/readyz").json()
    assert ready["backends"]["openai"] is True
