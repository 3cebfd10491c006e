"""The gateway's OpenAPI document (served at /openapi.json)."""

from __future__ import annotations

from llm_common.openapi import Operation, openapi_document
from llm_common.request_contract import ChatCompletionRequest, EmbeddingRequest
from llm_common.responses import ResponseRequest
from llm_common.schemas import ChatCompletion, EmbeddingList, Health, ModelCard, ModelList, ResponseObject

DESCRIPTION = (
    "The shared OpenAI-compatible LLM gateway. The tenant is the owner of the bearer key, never a header "
    "or body field; `model` is replaced by the tenant's model and every max-tokens alias capped by its route. "
    "Only the parameters described here are accepted; any other field is a 400 naming it, unless it is a "
    "backend extension the tenant's spec allows (`allowed_request_extensions`). Rate limits, monthly budgets "
    "and the concurrency limit answer 429 with Retry-After; every answer carries X-Request-Id (a well-formed "
    "one sent by the caller is kept), the id of its row in the usage ledger."
)


def gateway_openapi() -> dict:
    return openapi_document(
        "LLM gateway",
        "1.0.0",
        DESCRIPTION,
        [
            Operation(
                "/v1/chat/completions",
                "POST",
                "Chat completion (JSON, or SSE with stream=true)",
                request=ChatCompletionRequest,
                response=ChatCompletion,
                streams=True,
                errors=(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
            ),
            Operation(
                "/v1/responses",
                "POST",
                "OpenAI Responses API (text subset), translated to a chat completion: "
                "JSON, or its stream events with stream=true",
                request=ResponseRequest,
                response=ResponseObject,
                streams=True,
                errors=(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
            ),
            Operation(
                "/v1/embeddings",
                "POST",
                "Embeddings from the platform's embedding model",
                request=EmbeddingRequest,
                response=EmbeddingList,
                errors=(400, 401, 413, 415, 429, 502, 503, 504),
            ),
            Operation(
                "/v1/models", "GET", "The models the caller's tenant may use", response=ModelList, errors=(401, 503)
            ),
            Operation(
                "/v1/models/{model}",
                "GET",
                "One model the caller's tenant may use, by name or alias",
                response=ModelCard,
                errors=(401, 404, 503),
            ),
            Operation("/healthz", "GET", "Liveness", response=Health, errors=(), authenticated=False),
            Operation(
                "/readyz",
                "GET",
                "Readiness: the tenants are known and the usage ledger is connected",
                response=Health,
                errors=(503,),
                authenticated=False,
            ),
        ],
        bearer_auth=True,
    )
