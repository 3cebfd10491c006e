"""The gateway's `POST /v1/responses` at the factory level (the fast layer): the Responses API's text subset
translated to one chat completion of the same completion service (llm_common/responses.py), plain and
streamed, in front of the zero-latency stub served in the test process."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from starlette.testclient import TestClient

from llm_gateway import create_app
from llm_gateway.config import GatewayConfig
from llm_gateway.ledger import open_ledger
from openai_stub import stub_models
from tests.helpers import tenant_route

KEY = "k-responses"


@pytest.fixture
def gateway(stub_upstream, tmp_path):
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    config = GatewayConfig.model_validate(
        {
            "tenants": [tenant_route("answers", KEY, max_tokens=32)],
            **stub_models(stub_upstream, health_path="/health", health_interval_seconds=60),
            "ledger": {"url": ledger_url},
        }
    )
    with TestClient(create_app(config)) as client:
        yield client, ledger_url


def respond(client, body: dict, request_id: str, **kwargs):
    return client.post(
        "/v1/responses", json=body, headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": request_id}, **kwargs
    )


def forwarded(stub_upstream: str, request_id: str) -> list[dict]:
    return [seen["body"] for seen in httpx.get(stub_upstream + "/seen").json() if seen["request_id"] == request_id]


def test_a_plain_response_is_one_capped_chat_completion_recorded_in_the_ledger(gateway, stub_upstream):
    client, ledger_url = gateway
    request_id = str(uuid.uuid4())
    answer = respond(client, {"input": "Hello", "instructions": "Be brief.", "max_output_tokens": 500}, request_id)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "Hello from the zero-latency stub."
    assert response["usage"]["input_tokens"] > 0
    (sent,) = forwarded(stub_upstream, request_id)
    assert sent["max_tokens"] == 32  # the tenant's cap, whatever the caller asked
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    ledger = open_ledger(ledger_url)
    try:
        assert [row.request_id for row in ledger.recent("answers")] == [request_id]
    finally:
        ledger.close()


def test_a_streamed_response_sends_the_apis_events_ending_with_usage(gateway):
    client, _ = gateway
    with client.stream(
        "POST", "/v1/responses", json={"input": "Hello", "stream": True}, headers={"Authorization": f"Bearer {KEY}"}
    ) as answer:
        assert answer.status_code == 200
        events = [json.loads(line.removeprefix("data: ")) for line in answer.iter_lines() if line.startswith("data: ")]
    types = [event["type"] for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert (
        "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        == "Hello from the zero-latency stub."
    )
    assert events[-1]["response"]["usage"]["output_tokens"] > 0


@pytest.mark.parametrize(
    "body,field",
    [
        ({"input": "Hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools"),
        ({"input": 5}, "input"),
    ],
)
def test_what_the_subset_does_not_serve_is_a_400_naming_the_field(gateway, body, field):
    client, _ = gateway
    answer = respond(client, body, str(uuid.uuid4()))
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]["message"]
