"""Proxy configuration: a JSON file in local mode, env vars and mounted files on a cluster."""

from __future__ import annotations

import json

import pytest

from app.config import ConfigError, load_proxy_config


def test_cluster_style_environment(tmp_path):
    (tmp_path / "prompt").write_text("You are the assistant of Acme Corp.\n")
    (tmp_path / "key").write_text("gk-secret\n")
    config = load_proxy_config(
        {
            "TENANT_NAME": "acme-corp",
            "GATEWAY_URL": "http://llm-gateway.monitoring:8080/v1/",
            "SYSTEM_PROMPT_FILE": str(tmp_path / "prompt"),
            "GATEWAY_KEY_FILE": str(tmp_path / "key"),
            "MAX_TOKENS": "128",
        }
    )
    assert config.tenant == "acme-corp"
    assert config.system_prompt == "You are the assistant of Acme Corp."
    assert config.gateway_key == "gk-secret"
    assert config.gateway_url == "http://llm-gateway.monitoring:8080/v1"
    assert config.max_tokens == 128


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"tenant": "a", "system_prompt": "p", "gateway_url": "http://g/v1", "gateway_key": "k"}))
    config = load_proxy_config({"TENANT_PROXY_CONFIG": str(path), "MAX_QUESTION_BYTES": "100"})
    assert config.max_question_bytes == 100


@pytest.mark.parametrize(
    "environ, message",
    [
        ({}, "tenant"),
        ({"TENANT_NAME": "a", "GATEWAY_URL": "g", "SYSTEM_PROMPT_FILE": "/nonexistent"}, "SYSTEM_PROMPT_FILE"),
    ],
)
def test_invalid_config_is_explained(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_proxy_config(environ)


def test_knowledge_dir_from_the_environment(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"tenant": "a", "system_prompt": "p", "gateway_url": "http://g/v1", "gateway_key": "k"}))
    assert load_proxy_config({"TENANT_PROXY_CONFIG": str(path)}).knowledge_dir is None
    config = load_proxy_config({"TENANT_PROXY_CONFIG": str(path), "KNOWLEDGE_DIR": "/var/lib/tenant-proxy/knowledge"})
    assert config.knowledge_dir == "/var/lib/tenant-proxy/knowledge"


def test_chunk_overlap_must_be_smaller_than_a_chunk(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(
        json.dumps(
            {
                "tenant": "a",
                "system_prompt": "p",
                "gateway_url": "http://g/v1",
                "gateway_key": "k",
                "chunk_words": 50,
                "chunk_overlap_words": 50,
            }
        )
    )
    with pytest.raises(ConfigError, match="chunk_overlap_words must be smaller"):
        load_proxy_config({"TENANT_PROXY_CONFIG": str(path)})
