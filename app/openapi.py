"""The tenant proxy's OpenAPI document (served at /openapi.json)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.schemas import AskRequest, AskResponse
from llm_common.openapi import Operation, openapi_document
from llm_common.request_contract import ChatCompletionRequest, EmbeddingRequest
from llm_common.responses import ResponseRequest
from llm_common.schemas import ChatCompletion, EmbeddingList, Health, ModelCard, ModelList, ResponseObject

DESCRIPTION = (
    "A tenant's LLM assistant. The tenant's system prompt always comes first (callers cannot send "
    "system/developer messages), max_tokens is capped, and the tenant's guardrails refuse some requests "
    "(400, `code` = sensitive_prompt | refusal_rule | blocked_topic) before anything reaches the gateway. "
    "The OpenAI routes work with unmodified OpenAI clients: chat completions (streams carry `usage` when "
    "`stream_options.include_usage` asks), embeddings, the models this tenant can reach, and the Responses "
    "API's text subset (the caller's `instructions` are placed below the tenant's prompt; responses are not "
    "stored, so `previous_response_id` is refused)."
)


def proxy_openapi(tenant: str, end_user_keys: bool) -> dict:
    # 403 and 404 also answer a model the tenant may not use, or that does not exist.
    errors = (
        (400, 401, 403, 404, 413, 415, 429, 502, 503, 504)
        if end_user_keys
        else (400, 403, 404, 413, 415, 429, 502, 503, 504)
    )
    reads = (401, 502, 503, 504) if end_user_keys else (502, 503, 504)
    return openapi_document(
        f"Tenant assistant: {tenant}",
        "1.0.0",
        DESCRIPTION,
        [
            Operation(
                "/ask",
                "POST",
                "Ask the tenant's assistant (JSON, or SSE events with stream=true)",
                request=AskRequest,
                response=AskResponse,
                streams=True,
                errors=errors,
            ),
            Operation(
                "/v1/chat/completions",
                "POST",
                "OpenAI-compatible chat completion with the tenant's prompt",
                request=ChatCompletionRequest,
                response=ChatCompletion,
                streams=True,
                errors=errors,
            ),
            Operation(
                "/v1/responses",
                "POST",
                "OpenAI Responses API (text subset) with the tenant's prompt: JSON, or "
                "its stream events with stream=true",
                request=ResponseRequest,
                response=ResponseObject,
                streams=True,
                errors=errors,
            ),
            Operation(
                "/v1/embeddings",
                "POST",
                "Embeddings from the platform's embedding model, through the gateway",
                request=EmbeddingRequest,
                response=EmbeddingList,
                errors=errors,
            ),
            Operation("/v1/models", "GET", "The models this tenant may use", response=ModelList, errors=reads),
            Operation(
                "/v1/models/{model}",
                "GET",
                "One model this tenant may use, by name or alias",
                response=ModelCard,
                errors=(404, *reads),
            ),
            Operation("/healthz", "GET", "Liveness", response=Health, errors=(), authenticated=False),
        ],
        bearer_auth=end_user_keys,
    )


def openapi_blueprint(document: dict) -> Blueprint:
    blueprint = Blueprint("openapi", __name__)

    @blueprint.get("/openapi.json")
    def openapi():
        return jsonify(document)

    return blueprint
