"""Optional end-user API keys on a tenant proxy (off by default): a real proxy process with keys set."""

from __future__ import annotations

import httpx
import openai
import pytest

from llm_common.keys import sha256_hex
from tenantctl import launchers
from tenantctl.local import proxy_config
from tests.helpers import free_port

OLD, NEW = "ek-old-key-1234", "ek-new-key-5678"


@pytest.fixture
def keyed_proxy(platform, process_group, tmp_path) -> str:
    spec = next(s for s in platform.platform.specs if s.name == "acme-corp")
    spec = spec.model_copy(update={"end_user_key_sha256": [sha256_hex(OLD), sha256_hex(NEW)]})
    config = proxy_config(spec, platform.keys["acme-corp"], platform.gateway_url + "/v1")
    port = free_port()
    process_group(launchers.tenant_proxy(config, port, tmp_path, workers=1))
    return f"http://127.0.0.1:{port}"


def test_default_proxies_need_no_key(platform):
    assert platform.ask("acme-corp", question="Hi", max_tokens=3).status_code == 200


def test_keys_are_required_when_set(keyed_proxy):
    body = {"question": "Hi", "max_tokens": 3}
    missing = httpx.post(keyed_proxy + "/ask", json=body, timeout=60)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = httpx.post(keyed_proxy + "/ask", json=body, headers={"Authorization": "Bearer nope"}, timeout=60)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    for key in (OLD, NEW):  # two listed keys: one can be rotated out later
        assert httpx.post(keyed_proxy + "/ask", json=body, headers={"Authorization": f"Bearer {key}"},
                          timeout=120).status_code == 200
    client = openai.OpenAI(base_url=keyed_proxy + "/v1", api_key=NEW, max_retries=0)
    assert client.chat.completions.create(model="x", max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    assert httpx.get(keyed_proxy + "/healthz").status_code == 200  # probes need no key
    document = httpx.get(keyed_proxy + "/openapi.json").json()
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert document["paths"]["/ask"]["post"]["security"] == [{"bearer": []}]
