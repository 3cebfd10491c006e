"""Keys decide the tenant, and nothing else does: what the ledger records for forged headers and
body fields, at the gateway and through a tenant proxy."""

from __future__ import annotations

import httpx

from llm_gateway.ledger import open_ledger
from tests.helpers import chat


def ledger_row(platform, request_id: str):
    ledger = open_ledger(platform.platform.ledger_url)
    try:
        for tenant in platform.tenant_urls:
            for row in ledger.recent(tenant, limit=50):
                if row.request_id == request_id:
                    return row
    finally:
        ledger.close()
    raise AssertionError(f"{request_id} is not in the ledger")


FORGED_HEADERS = {"X-Tenant-Id": "acme-corp", "X-Tenant": "acme-corp", "X-Forwarded-User": "acme-corp"}


def test_forged_headers_and_fields_never_change_who_is_charged(platform):
    response = chat(platform.gateway_url, platform.keys["closed-ai"], headers=FORGED_HEADERS, user="acme-corp")
    assert response.status_code == 200, response.text
    assert ledger_row(platform, response.headers["X-Request-Id"]).tenant == "closed-ai"
    for forged in ({"tenant": "acme-corp"}, {"metadata": {"tenant": "acme-corp"}}):  # fields the contract refuses
        refused = chat(platform.gateway_url, platform.keys["closed-ai"], headers=FORGED_HEADERS, **forged)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsupported_parameter"


def test_one_tenants_key_never_acts_as_another(platform):
    for tenant, key in platform.keys.items():
        response = chat(platform.gateway_url, key)
        assert response.status_code == 200, response.text
        row = ledger_row(platform, response.headers["X-Request-Id"])
        assert row.tenant == tenant and row.completion_tokens > 0


def test_through_the_proxy_the_prompt_and_the_charge_stay_the_tenants(platform):
    body = {
        "messages": [{"role": "user", "content": "Which company do you work for?"}],
        "max_tokens": 30,
        "temperature": 0,
        "seed": 7,
        "user": "closed-ai",
    }
    response = httpx.post(
        platform.tenant_urls["acme-corp"] + "/v1/chat/completions",
        json=body,
        timeout=120,
        headers={"X-Tenant-Id": "closed-ai", "Authorization": "Bearer " + platform.keys["closed-ai"]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"].lower()
    assert "acme" in answer and "closed ai" not in answer
    ledger = open_ledger(platform.platform.ledger_url)
    try:
        newest = ledger.recent("acme-corp", limit=1)[0]
    finally:
        ledger.close()
    assert newest.completion_tokens == response.json()["usage"]["completion_tokens"]  # charged to acme-corp


def test_unknown_and_missing_keys_are_refused(platform):
    assert chat(platform.gateway_url, "gk-revoked-or-never-issued").status_code == 401
    assert chat(platform.gateway_url, None, headers=FORGED_HEADERS).status_code == 401
