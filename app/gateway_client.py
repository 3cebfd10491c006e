"""The proxy's only upstream: the shared gateway, an OpenAI-compatible API."""

from __future__ import annotations

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


def _as_api_error(error: UpstreamUnavailable | UpstreamRejected) -> ApiError:
    """Keep the gateway's status and message; a gateway we cannot reach is a 502."""
    if isinstance(error, UpstreamRejected):
        return ApiError(error.status, error.message, code="gateway_rejected")
    if error.status is not None:
        return ApiError(error.status, f"gateway: {error}", code="gateway_error")
    return ApiError(502, f"the LLM gateway is unreachable ({error})", code="gateway_unreachable")
