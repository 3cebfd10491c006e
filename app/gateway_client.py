"""The proxy's only upstream: the shared gateway, an OpenAI-compatible API.

Every call carries the request's id (X-Request-Id), so one id follows a request through the
proxy, the gateway and the backend. The gateway's errors are already in the caller's terms
(it keeps backend details in its log), so the proxy passes them on as they are; when the
gateway cannot be reached, the caller gets a plain 502 and the details go to the proxy's log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TypeVar

from llm_common.errors import ApiError
from llm_common.openai_client import (
    ChatStream,
    HttpxClient,
    UpstreamRejected,
    UpstreamReply,
    UpstreamUnavailable,
)
from llm_common.tracing import current_request_id
from tenant_spec.models import TENANT_DEFAULT_MODEL

T = TypeVar("T")
BACKEND_HEADER = "x-llm-backend"
PLACEHOLDER_MODEL = TENANT_DEFAULT_MODEL  # a call naming no model gets the tenant's default
log = logging.getLogger(__name__)


class GatewayClient:
    """`on_failure(reason)` is told of every failed call (not of requests the gateway rejected)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        on_failure: Callable[[str], None] = lambda reason: None,
    ):
        self._client = HttpxClient(base_url, key, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self._on_failure = on_failure

    def chat(self, payload: dict) -> UpstreamReply:
        return self._call(self._client.chat, {"model": PLACEHOLDER_MODEL, **payload})

    def open_chat_stream(self, payload: dict) -> ChatStream:
        return self._call(self._client.open_chat_stream, {"model": PLACEHOLDER_MODEL, **payload})

    def embeddings(self, payload: dict) -> UpstreamReply:
        """The gateway's `/v1/embeddings` answer as it sent it (the gateway sets the model)."""
        return self._call(self._client.embeddings, {"model": PLACEHOLDER_MODEL, **payload})

    def models(self) -> UpstreamReply:
        """The gateway's `/v1/models`: the models this tenant's key can reach."""
        return self._call(lambda _payload, request_id: self._client.models(request_id), {})

    def _call(self, method: Callable[[dict, str | None], T], payload: dict) -> T:
        try:
            return method(payload, current_request_id())
        except UpstreamUnavailable as error:
            self._on_failure(error.reason)
            raise _as_api_error(error) from None
        except UpstreamRejected as error:
            raise _as_api_error(error) from None

    def embed(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        """(model, one vector per text, in order) from the platform's embedding model."""
        reply = self._call(self._client.embeddings, {"model": PLACEHOLDER_MODEL, "input": texts})
        try:
            body = json.loads(reply.content)
            rows = sorted(body["data"], key=lambda row: row["index"])
            return str(body.get("model") or ""), [row["embedding"] for row in rows]
        except (ValueError, KeyError, TypeError):
            raise ApiError(502, "the gateway's embeddings answer was malformed", code="bad_gateway_answer") from None


def _key_refused(error: UpstreamUnavailable | UpstreamRejected) -> bool:
    """A 401, or a 403 other than the caller's model not being allowed to the tenant."""
    code = (error.upstream_error or {}).get("code")
    return error.status == 401 or (error.status == 403 and code != "model_not_allowed")


def _as_api_error(error: UpstreamUnavailable | UpstreamRejected) -> ApiError:
    """The gateway's own error as it said it (status, type, code, message, Retry-After); a gateway that
    could not be reached, or answered without an error body, is a 502 whose details go to the log."""
    log.warning("gateway call failed: %s", error)
    if _key_refused(error):  # the gateway refused this proxy's key: the platform's to fix, not the caller's
        return ApiError(
            502,
            "the LLM gateway refused this assistant's credentials; tell the platform operator this request id",
            code="gateway_key_refused",
        )
    refused = error.upstream_error
    if error.status is not None and refused and isinstance(refused.get("message"), str):
        code = refused.get("code") if isinstance(refused.get("code"), str) else None
        error_type = refused.get("type") if isinstance(refused.get("type"), str) else None
        headers = {"Retry-After": error.retry_after} if error.retry_after else None
        return ApiError(error.status, refused["message"], code=code, error_type=error_type, headers=headers)
    if error.status is not None:
        return ApiError(
            502,
            f"the LLM gateway failed (HTTP {error.status}); retry, and if it persists tell the "
            "platform operator this request id",
            code="gateway_error",
        )
    return ApiError(502, "the LLM gateway cannot be reached right now; retry shortly", code="gateway_unreachable")
