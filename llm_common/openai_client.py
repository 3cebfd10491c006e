"""A client of one OpenAI-compatible endpoint for a threaded service: the tenant proxy's
`HttpxClient` to our gateway, and what every client shares (the gateway's asynchronous
clients are in llm_gateway/backends/clients.py).

Clients pass the upstream JSON and SSE bytes through without parsing them into models
(cheaper, and nothing the upstream sent is lost), and sort failures into
UpstreamUnavailable (try elsewhere) and UpstreamRejected (tell the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

import httpx

from llm_common.sse import iter_event_data

# Why a call to an upstream failed, as metric label values: these, or `http_<status>`.
# "stream_broken" is an answer stream that broke after its first byte (counted by the relays).
FAILURE_REASONS = ("connect", "timeout", "disconnected", "stream_broken")
REQUEST_ID_HEADER = "X-Request-Id"


class UpstreamUnavailable(Exception):
    """The upstream failed before sending any answer byte (no connection, timeout, 5xx): it may be
    unwell, and another backend may be tried. The message is for logs (it names the URL)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        upstream_error: dict | None = None,
        retry_after: str | None = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.upstream_error = upstream_error  # the OpenAI-shaped `error` object the upstream sent, if any
        self.retry_after = retry_after


class UpstreamRejected(Exception):
    """The upstream refused this request (a 4xx): the caller's to fix, or (429) to retry later. It says
    nothing about the upstream's health. The message is for logs (it is the upstream's own text)."""

    def __init__(
        self, status: int, message: str, *, upstream_error: dict | None = None, retry_after: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.upstream_error = upstream_error
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        return self.status == 429


class UpstreamReply(NamedTuple):
    content: bytes
    headers: Mapping[str, str]


class ChatStream:
    """An opened upstream stream: the request is sent and the status checked; iterate for SSE data."""

    def __init__(self, response):
        self._response = response
        self._closed = False
        self.headers: Mapping[str, str] = response.headers
        self.on_close: list[Callable[[], None]] = []

    def __iter__(self) -> Iterator[str]:
        return iter_event_data(self._response.iter_lines())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._response.close()
        finally:
            for callback in self.on_close:
                callback()


class OpenAICompatibleClient:
    """chat / embeddings / streamed chat / models against one base URL (ending in /v1)."""

    base_url: str

    def chat(self, payload: dict, request_id: str | None = None) -> UpstreamReply:
        """Non-streaming chat completion; returns the upstream JSON body as bytes.
        `request_id` is sent as X-Request-Id (every method takes it)."""
        return self._post("/chat/completions", payload, request_id)

    def embeddings(self, payload: dict, request_id: str | None = None) -> UpstreamReply:
        return self._post("/embeddings", payload, request_id)

    def models(self, request_id: str | None = None) -> UpstreamReply:
        """`GET /models`: the models this client's key can reach."""
        return self._get("/models", request_id)

    def open_chat_stream(self, payload: dict, request_id: str | None = None) -> ChatStream:
        """Send the request and check its status; the body is read as it is iterated."""
        raise NotImplementedError

    def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        raise NotImplementedError

    def _get(self, path: str, request_id: str | None) -> UpstreamReply:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class HttpxClient(OpenAICompatibleClient):
    def __init__(
        self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float, max_connections: int = 256
    ):
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def open_chat_stream(self, payload: dict, request_id: str | None = None) -> ChatStream:
        request = self._http.build_request(
            "POST", "/chat/completions", json={**payload, "stream": True}, headers=_headers(request_id)
        )
        with self._http_errors():
            response = self._http.send(request, stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
        self._raise_for_status(response)
        return ChatStream(response)

    def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        with self._http_errors():
            response = self._http.post(path, json=payload, headers=_headers(request_id))
        self._raise_for_status(response)
        return UpstreamReply(response.content, response.headers)

    def _get(self, path: str, request_id: str | None) -> UpstreamReply:
        with self._http_errors():
            response = self._http.get(path, headers=_headers(request_id))
        self._raise_for_status(response)
        return UpstreamReply(response.content, response.headers)

    def _raise_for_status(self, response: httpx.Response) -> None:
        """An error status becomes Unavailable or Rejected (the body must have been read)."""
        if response.status_code >= 400:
            raise _status_error(
                self.base_url,
                response.status_code,
                _json_or_none(response),
                response.text,
                response.headers.get("retry-after"),
            )

    @contextmanager
    def _http_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as error:
            raise _transport_failure(self.base_url, error) from None

    def close(self) -> None:
        self._http.close()


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _transport_failure(base_url: str, error: BaseException) -> UpstreamUnavailable:
    """`connect`: the request never reached the upstream (refused, unreachable, connect timeout);
    `timeout`: no answer in time; `disconnected`: the connection broke while the upstream had it."""
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
        reason = "connect"
    elif isinstance(error, httpx.TimeoutException):
        reason = "timeout"
    else:
        reason = "disconnected"
    return UpstreamUnavailable(f"{base_url}: {reason}: {type(error).__name__}: {error}", reason=reason)


def _headers(request_id: str | None) -> dict[str, str] | None:
    return {REQUEST_ID_HEADER: request_id} if request_id else None


def _status_error(base_url: str, status: int, body: object, fallback: str, retry_after: str | None = None) -> Exception:
    """A 5xx may be the upstream's ill health (try elsewhere); a 4xx is about this request only."""
    message = _upstream_message(body) or fallback[:500]
    inner = body.get("error") if isinstance(body, dict) else None
    inner = inner if isinstance(inner, dict) else None
    if status >= 500:
        return UpstreamUnavailable(
            f"{base_url}: HTTP {status}: {message}",
            reason=f"http_{status}",
            status=status,
            upstream_error=inner,
            retry_after=retry_after,
        )
    return UpstreamRejected(
        status, f"{base_url}: HTTP {status}: {message}", upstream_error=inner, retry_after=retry_after
    )


def _upstream_message(body: object) -> str | None:
    """The human message of an OpenAI-shaped (or FastAPI-shaped) error body."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error", body)
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])
    if body.get("detail"):
        return str(body["detail"])
    return None
