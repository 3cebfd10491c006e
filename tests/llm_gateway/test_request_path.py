"""The gateway's request path at the factory level (the fast layer): the app from create_app, driven by
Starlette's test client (lifespan included), in front of the zero-latency stub served on a thread of the
test process (a real HTTP boundary, which also misbehaves on request: openai_stub/). Validation,
auth, errors, request ids, metering, and what a backend's answer does to the routing and the pool."""

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
from tests.helpers import STUB_EMBEDDING_MODEL, STUB_MODEL, metric_value, tenant_route

PLAIN, TUNED = "k-plain", "k-tuned"  # TUNED's tenant allows the `top_k` extension


@pytest.fixture
def gateway(stub_upstream, tmp_path):
    """A gateway app with two tenants on the stub, and a SQLite ledger; its backends are closed afterwards."""
    config = GatewayConfig.model_validate(
        {
            "tenants": [
                tenant_route("plain", PLAIN, max_tokens=32),
                tenant_route("tuned", TUNED, max_tokens=32, allowed_request_extensions=["top_k"]),
            ],
            **stub_models(stub_upstream, health_path="/health", health_interval_seconds=60),
            "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"},
            "max_body_bytes": 64 * 1024,
        }
    )
    with TestClient(create_app(config)) as client:  # the lifespan closes backends and ledger on leaving
        yield client


def post(
    client,
    key: str,
    body: dict | None = None,
    *,
    raw: bytes | None = None,
    request_id: str | None = None,
    path: str = "/v1/chat/completions",
    **kwargs,
):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if request_id:
        headers["X-Request-Id"] = request_id
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, content=data, headers=headers, **kwargs)


def ask(content: str = "Hi", **fields) -> dict:
    return {"messages": [{"role": "user", "content": content}], **fields}


def forwarded(stub_upstream: str, request_id: str) -> list[dict]:
    """The bodies the stub received under `request_id`."""
    return [seen["body"] for seen in httpx.get(stub_upstream + "/seen").json() if seen["request_id"] == request_id]


def new_id() -> str:
    return str(uuid.uuid4())


def member_up(client) -> float:
    return metric_value(client.get("/metrics").text, "llm_gateway_pool_member_up", backend=STUB_MODEL)


# -- What reaches the backend ---------------------------------------------------------------------


def test_a_backend_specific_field_is_refused_naming_it_and_never_reaches_the_backend(gateway, stub_upstream):
    request_id = new_id()
    response = post(gateway, PLAIN, ask(grammar="x"), request_id=request_id)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["message"].startswith("grammar:")
    assert forwarded(stub_upstream, request_id) == []


def test_an_extension_the_tenant_allows_is_forwarded_and_others_are_not(gateway, stub_upstream):
    request_id = new_id()
    assert post(gateway, TUNED, ask(top_k=5), request_id=request_id).status_code == 200
    assert forwarded(stub_upstream, request_id)[0]["top_k"] == 5
    refused = post(gateway, PLAIN, ask(top_k=5))
    assert refused.status_code == 400 and refused.json()["error"]["message"].startswith("top_k:")
    assert post(gateway, TUNED, ask(chat_template="{{ messages[-1] }}")).status_code == 400


@pytest.mark.parametrize(
    "aliases, expected",
    [
        ({"max_completion_tokens": 5000}, 32),
        ({"n_predict": 10**6}, 32),
        ({"max_tokens": 5, "max_completion_tokens": 5000}, 5),
    ],
)
def test_max_tokens_aliases_reach_the_backend_as_one_capped_max_tokens(gateway, stub_upstream, aliases, expected):
    request_id = new_id()
    assert post(gateway, PLAIN, ask(**aliases), request_id=request_id).status_code == 200
    (body,) = forwarded(stub_upstream, request_id)
    assert body["max_tokens"] == expected
    assert not set(body) & {"max_completion_tokens", "n_predict", "max_new_tokens", "max_output_tokens", "n"}


def test_n_above_one_is_refused(gateway):
    response = post(gateway, PLAIN, ask(n=64))
    assert response.status_code == 400 and response.json()["error"]["message"].startswith("n:")


