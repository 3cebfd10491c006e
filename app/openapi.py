"""The tenant proxy's OpenAPI document (served at /openapi.json)."""

from __future__ import annotations

from app.schemas import AskRequest, AskResponse
from llm_common.openapi import Operation, openapi_document
from llm_common.request_contract import ChatCompletionRequest
from llm_common.schemas import ChatCompletion, Health

DESCRIPTION = (
    "A tenant's LLM assistant. The tenant's system prompt always comes first (callers cannot send "
    "system/developer messages), max_tokens is capped, and the tenant's guardrails refuse some requests "
    "(400, `code` = sensitive_prompt | refusal_rule | blocked_topic) before anything reaches the gateway."
)


def proxy_openapi(tenant: str, end_user_keys: bool) -> dict:
    errors = (400, 401, 413, 415, 429, 502, 503, 504) if end_user_keys else (400, 413, 415, 429, 502, 503, 504)
    return openapi_document(f"Tenant assistant: {tenant}", "1.0.0", DESCRIPTION, [
        Operation("/ask", "POST", "Ask the tenant's assistant (JSON, or SSE events with stream=true)",
                  request=AskRequest, response=AskResponse, streams=True, errors=errors),
        Operation("/v1/chat/completions", "POST", "OpenAI-compatible chat completion with the tenant's prompt",
                  request=ChatCompletionRequest, response=ChatCompletion, streams=True, errors=errors),
        Operation("/healthz", "GET", "Liveness", response=Health, errors=(), authenticated=False),
    ], bearer_auth=end_user_keys)
