"""Fuzzing from the served OpenAPI documents (schemathesis + hypothesis): the gateway's
`/v1/chat/completions` and `/v1/embeddings`, and a tenant proxy's `/ask` and `/v1/chat/completions`,
with the tenant controls on (Redis limits, the SQLite ledger, guardrails) in front of the
zero-latency stub. The documents describe the full request contract (llm_common/request_contract.py).

Whatever the body, no answer is a 5xx, none takes longer than the timeout (no hang), and each
answer conforms to the document (status, content type, JSON schema). Bodies with fields the contract
does not know (at the top and inside messages) are never answered 200: they never reach a backend."""

from __future__ import annotations

import json
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llm_common.request_contract import ALLOWABLE_EXTENSIONS, NEVER_ACCEPTED, ChatCompletionRequest, EmbeddingRequest
from tenant_spec import parse_tenant_spec
from tenantctl.local import launchers
from tenantctl.local.configs import proxy_config
from tests.conftest import start_process
from tests.helpers import TENANTS_DIR, controlled_gateway_config, free_port, tenant_route

KEY = "k-fuzz"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TIMEOUT = 20  # seconds: an answer slower than this counts as a hang
KNOWN_FIELDS = {
    *ChatCompletionRequest.model_fields,
    *EmbeddingRequest.model_fields,
    *ALLOWABLE_EXTENSIONS,
    *NEVER_ACCEPTED,
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "refusal",
    "schema",
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
UNKNOWN_FIELDS = st.dictionaries(
    st.text(min_size=1, max_size=24).filter(lambda key: key not in KNOWN_FIELDS), JSON_VALUES, min_size=1, max_size=3
)


@pytest.fixture(scope="module")
def fuzzed_services(stub_url, redis_url, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fuzz")
    high = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000, "tokens_per_minute": 100_000_000}
    config = controlled_gateway_config(
        [tenant_route("fuzzed", KEY, rate_limits=high, max_tokens=64)],
        stub_url,
        redis_url,
        f"sqlite:///{run_dir / 'ledger.sqlite3'}",
        limits={"key_prefix": f"fuzz-{uuid.uuid4().hex}"},
    )
    gateway_port, proxy_port = free_port(), free_port()
    closed_ai = (TENANTS_DIR / "closed-ai" / "tenant.json").read_text()
    spec = parse_tenant_spec(json.loads(closed_ai), "closed-ai").model_copy(update={"name": "fuzzed"})
    started = []
    try:
        started.append(start_process(launchers.gateway(config, gateway_port, run_dir, workers=2)))
        gateway = f"http://127.0.0.1:{gateway_port}"
        started.append(
            start_process(
                launchers.tenant_proxy(proxy_config(spec, KEY, gateway + "/v1"), proxy_port, run_dir, workers=2)
            )
        )
        yield {"gateway": gateway, "proxy": f"http://127.0.0.1:{proxy_port}"}
    finally:
        for process in reversed(started):
            process.stop()


def fuzz(document_url: str, path: str, method: str, **call) -> None:
    """Run hypothesis over one operation of the served document: every generated case is sent and checked.

    (schemathesis' own pytest plugin does not support pytest 9 yet; its strategies do the same here.)
    """
    operation = schemathesis.openapi.from_url(document_url)[path][method]

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case) -> None:
        case.call_and_validate(timeout=TIMEOUT, checks=CHECKS, **call)

    run()


def fuzz_unknown_fields(document_url: str, path: str, method: str, **call) -> None:
    """Valid-looking bodies with unknown fields added at the top or in the first message: never a 200, never
    a 5xx, always an OpenAI-shaped error."""
    operation = schemathesis.openapi.from_url(document_url)[path][method]

    @FUZZ
    @given(case=operation.as_strategy(), unknown=UNKNOWN_FIELDS, in_message=st.booleans())
    def run(case, unknown, in_message) -> None:
        if not isinstance(case.body, dict):
            return
        messages = case.body.get("messages")
        if in_message and isinstance(messages, list) and messages and isinstance(messages[0], dict):
            case.body = {**case.body, "messages": [{**messages[0], **unknown}, *messages[1:]]}
        else:
            case.body = {**case.body, **unknown}
        response = case.call(timeout=TIMEOUT, **call)
        assert 400 <= response.status_code < 500, (case.body, response.status_code, response.content[:300])
        error = json.loads(response.content)["error"]
        assert {"type", "message", "code"} <= set(error)

    run()


GATEWAY_AUTH = {"headers": {"Authorization": f"Bearer {KEY}"}}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_gateway_routes(fuzzed_services, path):
    fuzz(fuzzed_services["gateway"] + "/openapi.json", path, "POST", **GATEWAY_AUTH)


@pytest.mark.parametrize("path", ["/ask", "/v1/chat/completions"])
def test_proxy_routes(fuzzed_services, path):
    fuzz(fuzzed_services["proxy"] + "/openapi.json", path, "POST")


@pytest.mark.parametrize(
    "service, path",
    [
        ("gateway", "/v1/chat/completions"),
        ("gateway", "/v1/embeddings"),
        ("proxy", "/v1/chat/completions"),
        ("proxy", "/ask"),
    ],
)
def test_unknown_fields_never_reach_a_backend(fuzzed_services, service, path):
    call = GATEWAY_AUTH if service == "gateway" else {}
    fuzz_unknown_fields(fuzzed_services[service] + "/openapi.json", path, "POST", **call)
