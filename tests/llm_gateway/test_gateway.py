"""The shared gateway: authentication by key, OpenAI-shaped errors, models, health, metrics."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from llm_gateway.ledger import open_ledger
from tenant_spec.models import DEFAULT_MODEL
from tests.helpers import metric_value

# The local platform's catalogue (tenantctl/local/catalogue.py): each self-hosted model is a backend of its own.
GEMMA = "gemma-3-270m"
EMBEDDING_MODEL = "all-minilm-l6-v2"


@pytest.fixture
def gateway(platform):
    return platform.gateway_url


def auth(platform, tenant: str) -> dict:
    return {"Authorization": f"Bearer {platform.keys[tenant]}"}


def chat(gateway: str, headers: dict, **body) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    body.setdefault("max_tokens", 5)
    return httpx.post(gateway + "/v1/chat/completions", json=body, headers=headers, timeout=120)


def test_health_and_readiness(gateway):
    assert httpx.get(gateway + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway + "/readyz")
    assert ready.status_code == 200
    # every model server of the catalogue; no OpenAI backend without a key (gpt-4o-mini is disabled)
    assert ready.json()["backends"] == {DEFAULT_MODEL: True, GEMMA: True, EMBEDDING_MODEL: True}


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer gk-not-a-real-key"}, "invalid_api_key"),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, "missing_api_key"),
        ({"X-Tenant-Id": "acme-corp"}, "missing_api_key"),
    ],
)
def test_unknown_or_missing_key_is_401(gateway, headers, code):
    response = chat(gateway, headers)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "type": "authentication_error",
        "code": code,
        "message": response.json()["error"]["message"],
        "request_id": response.headers["X-Request-Id"],
    }


def test_tenant_comes_from_the_key_not_from_headers_or_body(platform, gateway):
    """closed-ai's key with forged acme-corp markers is still charged to closed-ai."""

    def closed_ai_requests() -> float:
        return metric_value(
            httpx.get(gateway + "/metrics").text, "llm_gateway_backend_requests_total", tenant="closed-ai"
        )

    before = closed_ai_requests()
    response = chat(
        gateway, {**auth(platform, "closed-ai"), "X-Tenant-Id": "acme-corp"}, user="acme-corp", max_tokens=300
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 128  # closed-ai's cap, not acme-corp's 256
    assert closed_ai_requests() == before + 1
    forged = chat(gateway, auth(platform, "closed-ai"), tenant="acme-corp")  # not a field the contract knows
    assert forged.status_code == 400 and forged.json()["error"]["message"].startswith("tenant:")


def test_the_model_is_the_tenants_default_or_one_it_may_use(platform, gateway):
    """No model (or `tenant-default`): the tenant's default; an alias of a model it may use: that model, on its
    own server; a model it may not use, or none the catalogue has, is refused and never reaches a backend."""
    for asked in ({}, {"model": "tenant-default"}):
        response = chat(gateway, auth(platform, "acme-corp"), **asked)
        assert response.status_code == 200, response.text
        assert response.json()["model"] == DEFAULT_MODEL
        assert response.headers["X-LLM-Backend"] == DEFAULT_MODEL
    gemma = chat(gateway, auth(platform, "acme-corp"), model="gemma3")
    assert gemma.status_code == 200, gemma.text
    assert gemma.headers["X-LLM-Backend"] == GEMMA and gemma.json()["choices"][0]["message"]["content"]
    not_allowed = chat(gateway, auth(platform, "closed-ai"), model="gemma3")
    assert not_allowed.status_code == 403 and not_allowed.json()["error"]["code"] == "model_not_allowed"
    unknown = chat(gateway, auth(platform, "acme-corp"), model="gpt-5-ultra")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    disabled = chat(gateway, auth(platform, "acme-corp"), model="gpt-4o-mini")  # no OpenAI key in local mode
    assert disabled.status_code == 503 and disabled.json()["error"]["code"] == "model_disabled"


def test_models_lists_the_tenants_models(platform, gateway):
    def listed(tenant: str) -> dict[str, dict]:
        response = httpx.get(gateway + "/v1/models", headers=auth(platform, tenant))
        assert response.status_code == 200
        return {card["id"]: card for card in response.json()["data"]}

    acme = listed("acme-corp")
    assert list(acme) == [DEFAULT_MODEL, GEMMA, "gpt-4o-mini", EMBEDDING_MODEL]  # its spec's order, then embeddings
    assert acme[DEFAULT_MODEL]["default"] and not acme[GEMMA]["default"]
    assert not acme["gpt-4o-mini"]["enabled"] and acme["gpt-4o-mini"]["owned_by"] == "openai"
    assert acme[EMBEDDING_MODEL]["kind"] == "embedding"
    assert list(listed("closed-ai")) == [DEFAULT_MODEL, EMBEDDING_MODEL]


def test_official_sdk_against_the_gateway(platform, gateway):
    client = openai.OpenAI(base_url=gateway + "/v1", api_key=platform.keys["acme-corp"], max_retries=0)
    completion = client.chat.completions.create(
        model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "Hello"}]
    )
    assert completion.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway + "/v1", api_key="gk-wrong", max_retries=0).models.list()


