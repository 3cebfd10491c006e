"""Fuzzing a tenant proxy's further OpenAI routes (`/v1/responses`, `/v1/embeddings`, `/v1/models`) from its
served OpenAPI document, with the same services and checks as tests/test_openapi_fuzz.py: no 5xx, no hang, every
answer as documented, and no body with a field the Responses API does not know is ever answered 200."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from llm_common.responses import UNSUPPORTED, ResponseRequest
from tests.test_openapi_fuzz import FUZZ, JSON_VALUES, TIMEOUT, fuzz, fuzzed_services  # noqa: F401 (a fixture)

RESPONSES_FIELDS = {*ResponseRequest.model_fields, *UNSUPPORTED, "role", "content", "type", "text", "id", "status"}
UNKNOWN_FIELDS = st.dictionaries(
    st.text(min_size=1, max_size=24).filter(lambda key: key not in RESPONSES_FIELDS),
    JSON_VALUES,
    min_size=1,
    max_size=3,
)


@pytest.mark.parametrize(
    "path, method",
    [("/v1/responses", "POST"), ("/v1/embeddings", "POST"), ("/v1/models", "GET"), ("/v1/models/{model}", "GET")],
)
def test_proxy_openai_routes(fuzzed_services, path, method):
    fuzz(fuzzed_services["proxy"] + "/openapi.json", path, method)


def test_unknown_fields_in_a_response_request_never_reach_a_backend(fuzzed_services):
    operation = schemathesis.openapi.from_url(fuzzed_services["proxy"] + "/openapi.json")["/v1/responses"]["POST"]

    @FUZZ
    @given(case=operation.as_strategy(), unknown=UNKNOWN_FIELDS, in_item=st.booleans())
    def run(case, unknown, in_item) -> None:
        if not isinstance(case.body, dict):
            return
        items = case.body.get("input")
        if in_item and isinstance(items, list) and items and isinstance(items[0], dict):
            case.body = {**case.body, "input": [{**items[0], **unknown}, *items[1:]]}
        else:
            case.body = {**case.body, **unknown}
        response = case.call(timeout=TIMEOUT)
        assert 400 <= response.status_code < 500, (case.body, response.status_code, response.content[:300])
        assert {"type", "message", "code"} <= set(json.loads(response.content)["error"])

    run()
