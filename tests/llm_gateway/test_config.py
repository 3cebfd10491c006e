"""Gateway configuration loading: the OpenAI key from env or a mounted file, clear errors."""

from __future__ import annotations

import json

import pytest

from llm_gateway.auth import hash_gateway_key
from llm_gateway.config import ConfigError, load_gateway_config

TENANT = {"name": "acme-corp", "model": "m", "key_sha256": [hash_gateway_key("k")]}


def write(tmp_path, document) -> dict:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(document))
    return {"LLM_GATEWAY_CONFIG": str(path)}


def test_openai_key_from_a_mounted_secret_file(tmp_path):
    secret = tmp_path / "openai-key"
    secret.write_text("sk-from-file\n")
    config = load_gateway_config(
        {
            **write(tmp_path, {"tenants": [TENANT]}),
            "OPENAI_API_KEY_FILE": str(secret),
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    assert config.openai.api_key == "sk-from-file"
    assert config.openai.base_url == "http://127.0.0.1:9/v1"
    assert config.pool is None


def test_environment_key_wins_over_file(tmp_path):
    config = load_gateway_config({**write(tmp_path, {"tenants": [TENANT]}), "OPENAI_API_KEY": "sk-env"})
    assert config.openai.api_key == "sk-env"


@pytest.mark.parametrize(
    "document, message",
    [
        ({"tenants": [TENANT]}, "configure at least one backend"),
        ({"tenants": [], "pool": {"endpoints": ["http://a"]}}, "configure 'tenants', 'tenant_discovery' or both"),
        ({"tenant_discovery": {"namespace": ""}, "pool": {"endpoints": ["http://a"]}}, "tenant_discovery.namespace"),
        (
            {
                "tenant_discovery": {"namespace": "monitoring", "refresh_seconds": 0},
                "pool": {"endpoints": ["http://a"]},
            },
            "tenant_discovery.refresh_seconds",
        ),
        ({"tenants": [{**TENANT, "key_sha256": ["abc"]}], "pool": {"endpoints": ["http://a"]}}, "hex SHA-256"),
        ({"tenants": [TENANT], "pool": {"endpoints": ["ftp://a"]}}, "must start with http"),
        ({"tenants": [TENANT, TENANT], "pool": {"endpoints": ["http://a"]}}, "unique"),
        ({"tenants": [{**TENANT, "backend": "gpu"}], "pool": {"endpoints": ["http://a"]}}, "tenants.0.backend"),
        (
            {"tenants": [TENANT], "pool": {"endpoints": ["http://a"]}, "embeddings": {"backend": "pool", "model": "m"}},
            "embeddings: backend 'pool' needs 'pool'",
        ),
        (
            {
                "tenants": [TENANT],
                "pool": {"endpoints": ["http://a"]},
                "embeddings": {"backend": "openai", "model": "m"},
            },
            "needs an OpenAI key",
        ),
        (
            {"tenants": [TENANT], "pool": {"endpoints": ["http://a"]}, "embeddings": {"backend": "s3", "model": "m"}},
            "embeddings.backend",
        ),
    ],
)
def test_invalid_config_is_explained(tmp_path, document, message):
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(write(tmp_path, document))


def test_missing_config_path():
    with pytest.raises(ConfigError, match="LLM_GATEWAY_CONFIG"):
        load_gateway_config({})


def test_cluster_embeddings_use_openai(tmp_path):
    config = load_gateway_config(
        {
            **write(
                tmp_path,
                {
                    "tenants": [TENANT],
                    "embeddings": {"backend": "openai", "model": "text-embedding-3-small", "dimensions": 384},
                },
            ),
            "OPENAI_API_KEY": "sk-env",
        }
    )
    assert config.embeddings.model == "text-embedding-3-small"
    assert config.embeddings.dimensions == 384