BAD_BODIES = [
    ("malformed JSON", {"content": b"{", "headers": {"Content-Type": "application/json"}}, 400),
    ("no messages", {"json": {"model": "x"}}, 400),
    ("empty messages", {"json": {"messages": []}}, 400),
    ("message without role", {"json": {"messages": [{"content": "hi"}]}}, 400),
    ("content wrong type", {"json": {"messages": [{"role": "user", "content": 5}]}}, 400),
    ("stream wrong type", {"json": {"messages": [{"role": "user", "content": "hi"}], "stream": "no"}}, 400),
    ("max_tokens zero", {"json": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}}, 400),
    ("several answers", {"json": {"messages": [{"role": "user", "content": "hi"}], "n": 4}}, 400),
    (
        "lone surrogate",
        {
            "content": b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
            "headers": {"Content-Type": "application/json"},
        },
        400,
    ),
    (
        "deep nesting",
        {
            "content": b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "headers": {"Content-Type": "application/json"},
        },
        400,
    ),
    ("form body", {"content": b"a=b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
]


@pytest.mark.parametrize("label, kwargs, status", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies(platform, gateway, label, kwargs, status):
    headers = {**auth(platform, "acme-corp"), **kwargs.pop("headers", {})}
    response = httpx.post(gateway + "/v1/chat/completions", headers=headers, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"type", "message", "code", "request_id"}


def test_metrics_exposition(platform, gateway):
    chat(gateway, auth(platform, "acme-corp"))
    text = httpx.get(gateway + "/metrics").text
    assert metric_value(text, "llm_gateway_requests_total", route="/v1/chat/completions", tenant="acme-corp") >= 1
    assert metric_value(text, "llm_gateway_tokens_total", tenant="acme-corp", kind="completion") > 0
    assert metric_value(text, "llm_gateway_pool_member_up", backend=DEFAULT_MODEL) == 1
    assert "llm_gateway_request_duration_seconds_bucket" in text
    cost = metric_value(
        text, "llm_gateway_cost_usd_total", tenant="acme-corp", backend=DEFAULT_MODEL, model=DEFAULT_MODEL
    )
    assert cost > 0
    assert metric_value(text, "llm_gateway_tenant_monthly_budget_usd", tenant="acme-corp") == 50  # the test spec's
    assert f'llm_gateway_upstream_errors_total{{backend="{GEMMA}",reason="connect"}} 0.0' in text  # created at zero


def test_cost_follows_the_price_table(platform, gateway):
    """Cost = prompt and completion tokens times the model's catalogue prices (tenantctl/local/catalogue.py)."""

    def totals() -> tuple[float, float, float]:
        text = httpx.get(gateway + "/metrics").text
        return (
            metric_value(text, "llm_gateway_tokens_total", tenant="closed-ai", kind="prompt"),
            metric_value(text, "llm_gateway_tokens_total", tenant="closed-ai", kind="completion"),
            metric_value(text, "llm_gateway_cost_usd_total", tenant="closed-ai"),
        )

    before = totals()
    assert chat(gateway, auth(platform, "closed-ai")).status_code == 200
    prompt, completion, cost = (after - earlier for after, earlier in zip(totals(), before, strict=True))
    assert prompt > 0 and completion > 0
    assert cost == pytest.approx((prompt * 0.02 + completion * 0.05) / 1e6)


def test_streamed_answers_count_tokens_and_cost_even_without_backend_usage(platform, gateway):
    """llama.cpp sends no usage in streams: the gateway's own count (as in the ledger) goes to the metrics,
    so the cost counter (and the budget alert built on it) never skips streams."""

    def totals() -> tuple[float, float]:
        text = httpx.get(gateway + "/metrics").text
        return (
            metric_value(text, "llm_gateway_tokens_total", tenant="closed-ai", kind="completion"),
            metric_value(text, "llm_gateway_cost_usd_total", tenant="closed-ai"),
        )

    before = totals()
    with httpx.stream(
        "POST",
        gateway + "/v1/chat/completions",
        headers=auth(platform, "closed-ai"),
        timeout=120,
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": True},
    ) as stream:
        assert stream.status_code == 200
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert not any(json.loads(line[6:]).get("usage") for line in lines[:-1])  # the caller did not ask for usage
    completion, cost = (after - earlier for after, earlier in zip(totals(), before, strict=True))
    assert completion > 0 and cost > 0


def test_in_flight_requests_are_labelled_by_tenant(platform, gateway):
    """While acme-corp's stream is open, the gateway counts it under acme-corp (not 'unauthenticated')."""
    body = {
        "messages": [{"role": "user", "content": "Count from 1 to 300, one number per line."}],
        "stream": True,
        "max_tokens": 256,
    }
    seen = []
    with httpx.stream(
        "POST", gateway + "/v1/chat/completions", json=body, timeout=120, headers=auth(platform, "acme-corp")
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            text = httpx.get(gateway + "/metrics").text
            seen.append(
                (
                    metric_value(text, "llm_gateway_in_flight_requests", tenant="acme-corp"),
                    metric_value(text, "llm_gateway_in_flight_requests", tenant="unauthenticated"),
                )
            )
            if seen[-1][0] == 1:
                break
    assert seen and seen[-1] == (1, 0), seen


def test_embeddings_go_to_the_platform_embedding_model(platform, gateway):
    """Whatever model the caller names, every tenant gets all-MiniLM-L6-v2 (one vector space)."""
    response = httpx.post(
        gateway + "/v1/embeddings",
        headers=auth(platform, "acme-corp"),
        timeout=60,
        json={"model": "text-embedding-3-large", "input": ["hello world", "second input"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-LLM-Backend"] == EMBEDDING_MODEL
    body = response.json()
    assert body["model"] == EMBEDDING_MODEL
    assert [len(row["embedding"]) for row in body["data"]] == [384, 384]
    text = httpx.get(gateway + "/metrics").text
    assert metric_value(text, "llm_gateway_backend_requests_total", tenant="acme-corp", backend=EMBEDDING_MODEL) >= 1


@pytest.mark.parametrize("body", [{"model": "x"}, {"input": 5}, {"input": [{"a": 1}]}])
def test_embeddings_bad_input(platform, gateway, body):
    response = httpx.post(gateway + "/v1/embeddings", headers=auth(platform, "acme-corp"), json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_streams_are_recorded_even_when_the_backend_reports_no_usage(platform, gateway):
    """llama.cpp's server ignores stream_options: the gateway counts the chunks itself."""
    with httpx.stream(
        "POST",
        gateway + "/v1/chat/completions",
        headers=auth(platform, "acme-corp"),
        timeout=120,
        json={"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 12, "stream": True},
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
        chunks = [
            json.loads(line[6:])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    content_chunks = sum(1 for chunk in chunks if chunk["choices"] and chunk["choices"][0]["delta"].get("content"))
    ledger = open_ledger(platform.platform.ledger_url)
    try:
        (row,) = [row for row in ledger.recent("acme-corp", limit=20) if row.request_id == request_id]
    finally:
        ledger.close()
    assert row.stream and row.usage_estimated and row.status == "ok"
    assert row.completion_tokens == content_chunks > 0
    assert row.prompt_tokens > 0


def test_openapi_document_describes_the_routes(gateway):
    document = httpx.get(gateway + "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    chat_operation = document["paths"]["/v1/chat/completions"]["post"]
    assert chat_operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    assert set(chat_operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert "messages" in document["components"]["schemas"]["ChatCompletionRequest"]["required"]
    assert chat_operation["security"] == [{"bearer": []}]


# -- The request contract against the real model server ------------------------------------------------


def model_server_answers(platform) -> bool:
    return platform.platform.process(f"model-{DEFAULT_MODEL}").is_running()


@pytest.mark.parametrize("route", ["gateway", "proxy"])
def test_a_field_that_crashes_the_model_server_is_refused_and_every_tenant_is_still_served(platform, route):
    """`"grammar": "x"` would kill llama.cpp's server, for every tenant: it never reaches it."""
    url = platform.gateway_url if route == "gateway" else platform.tenant_urls["acme-corp"]
    headers = auth(platform, "acme-corp") if route == "gateway" else {}
    response = chat(url, headers, grammar="x")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "unsupported_parameter"
    assert response.json()["error"]["message"].startswith("grammar:")
    assert model_server_answers(platform)
    answer = platform.ask("closed-ai", question="Which company do you work for?", max_tokens=8)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("alias", ["max_completion_tokens", "n_predict"])
def test_no_max_tokens_alias_passes_the_tenants_cap(platform, gateway, alias):
    """vLLM honours max_completion_tokens over max_tokens, llama.cpp reads n_predict: none may pass the cap."""
    body = {
        "messages": [{"role": "user", "content": "Count from 1 to 1000, one number per line."}],
        alias: 2000,
        "temperature": 0,
    }
    response = httpx.post(gateway + "/v1/chat/completions", json=body, headers=auth(platform, "closed-ai"), timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 128  # closed-ai's max_tokens


def test_a_request_the_model_rejects_is_the_callers_and_the_pool_keeps_serving(platform, gateway):
    """A prompt longer than the model's context window: llama.cpp answers 400. The caller gets a 400 in its own
    terms; the pool member is not ejected, so the other tenant is served at once."""
    for _ in range(6):  # past any consecutive-failure threshold
        response = chat(gateway, auth(platform, "acme-corp"), messages=[{"role": "user", "content": "word " * 5000}])
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "backend_rejected_request"
        assert "127.0.0.1" not in response.text
    text = httpx.get(gateway + "/metrics").text
    assert metric_value(text, "llm_gateway_pool_member_up", backend=DEFAULT_MODEL) == 1
    assert chat(gateway, auth(platform, "closed-ai")).status_code == 200


def test_embeddings_are_in_the_ledger(platform, gateway):
    response = httpx.post(
        gateway + "/v1/embeddings",
        headers=auth(platform, "closed-ai"),
        timeout=60,
        json={"input": ["How do I file a claim?", "What does my policy cover?"]},
    )
    assert response.status_code == 200, response.text
    ledger = open_ledger(platform.platform.ledger_url)
    try:
        (row,) = [
            row for row in ledger.recent("closed-ai", limit=50) if row.request_id == response.headers["X-Request-Id"]
        ]
    finally:
        ledger.close()
    assert (row.backend, row.model, row.status, row.completion_tokens) == (EMBEDDING_MODEL, EMBEDDING_MODEL, "ok", 0)
    assert row.prompt_tokens == response.json()["usage"]["prompt_tokens"] > 0
