"""The proxy's only upstream: the shared gateway, an OpenAI-compatible API."""

from __future__ import annotations

from llm_common.errors import ApiError
from llm_common.openai_client import (
    ChatStream,
    HttpxClient,
    UpstreamRejected,
    UpstreamReply,
    UpstreamUnavailable,
)

BACKEND_HEADER = "x-llm-backend"
PLACEHOLDER_MODEL = "tenant-default"  # the gateway picks the tenant's model per backend


class GatewayClient:
    def __init__(self, base_url: str, key: str, *, connect_timeout: float, read_timeout: float):
        self._client = HttpxClient(base_url, key, connect_timeout=connect_timeout, read_timeout=read_timeout)

    def chat(self, payload: dict) -> UpstreamReply:
        try:
            return self._client.chat({"model": PLACEHOLDER_MODEL, **payload})
        except (UpstreamUnavailable, UpstreamRejected) as error:
            raise _as_api_error(error) from None

    def open_chat_stream(self, payload: dict) -> ChatStream:
        try:
            return self._client.open_chat_stream({"model": PLACEHOLDER_MODEL, **payload})
        except (UpstreamUnavailable, UpstreamRejected) as error:
            raise _as_api_error(error) from None


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
