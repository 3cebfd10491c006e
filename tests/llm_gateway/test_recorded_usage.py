"""The usage a gateway answer carries is the one it recorded, at the factory level (the fast layer): the
same numbers as its ledger row and its token metrics, in a plain answer's body, in a stream's closing
usage chunk (for a caller who asked for usage), in embeddings and in the Responses API, both in front of
the stub, which reports usage, and of an upstream that reports none (then the gateway's own count,
marked `"estimated": true`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from llm_gateway import create_app
from llm_gateway.config import GatewayConfig
from llm_gateway.ledger import UsageRecord, open_ledger
from openai_stub import stub_models
from tests.helpers import InProcessServer, metric_value, recorded_chat_usage, streamed_chunks, tenant_route
from tests.llm_gateway import silent_upstream

KEY, TENANT = "k-usage", "metered"
STUB_USAGE = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}  # what the stub reports


@pytest.fixture(scope="module")
def silent_upstream_url():
    """The upstream without usage, served on a thread of the test process."""
    server = InProcessServer(silent_upstream.app)
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class Gateway:
    client: TestClient
    ledger_url: str
    reports_usage: bool  # whether its upstream reports usage

    def post(self, body: dict, path: str = "/v1/chat/completions"):
        request_id = str(uuid.uuid4())
        response = self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": request_id}
        )
        assert response.status_code == 200, response.text
        return response, request_id

    def recorded(self, request_id: str) -> UsageRecord:
        ledger = open_ledger(self.ledger_url)
        try:
            (row,) = [row for row in ledger.recent(TENANT, limit=100) if row.request_id == request_id]
        finally:
            ledger.close()
        assert row.usage_estimated is not self.reports_usage
        return row

    def tokens(self) -> dict[str, float]:
        text = self.client.get("/metrics").text
        return {
            kind: metric_value(text, "llm_gateway_tokens_total", tenant=TENANT, kind=kind)
            for kind in ("prompt", "completion")
        }


@pytest.fixture(params=["reporting upstream", "silent upstream"])
def gateway(request, tmp_path: Path):
    reports_usage = request.param == "reporting upstream"
    upstream = request.getfixturevalue("stub_upstream" if reports_usage else "silent_upstream_url")
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    config = GatewayConfig.model_validate(
        {
            "tenants": [tenant_route(TENANT, KEY, max_tokens=32)],
            **stub_models(upstream, health_path="/health", health_interval_seconds=60),
            "ledger": {"url": ledger_url},
        }
    )
    with TestClient(create_app(config)) as client:
        yield Gateway(client, ledger_url, reports_usage)


def ask(**fields) -> dict:
    return {"messages": [{"role": "user", "content": "Tell me about the weather today."}], **fields}


def test_a_plain_answer_carries_the_usage_it_recorded_and_counted(gateway):
    before = gateway.tokens()
    response, request_id = gateway.post(ask())
    row = gateway.recorded(request_id)
    usage = response.json()["usage"]
    assert usage == recorded_chat_usage(row)
    if gateway.reports_usage:
        assert usage == STUB_USAGE
    else:
        assert usage["estimated"] is True and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    after = gateway.tokens()
    assert (after["prompt"] - before["prompt"], after["completion"] - before["completion"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the zero-latency stub."


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage asked for", "usage not asked for"])
def test_a_stream_ends_with_the_usage_it_recorded_for_a_caller_who_asked(gateway, include_usage):
    before = gateway.tokens()
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    response, request_id = gateway.post(ask(stream=True, **options))
    chunks = streamed_chunks(response)
    row = gateway.recorded(request_id)
    assert chunks[-1] == "[DONE]"
    usages = [chunk["usage"] for chunk in chunks[:-1] if chunk.get("usage")]
    if include_usage:
        assert usages == [recorded_chat_usage(row)]
        closing = chunks[-2]  # as OpenAI sends it: after the last content chunk, `choices` empty
        assert (closing["object"], closing["choices"], closing["id"], closing["model"]) == (
            "chat.completion.chunk",
            [],
            "chatcmpl-stub",
            "stub-model",
        )
    else:
        assert usages == []
    if gateway.reports_usage:
        assert recorded_chat_usage(row) == STUB_USAGE
    else:
        assert row.completion_tokens == silent_upstream.CONTENT_CHUNKS and row.prompt_tokens > 0
    after = gateway.tokens()
    assert (after["prompt"] - before["prompt"], after["completion"] - before["completion"]) == (
        row.prompt_tokens,
        row.completion_tokens,
    )


def test_an_embeddings_answer_carries_the_usage_it_recorded(gateway):
    response, request_id = gateway.post({"input": ["one", "two"]}, path="/v1/embeddings")
    row = gateway.recorded(request_id)
    expected = {"prompt_tokens": row.prompt_tokens, "total_tokens": row.prompt_tokens}
    if gateway.reports_usage:
        assert response.json()["usage"] == expected == {"prompt_tokens": 6, "total_tokens": 6}
    else:
        assert response.json()["usage"] == {**expected, "estimated": True}
    assert row.completion_tokens == 0 and [item["index"] for item in response.json()["data"]] == [0, 1]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_response_carries_the_usage_it_recorded(gateway, stream):
    response, request_id = gateway.post(
        {"input": "Tell me about the weather today.", "stream": stream}, path="/v1/responses"
    )
    answer = streamed_chunks(response)[-1]["response"] if stream else response.json()
    row = gateway.recorded(request_id)
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
        row.prompt_tokens,
        row.completion_tokens,
        row.total_tokens,
    )
    assert usage.get("estimated", False) is row.usage_estimated
