"""Prefix-cache isolation: each tenant's requests to a self-hosted model carry its own cache_salt (tenants of one
prefix_cache_group share one), which callers cannot set and OpenAI never receives."""

from __future__ import annotations

import uuid

import httpx
import pytest
from starlette.testclient import TestClient

from llm_gateway import create_app
from llm_gateway.config import GatewayConfig
from openai_stub import stub_models
from tests.helpers import tenant_route


@pytest.fixture
def gateway(stub_upstream):
    """Four tenants on the stub: two alone, two sharing a cache group, one on an "OpenAI" model (the stub too)."""
    models = stub_models(stub_upstream, health_interval_seconds=60)
    config = GatewayConfig.model_validate(
        {
            "tenants": [
                tenant_route("alpha", "k-alpha"),
                tenant_route("beta", "k-beta"),
                tenant_route("gamma", "k-gamma", prefix_cache_group="research"),
                tenant_route("delta", "k-delta", prefix_cache_group="research"),
                tenant_route("omega", "k-omega", models={"allowed": ["gpt-4o-mini"]}),
            ],
            "models": {**models["models"], "gpt-4o-mini": {"engine": "openai"}},
            "pools": models["pools"],
            "openai": {"api_key": "sk-stub", "base_url": stub_upstream + "/v1"},
            "cache_salt_secret": "a-platform-secret-of-some-length",
        }
    )
    with TestClient(create_app(config)) as client:
        yield client


def salt_sent(client: TestClient, stub_upstream: str, key: str, **fields) -> str | None:
    request_id = str(uuid.uuid4())
    response = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], **fields},
        headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
    )
    assert response.status_code == 200, response.text
    (body,) = [seen["body"] for seen in httpx.get(stub_upstream + "/seen").json() if seen["request_id"] == request_id]
    return body.get("cache_salt", None)


def test_each_tenant_has_its_own_salt_and_a_group_shares_one(gateway, stub_upstream):
    alpha, beta = salt_sent(gateway, stub_upstream, "k-alpha"), salt_sent(gateway, stub_upstream, "k-beta")
    gamma, delta = salt_sent(gateway, stub_upstream, "k-gamma"), salt_sent(gateway, stub_upstream, "k-delta")
    assert alpha and beta and gamma and len({alpha, beta, gamma}) == 3
    assert salt_sent(gateway, stub_upstream, "k-alpha", stream=True) == alpha  # stable, streams too
    assert gamma == delta


def test_openai_models_get_no_salt(gateway, stub_upstream):
    assert salt_sent(gateway, stub_upstream, "k-omega") is None


def test_a_caller_cannot_choose_a_salt(gateway):
    response = gateway.post(
        "/v1/chat/completions",
        headers={"Authorization": "Bearer k-alpha"},
        json={"messages": [{"role": "user", "content": "Hi"}], "cache_salt": "guess"},
    )
    assert response.status_code == 400 and response.json()["error"]["message"].startswith("cache_salt")
