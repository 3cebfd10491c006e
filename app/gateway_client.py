"""The proxy's only upstream: the shared gateway, an OpenAI-compatible API."""

from __future__ import annotations

import json
from typing import Callable, TypeVar

from llm_common.errors import ApiError
from llm_common.openai_client import (
    ChatStream,
    HttpxClient,
    UpstreamRejected,
    UpstreamReply,
    UpstreamUnavailable,
)

T = TypeVar("T")
BACKEND_HEADER = "x-llm-backend"
PLACEHOLDER_MODEL = "tenant-default"  # the gateway picks the tenant's model per backend


class GatewayClient:
    """`on_failure(reason)` is told of every failed call (not of requests the gateway rejected)."""

    def __init__(self, base_url: str, key: str, *, connect_timeout: float, read_timeout: float,
                 on_failure: Callable[[str], None] = lambda reason: None):
        self._client = HttpxClient(base_url, key, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self._on_failure = on_failure

    def chat(self, payload: dict) -> UpstreamReply:
        return self._call(self._client.chat, payload)

    def open_chat_stream(self, payload: dict) -> ChatStream:
        return self._call(self._client.open_chat_stream, payload)

    def _call(self, method: Callable[[dict], T], payload: dict) -> T:
        try:
            return method({"model": PLACEHOLDER_MODEL, **payload})
        except UpstreamUnavailable as error:
            self._on_failure(error.reason)
            raise _as_api_error(error) from None
        except UpstreamRejected as error:
            raise _as_api_error(error) from None

    def embed(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        """(model, one vector per text, in order) from the platform's embedding model."""
        try:
            reply = self._client.embeddings({"model": PLACEHOLDER_MODEL, "input": texts})
        except (UpstreamUnavailable, UpstreamRejected) as error:
            raise _as_api_error(error) from None
        try:
            body = json.loads(reply.content)
            rows = sorted(body["data"], key=lambda row: row["index"])
            return str(body.get("model") or ""), [row["embedding"] for row in rows]
        except (ValueError, KeyError, TypeError):
            raise ApiError(502, "the gateway's embeddings answer was malformed", code="bad_gateway_answer") from None


def _as_api_error(error: UpstreamUnavailable | UpstreamRejected) -> ApiError:
    """Keep the gateway's status and message; a gateway we cannot reach is a 502."""
    if isinstance(error, UpstreamRejected):
        return ApiError(error.status, error.message, code="gateway_rejected")
    if error.retry_after is not None and error.upstream_error:  # the gateway's rate limit or budget: as it said
        refused = error.upstream_error
        return ApiError(error.status, str(refused.get("message")), code=refused.get("code"),
                        error_type=refused.get("type"), headers={"Retry-After": error.retry_after})
    if error.status is not None:
        return ApiError(error.status, f"gateway: {error}", code="gateway_error")
    return ApiError(502, f"the LLM gateway is unreachable ({error})", code="gateway_unreachable")
