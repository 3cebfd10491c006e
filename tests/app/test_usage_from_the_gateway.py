"""The proxy's usage is the gateway's, at the factory level (the fast layer): the proxy from its app factory
(Flask's test client) in front of the gateway from its own (served on a thread of the test process), in
front of the stub, which reports usage, or of an upstream that reports none. `/ask` (plain and streamed)
and the OpenAI routes answer with, count in `tenant_proxy_tokens_total`, and log the tokens of the
gateway's ledger row, marked `"estimated": true` where the gateway counted them itself."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from llm_common.tracing import REQUEST_LOGGER
from llm_gateway import create_app as create_gateway
from llm_gateway.config import GatewayConfig
from llm_gateway.ledger import UsageRecord, open_ledger
from openai_stub import stub_models
from tests.helpers import STUB_MODEL, InProcessServer, metric_value, proxy_app, recorded_chat_usage, tenant_route
from tests.llm_gateway import silent_upstream

TENANT, GATEWAY_KEY = "globex", "gk-test"  # tests/helpers.py: proxy_app
STUB_USAGE = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}  # what the stub reports


@pytest.fixture(scope="module", params=["reporting upstream", "silent upstream"])
def gateway(request, tmp_path_factory):
    """(the gateway's URL, its ledger's URL, whether its upstream reports usage)."""
    reports_usage = request.param == "reporting upstream"
    upstream_server = None
    if reports_usage:
        upstream = request.getfixturevalue("stub_upstream")
    else:
        upstream_server = InProcessServer(silent_upstream.app)
        upstream = upstream_server.start()
    ledger_url = f"sqlite:///{tmp_path_factory.mktemp('usage') / 'ledger.sqlite3'}"
    config = GatewayConfig.model_validate(
        {
            "tenants": [tenant_route(TENANT, GATEWAY_KEY)],
            **stub_models(upstream, health_path="/health", health_interval_seconds=60),
            "ledger": {"url": ledger_url},
        }
    )
    server = InProcessServer(create_gateway(config))
    server.server.config.lifespan = "on"  # its backends and ledger are closed when it stops
    try:
        yield server.start(), ledger_url, reports_usage
    finally:
        server.stop()
        if upstream_server is not None:
            upstream_server.stop()


@pytest.fixture
def client(gateway):
    return proxy_app(gateway[0]).test_client()


@pytest.fixture
def proxy_lines():
    """The proxy's request log lines written during the test."""
    lines: list[dict] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(json.loads(record.getMessage()))
    logger = logging.getLogger(REQUEST_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def post(client, path: str, body: dict):
    """POST through the proxy; returns (the response, closed, its body read) and its request id."""
    request_id = str(uuid.uuid4())
    response = client.post(path, json=body, headers={"X-Request-Id": request_id})
    response.get_data()
    response.close()
    assert response.status_code == 200, response.get_data(as_text=True)
    return response, request_id


def recorded(gateway, request_id: str) -> UsageRecord:
    """The gateway's ledger row of the proxy's request (one id travels proxy -> gateway)."""
    ledger = open_ledger(gateway[1])
    try:
        (row,) = [row for row in ledger.recent(TENANT, limit=200) if row.request_id == request_id]
    finally:
        ledger.close()
    assert row.usage_estimated is not gateway[2]
    return row


def tokens(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        kind: metric_value(text, "tenant_proxy_tokens_total", tenant=TENANT, kind=kind)
        for kind in ("prompt", "completion")
    }


def sse_data(response) -> list[dict | str]:
    lines = response.get_data(as_text=True).splitlines()
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines if line.startswith("data: ")]


def assert_counted_and_logged(client, before: dict, row: UsageRecord, lines: list[dict], request_id: str) -> None:
    """The proxy counted the row's tokens and logged them, with the backend, on the request's line."""
    after = tokens(client)
    assert (after["prompt"] - before["prompt"], after["completion"] - before["completion"]) == (
        row.prompt_tokens,
        row.completion_tokens,
    )
    (line,) = [line for line in lines if line["service"] == "proxy" and line["request_id"] == request_id]
    assert (line["backend"], line["prompt_tokens"], line["completion_tokens"]) == (
        STUB_MODEL,
        row.prompt_tokens,
        row.completion_tokens,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_asks_usage_is_the_gateways_and_its_log_line_has_backend_and_tokens(gateway, client, proxy_lines, stream):
    before = tokens(client)
    response, request_id = post(client, "/ask", {"question": "What is the weather like?", "stream": stream})
    if stream:
        answer = next(event for event in sse_data(response) if isinstance(event, dict) and event["type"] == "done")
    else:
        answer = response.json
    row = recorded(gateway, request_id)
    assert answer["usage"] == recorded_chat_usage(row)
    if gateway[2]:
        assert answer["usage"] == STUB_USAGE
    assert (answer["backend"], answer["answer"]) == (STUB_MODEL, "Hello from the zero-latency stub.")
    assert_counted_and_logged(client, before, row, proxy_lines, request_id)


@pytest.mark.parametrize("include_usage", [None, True, False], ids=["plain", "stream with usage", "stream"])
def test_chat_completions_usage_is_the_gateways(gateway, client, proxy_lines, include_usage):
    before = tokens(client)
    body = {"messages": [{"role": "user", "content": "What is the weather like?"}]}
    if include_usage is not None:
        body["stream"] = True
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    response, request_id = post(client, "/v1/chat/completions", body)
    row = recorded(gateway, request_id)
    if include_usage is None:
        assert response.json["usage"] == recorded_chat_usage(row)
    else:
        chunks = sse_data(response)
        assert chunks[-1] == "[DONE]"
        usages = [chunk["usage"] for chunk in chunks[:-1] if chunk.get("usage")]
        assert usages == ([recorded_chat_usage(row)] if include_usage else [])  # only for a caller who asked
    assert_counted_and_logged(client, before, row, proxy_lines, request_id)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_responses_usage_is_the_gateways(gateway, client, proxy_lines, stream):
    before = tokens(client)
    response, request_id = post(client, "/v1/responses", {"input": "What is the weather like?", "stream": stream})
    answer = sse_data(response)[-1]["response"] if stream else response.json
    row = recorded(gateway, request_id)
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
        row.prompt_tokens,
        row.completion_tokens,
        row.total_tokens,
    )
    assert usage.get("estimated", False) is row.usage_estimated
    assert_counted_and_logged(client, before, row, proxy_lines, request_id)
