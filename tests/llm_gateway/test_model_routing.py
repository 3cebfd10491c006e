"""Routing by model: the alias resolves first, then the tenant's entitlement is checked, then the model's own
pool (or OpenAI) answers; unknown, forbidden and disabled models are refused in OpenAI's shape, and a
tenant's fallback answers for a model that cannot."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from llm_gateway import create_app
from llm_gateway.config import GatewayConfig
from openai_stub import EMBEDDING_MODEL, stub_models
from tests.helpers import free_port, metric_value, tenant_route


@pytest.fixture
def gateway(stub_upstream):
    stub = stub_models(stub_upstream, health_interval_seconds=60)
    dead = f"http://127.0.0.1:{free_port()}"
    config = GatewayConfig.model_validate(
        {
            "tenants": [
                tenant_route("alpha", "k-alpha", models={"allowed": ["small"]}),
                tenant_route("beta", "k-beta", models={"allowed": ["tiny", "large", "retired"], "default": "large"}),
                tenant_route(
                    "gamma", "k-gamma", models={"allowed": ["retired", "gpt-4o-mini"], "fallback": "gpt-4o-mini"}
                ),
                tenant_route(
                    "delta", "k-delta", models={"allowed": ["broken", "gpt-4o-mini"], "fallback": "gpt-4o-mini"}
                ),
            ],
            "models": {
                "small": {
                    "engine": "cpu",
                    "source": "small.gguf",
                    "served_name": "small-served",
                    "aliases": ["tiny"],
                    "context_length": 4096,
                },
                "large": {"engine": "cpu", "source": "large.gguf", "aliases": ["big"]},
                "retired": {"engine": "cpu", "source": "retired.gguf", "enabled": False},
                "broken": {"engine": "cpu", "source": "broken.gguf"},
                "gpt-4o-mini": {"engine": "openai", "usd_per_million_input_tokens": 0.15},
                EMBEDDING_MODEL: stub["models"][EMBEDDING_MODEL],
            },
            "pools": {
                "small": stub["pools"][EMBEDDING_MODEL],
                "large": stub["pools"][EMBEDDING_MODEL],
                "broken": {"endpoints": [dead]},
                EMBEDDING_MODEL: stub["pools"][EMBEDDING_MODEL],
            },
            "openai": {"api_key": "sk-stub", "base_url": stub_upstream + "/v1"},
        }
    )
    with TestClient(create_app(config)) as client:
        yield client


def ask(client: TestClient, key: str, model: str | None = None) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "Hi"}], **({"model": model} if model else {})}
    return client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def upstream_model(stub_upstream: str) -> str:
    (last,) = [seen["body"] for seen in httpx.get(stub_upstream + "/seen").json()][-1:]
    return last["model"]


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


def test_an_alias_resolves_to_its_model_which_gets_its_served_name(gateway, stub_upstream):
    response = ask(gateway, "k-beta", "tiny")
    assert response.status_code == 200 and response.headers["X-LLM-Backend"] == "small"
    assert upstream_model(stub_upstream) == "small-served"
    assert ask(gateway, "k-beta").headers["X-LLM-Backend"] == "large"  # no model: the tenant's default
    assert ask(gateway, "k-beta", "tenant-default").headers["X-LLM-Backend"] == "large"
    text = gateway.get("/metrics").text
    assert metric_value(text, "llm_gateway_tokens_total", tenant="beta", model="small", kind="prompt") > 0


@pytest.mark.parametrize("asked", ["large", "big"])  # the alias is resolved before the entitlement is checked
def test_a_model_the_tenant_may_not_use_is_a_403_naming_it(gateway, asked):
    response = ask(gateway, "k-alpha", asked)
    assert response.status_code == 403
    assert error_of(response)["code"] == "model_not_allowed"
    assert f"'{asked}'" in error_of(response)["message"] and "127.0.0.1" not in response.text


def test_an_unknown_model_is_a_404_and_an_embedding_model_is_no_chat_model(gateway):
    unknown = ask(gateway, "k-alpha", "gpt-9")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "model_not_found"
    assert "'gpt-9'" in error_of(unknown)["message"]
    embedding = ask(gateway, "k-alpha", EMBEDDING_MODEL)
    assert embedding.status_code == 400 and error_of(embedding)["code"] == "model_not_supported"


def test_a_disabled_model_is_a_503_with_retry_after_while_the_others_answer(gateway):
    response = ask(gateway, "k-beta", "retired")
    assert response.status_code == 503 and error_of(response)["code"] == "model_disabled"
    assert int(response.headers["Retry-After"]) > 0 and "'retired'" in error_of(response)["message"]
    assert ask(gateway, "k-beta", "large").status_code == 200


def test_the_tenants_fallback_answers_for_a_disabled_model_and_one_whose_pool_is_down(gateway):
    for key in ("k-gamma", "k-delta"):
        response = ask(gateway, key)
        assert response.status_code == 200 and response.headers["X-LLM-Backend"] == "openai", response.text
    text = gateway.get("/metrics").text
    assert metric_value(text, "llm_gateway_cost_usd_total", tenant="delta", model="gpt-4o-mini") > 0


def test_models_lists_exactly_the_tenants_models_with_their_catalogue_entries(gateway):
    def listed(key: str) -> list[dict]:
        return gateway.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]

    assert [card["id"] for card in listed("k-alpha")] == ["small", EMBEDDING_MODEL]
    beta = {card["id"]: card for card in listed("k-beta")}
    assert list(beta) == ["small", "large", "retired", EMBEDDING_MODEL]
    assert beta["small"] == {
        "id": "small",
        "object": "model",
        "created": 0,
        "owned_by": "llm-tenants",
        "kind": "chat",
        "aliases": ["tiny"],
        "context_length": 4096,
        "enabled": True,
        "default": False,
    }
    assert beta["large"]["default"] and not beta["retired"]["enabled"]
    assert listed("k-gamma")[1]["owned_by"] == "openai"
    one = gateway.get("/v1/models/tiny", headers={"Authorization": "Bearer k-beta"})
    assert one.status_code == 200 and one.json()["id"] == "small"
    hidden = gateway.get("/v1/models/large", headers={"Authorization": "Bearer k-alpha"})
    assert hidden.status_code == 404 and error_of(hidden)["code"] == "model_not_found"
