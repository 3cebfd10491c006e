"""Gateway configuration loading: the OpenAI key from env or a mounted file, clear errors."""

from __future__ import annotations

import json

import pytest

from llm_gateway.auth import hash_gateway_key
from llm_gateway.config import ConfigError, load_gateway_config
from openai_stub import stub_models

TENANT = {"name": "acme-corp", "models": {"allowed": ["stub-model"]}, "key_sha256": [hash_gateway_key("k")]}


def write(tmp_path, document) -> dict:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(document))
    return {"LLM_GATEWAY_CONFIG": str(path)}


OPENAI_CATALOGUE = {"gpt-4o-mini": {"engine": "openai"}}


def test_openai_key_from_a_mounted_secret_file(tmp_path):
    secret = tmp_path / "openai-key"
    secret.write_text("sk-from-file\n")
    config = load_gateway_config(
        {
            **write(tmp_path, {"tenants": [TENANT], "models": OPENAI_CATALOGUE}),
            "OPENAI_API_KEY_FILE": str(secret),
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    assert config.openai.api_key == "sk-from-file"
    assert config.openai.base_url == "http://127.0.0.1:9/v1"
    assert config.pools == {}


def test_environment_key_wins_over_file(tmp_path):
    document = {"tenants": [TENANT], "models": OPENAI_CATALOGUE}
    config = load_gateway_config({**write(tmp_path, document), "OPENAI_API_KEY": "sk-env"})
    assert config.openai.api_key == "sk-env"


STUB = stub_models("http://a")


@pytest.mark.parametrize(
    "document, message",
    [
        ({"tenants": [TENANT]}, "models: is required"),
        ({"tenants": [], **STUB}, "configure 'tenants', 'tenant_discovery' or both"),
        ({"tenant_discovery": {"namespace": ""}, **STUB}, "tenant_discovery.namespace"),
        (
            {"tenant_discovery": {"namespace": "monitoring", "refresh_seconds": 0}, **STUB},
            "tenant_discovery.refresh_seconds",
        ),
        ({"tenants": [{**TENANT, "key_sha256": ["abc"]}], **STUB}, "hex SHA-256"),
        ({"tenants": [TENANT], **stub_models("ftp://a")}, "must start with http"),
        ({"tenants": [TENANT, TENANT], **STUB}, "unique"),
        ({"tenants": [{**TENANT, "models": {"allowed": []}}], **STUB}, "tenants.0.models.allowed"),
        ({"tenants": [TENANT], "models": STUB["models"]}, "pools: the cpu model 'stub-model' needs its servers"),
        ({"tenants": [TENANT], **STUB, "pools": {**STUB["pools"], "gpt": {"endpoints": ["http://a"]}}}, "pools.gpt"),
        ({"tenants": [TENANT], "models": OPENAI_CATALOGUE}, "an openai model needs an OpenAI key"),
        ({"tenants": [TENANT], "models": {"a": {"engine": "vllm", "source": "org/a"}}}, "models.a.gpus"),
        (
            {"tenants": [TENANT], "models": {**STUB["models"], "b": {"engine": "openai", "aliases": ["stub-model"]}}},
            "'stub-model' already names stub-model",
        ),
    ],
)
def test_invalid_config_is_explained(tmp_path, document, message):
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(write(tmp_path, document))


def test_missing_config_path():
    with pytest.raises(ConfigError, match="LLM_GATEWAY_CONFIG"):
        load_gateway_config({})


def test_a_disabled_openai_model_needs_no_key(tmp_path):
    document = {
        "tenants": [TENANT],
        **STUB,
        "models": {**STUB["models"], "gpt-4o-mini": {"engine": "openai", "enabled": False}},
    }
    config = load_gateway_config(write(tmp_path, document))
    assert config.openai is None
    assert not config.catalogue.models["gpt-4o-mini"].enabled
