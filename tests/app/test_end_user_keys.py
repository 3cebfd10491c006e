"""Optional end-user API keys on a tenant proxy (off by default): the real platform's proxies need none; a proxy
from the app factory with keys set (the stub upstream behind it) needs one."""

from __future__ import annotations

import pytest

from llm_common.keys import sha256_hex
from tests.helpers import proxy_app

OLD, NEW = "ek-old-key-1234", "ek-new-key-5678"


@pytest.fixture
def keyed_proxy(stub_upstream):
    return proxy_app(stub_upstream, end_user_key_sha256=[sha256_hex(OLD), sha256_hex(NEW)]).test_client()


def test_default_proxies_need_no_key(platform):
    assert platform.ask("acme-corp", question="Hi", max_tokens=3).status_code == 200


def test_keys_are_required_when_set(keyed_proxy):
    body = {"question": "Hi", "max_tokens": 3}
    missing = keyed_proxy.post("/ask", json=body)
    assert missing.status_code == 401 and missing.json["error"]["code"] == "missing_api_key"
    wrong = keyed_proxy.post("/ask", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "invalid_api_key"
    for key in (OLD, NEW):  # two listed keys: one can be rotated out later
        assert keyed_proxy.post("/ask", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert (
            keyed_proxy.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "Hi"}]},
                headers={"Authorization": f"Bearer {key}"},
            ).status_code
            == 200
        )
    assert keyed_proxy.get("/healthz").status_code == 200  # probes need no key
    document = keyed_proxy.get("/openapi.json").json
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert document["paths"]["/ask"]["post"]["security"] == [{"bearer": []}]
