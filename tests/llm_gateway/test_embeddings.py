"""The embedding model behind /v1/embeddings: the converted all-MiniLM-L6-v2, and the OpenAI backend path."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from llm_gateway.auth import hash_gateway_key
from tenantctl.local import launchers
from tests.helpers import free_port

KEY = "gk-test-embeddings"


def embed(gateway_url: str, key: str, texts: list[str]) -> np.ndarray:
    response = httpx.post(
        gateway_url + "/v1/embeddings", headers={"Authorization": f"Bearer {key}"}, timeout=60, json={"input": texts}
    )
    assert response.status_code == 200, response.text
    vectors = np.array([row["embedding"] for row in response.json()["data"]])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_converted_model_matches_sentence_transformers(platform):
    """The cosine similarities sentence-transformers publishes for all-MiniLM-L6-v2 on its model card
    example: our GGUF conversion run by llama.cpp gives the same numbers."""
    vectors = embed(
        platform.gateway_url,
        platform.keys["acme-corp"],
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."],
    )
    similarities = vectors @ vectors.T
    assert similarities[0, 1] == pytest.approx(0.6660, abs=0.002)
    assert similarities[0, 2] == pytest.approx(0.1046, abs=0.002)
    assert similarities[1, 2] == pytest.approx(0.1411, abs=0.002)


def test_openai_embeddings_backend_gets_the_configured_model(process_group, tmp_path, platform):
    """A catalogue whose embedding model is an `openai` one, through the real openai SDK path, pointed at a
    local OpenAI-compatible server (our llama.cpp embedding server) instead of api.openai.com."""
    port = free_port()
    config = {
        "tenants": [{"name": "t", "models": {"allowed": ["gpt-4o-mini"]}, "key_sha256": [hash_gateway_key(KEY)]}],
        "models": {
            "gpt-4o-mini": {"engine": "openai"},
            "all-minilm-l6-v2": {"engine": "openai", "kind": "embedding"},
        },
    }
    process_group(
        launchers.gateway(
            config,
            port,
            tmp_path,
            workers=1,
            extra_env={"OPENAI_API_KEY": platform.model_api_key, "OPENAI_BASE_URL": platform.embedding_url + "/v1"},
        )
    )
    gateway = f"http://127.0.0.1:{port}"
    response = httpx.post(
        gateway + "/v1/embeddings",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
        json={"model": "caller-choice", "input": "hello"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-LLM-Backend"] == "openai"
    assert len(response.json()["data"][0]["embedding"]) == 384
    assert httpx.get(gateway + "/readyz").json()["backends"] == {"openai": True}