def test_system_messages_only_lead(gateway):
    late = {"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "New rules."}]}
    response = post(gateway, PLAIN, late)
    assert response.status_code == 400 and response.json()["error"]["code"] == "system_message_position"


# -- Bad bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, field",
    [
        (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content"),
        (b'{"messages": [{"role": "user", "content": "ok \\udfff ok"}]}', "messages.0.content"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "user": "\\ud83d"}', "user"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "\\udc00": 1}', "body (a key)"),
        (b'{"messages": [{"role": "user", "content": "hi", "name": "a\\ud800"}]}', "messages.0.name"),
    ],
)
def test_lone_surrogates_are_a_400_naming_the_field(gateway, raw, field):
    response = post(gateway, PLAIN, raw=raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_unicode"
    assert error["message"].startswith(f"{field}: ")


def test_a_valid_surrogate_pair_is_fine(gateway):
    assert post(gateway, PLAIN, raw=b'{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}').status_code == 200


@pytest.mark.parametrize("depth", [65, 5000, 30_000])
def test_deep_nesting_is_a_400(gateway, depth):
    raw = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * depth + b"]" * depth + b"}"
    response = post(gateway, PLAIN, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("too_deeply_nested", "invalid_json")


def test_deep_nesting_inside_an_accepted_field_is_a_400(gateway):
    schema: dict = {}
    for _ in range(80):
        schema = {"type": "object", "properties": {"a": schema}}
    body = ask(tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
    response = post(gateway, PLAIN, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_deeply_nested"


@pytest.mark.parametrize(
    "raw, code", [(b"\xff\xfe{}", "invalid_encoding"), (b'{"a": 1', "invalid_json"), (b"[]", "invalid_json")]
)
def test_undecodable_bodies_are_a_400(gateway, raw, code):
    response = post(gateway, PLAIN, raw=raw)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_a_body_over_the_limit_is_a_413(gateway):
    response = post(gateway, PLAIN, ask("x" * 70_000))
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


# -- Request ids and errors in the caller's terms --------------------------------------------------


def test_a_well_formed_request_id_travels_to_the_backend_and_back(gateway, stub_upstream):
    request_id = new_id()
    response = post(gateway, PLAIN, ask(), request_id=request_id)
    assert response.headers["X-Request-Id"] == request_id
    assert len(forwarded(stub_upstream, request_id)) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "short",
        "x" * 200,
        "has space in it",
        "req-0123456789abcdef",
        "ünïcode-id-1234",
        "12345678-1234-1234-1234-1234567890ab-tail",
        "{12345678-1234-1234-1234-1234567890ab}",
    ],
)
def test_a_malformed_request_id_is_replaced(gateway, bad):
    response = gateway.post(
        "/v1/chat/completions", json=ask(), headers={"Authorization": f"Bearer {PLAIN}", "X-Request-Id": bad.encode()}
    )
    assert response.status_code == 200
    assert uuid.UUID(response.headers["X-Request-Id"]) and response.headers["X-Request-Id"] != bad


def test_every_error_carries_the_request_id(gateway):
    for response in (
        post(gateway, "k-unknown", ask()),
        post(gateway, PLAIN, {"messages": []}),
        gateway.get("/no-such-route"),
        post(gateway, PLAIN, raw=b"{"),
    ):
        error = response.json()["error"]
        assert error["request_id"] == response.headers["X-Request-Id"], response.json()


# -- A backend's 4xx is the caller's ----------------------------------------------------------------


@pytest.mark.parametrize("status, answered", [(400, 400), (422, 422), (404, 502), (401, 502), (408, 504)])
def test_a_backend_4xx_goes_to_that_caller_sanitized_and_the_member_stays_up(gateway, status, answered):
    for _ in range(6):  # more than the consecutive-failure threshold
        response = post(gateway, PLAIN, ask(f"stub-fault:{status}"))
        assert response.status_code == answered
        error = response.json()["error"]
        assert error["code"] == "backend_rejected_request"
        assert "10.11.12.13" not in response.text and "/srv" not in response.text
    assert member_up(gateway) == 1
    assert post(gateway, TUNED, ask()).status_code == 200


def test_one_tenants_429_holds_back_that_tenant_only(gateway, stub_upstream):
    throttled = post(gateway, PLAIN, ask("stub-fault:429:7"))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "backend_rate_limited"
    again = new_id()
    held = post(gateway, PLAIN, ask(), request_id=again)  # within the back-off: the backend is not asked
    assert held.status_code == 429 and 1 <= int(held.headers["Retry-After"]) <= 7
    assert forwarded(stub_upstream, again) == []
    assert post(gateway, TUNED, ask()).status_code == 200  # the other tenant is served
    assert member_up(gateway) == 1


def test_5xx_answers_never_empty_a_pool_of_one(gateway):
    for _ in range(8):
        response = post(gateway, PLAIN, ask("stub-fault:500"))
        assert response.status_code == 502
        assert "10.11.12.13" not in response.text
    assert member_up(gateway) == 1
    assert post(gateway, TUNED, ask()).status_code == 200


# -- Metering ---------------------------------------------------------------------------------------


def ledger_rows(tmp_path, tenant: str) -> list:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        return ledger.recent(tenant, limit=100)
    finally:
        ledger.close()


async def _leave_at_the_first_event(app, body: dict, request_id: str) -> int:
    """Send a streamed request to the ASGI app as a server would, for a caller that leaves before the first
    event reaches it (sending it fails, as it does once the connection is gone); returns the status sent."""
    statuses = []
    raw = json.dumps(body).encode()

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body" and message.get("body"):
            raise OSError("the caller has gone")

    headers = [
        (b"authorization", f"Bearer {PLAIN}".encode()),
        (b"content-type", b"application/json"),
        (b"x-request-id", request_id.encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return statuses[0]


def test_a_stream_closed_before_its_first_chunk_records_its_prompt(gateway, tmp_path):
    request_id = new_id()
    body = ask("Tell me about policies. " * 20, stream=True)
    assert gateway.portal.call(_leave_at_the_first_event, gateway.app, body, request_id) == 200
    (row,) = [row for row in ledger_rows(tmp_path, "plain") if row.request_id == request_id]
    assert row.status == "client_closed" and row.stream
    assert row.prompt_tokens >= 100 and row.usage_estimated


def test_embeddings_are_recorded_in_the_ledger(gateway, tmp_path):
    request_id = new_id()
    response = post(
        gateway, PLAIN, {"input": ["one", "two"], "model": "x"}, path="/v1/embeddings", request_id=request_id
    )
    assert response.status_code == 200, response.json()
    (row,) = [row for row in ledger_rows(tmp_path, "plain") if row.request_id == request_id]
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (6, 0, "ok")


def test_a_reused_request_id_is_still_recorded(gateway, tmp_path):
    request_id = new_id()
    for _ in range(2):
        assert post(gateway, PLAIN, ask(), request_id=request_id).status_code == 200
    ids = [row.request_id for row in ledger_rows(tmp_path, "plain") if row.request_id.startswith(request_id)]
    assert len(ids) == 2 and request_id in ids


# -- Auth, operations and metrics at the factory level ------------------------------------------------


def test_a_missing_or_unknown_key_is_a_401_naming_the_problem(gateway):
    missing = gateway.post("/v1/chat/completions", json=ask())
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    unknown = post(gateway, "k-unknown", ask())
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_api_key"


def test_a_wrong_method_or_content_type_is_a_json_error(gateway):
    wrong_method = gateway.get("/v1/chat/completions")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["type"] == "invalid_request_error"
    not_json = gateway.post(
        "/v1/chat/completions",
        content=b"hi",
        headers={"Authorization": f"Bearer {PLAIN}", "Content-Type": "text/plain"},
    )
    assert not_json.status_code == 415 and not_json.json()["error"]["code"] == "unsupported_media_type"


def test_operations_answer_without_a_key(gateway):
    assert gateway.get("/healthz").json() == {"status": "ok"}
    ready = gateway.get("/readyz")
    assert ready.status_code == 200 and ready.json()["backends"] == {STUB_MODEL: True, STUB_EMBEDDING_MODEL: True}
    assert "/v1/chat/completions" in gateway.get("/openapi.json").json()["paths"]


def test_models_lists_the_tenants_model(gateway):
    models = gateway.get("/v1/models", headers={"Authorization": f"Bearer {PLAIN}"}).json()
    assert [(model["id"], model["kind"], model["default"]) for model in models["data"]] == [
        (STUB_MODEL, "chat", True),
        (STUB_EMBEDDING_MODEL, "embedding", False),
    ]


def test_requests_and_refusals_are_counted_by_tenant_and_nothing_stays_in_flight(gateway):
    def metrics() -> str:
        return gateway.get("/metrics").text

    before = metric_value(metrics(), "llm_gateway_requests_total", tenant="tuned", status="200")
    assert post(gateway, TUNED, ask()).status_code == 200
    assert post(gateway, TUNED, ask(stream=True)).status_code == 200
    assert (
        post(
            gateway,
            TUNED,
            {
                "messages": [
                    {"role": "system", "content": "x"},
                    {"role": "user", "content": "y"},
                    {"role": "system", "content": "z"},
                ]
            },
        ).status_code
        == 400
    )
    text = metrics()
    assert metric_value(text, "llm_gateway_requests_total", tenant="tuned", status="200") == before + 2
    assert metric_value(text, "llm_gateway_requests_total", tenant="tuned", status="400") >= 1
    assert metric_value(text, "llm_gateway_time_to_first_token_seconds_count", tenant="tuned") >= 1
    assert metric_value(text, "llm_gateway_in_flight_requests") == 0
    assert metric_value(text, "llm_gateway_pool_member_in_flight_requests") == 0
