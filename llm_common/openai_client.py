"""Clients of one OpenAI-compatible endpoint: OpenAI, a vLLM replica, a llama.cpp
server, or our own gateway (the tenant proxy's upstream).

Both pass the upstream JSON and SSE bytes through without parsing them into
models (cheaper, and nothing the backend sent is lost), and sort failures into
UpstreamUnavailable (try elsewhere) and UpstreamRejected (tell the caller):

- `SdkClient` speaks through the official openai SDK (its low-level `post`), for
  OpenAI itself.
- `HttpxClient` speaks plain HTTP with httpx, for our own hops (vLLM pool members,
  proxy to gateway), where the SDK's per-call machinery would be most of the
  latency we add (bench/overhead.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, NamedTuple

import httpx
import openai

from llm_common.sse import iter_event_data

# Why a call to an upstream failed, as metric label values: these, or `http_<status>`.
# "stream_broken" is an answer stream that broke after its first byte (counted by the relays).
FAILURE_REASONS = ("connect", "timeout", "stream_broken")


class UpstreamUnavailable(Exception):
    """The backend failed before sending any answer byte; another backend may be tried."""

    def __init__(self, message: str, *, reason: str, status: int | None = None,
                 upstream_error: dict | None = None, retry_after: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.upstream_error = upstream_error  # the OpenAI-shaped `error` object the upstream sent, if any
        self.retry_after = retry_after


class UpstreamRejected(Exception):
    """The backend refused the request itself (4xx): retrying elsewhere would not help."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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
    """chat / embeddings / streamed chat against one base URL (ending in /v1)."""

    base_url: str

    def chat(self, payload: dict) -> UpstreamReply:
        """Non-streaming chat completion; returns the upstream JSON body as bytes."""
        return self._post("/chat/completions", payload)

    def embeddings(self, payload: dict) -> UpstreamReply:
        return self._post("/embeddings", payload)

    def open_chat_stream(self, payload: dict) -> ChatStream:
        """Send the request and check its status; the body is read as it is iterated."""
        raise NotImplementedError

    def _post(self, path: str, payload: dict) -> UpstreamReply:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SdkClient(OpenAICompatibleClient):
    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float):
        self.base_url = base_url
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._sdk = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def open_chat_stream(self, payload: dict) -> ChatStream:
        with self._sdk_errors():
            response = self._sdk.post("/chat/completions", body={**payload, "stream": True},
                                      cast_to=httpx.Response, stream=True)
            return ChatStream(response)

    def _post(self, path: str, payload: dict) -> UpstreamReply:
        # The SDK's low-level post: its auth, timeouts and error mapping, without the
        # per-call re-validation of every message that `create()` does (~3 ms a call).
        with self._sdk_errors():
            response = self._sdk.post(path, body=payload, cast_to=httpx.Response)
            return UpstreamReply(response.content, response.headers)

    @contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        try:
            yield
        except openai.APITimeoutError:
            raise UpstreamUnavailable(f"{self.base_url}: timed out", reason="timeout") from None
        except openai.APIConnectionError:
            raise UpstreamUnavailable(f"{self.base_url}: cannot connect", reason="connect") from None
        except openai.APIStatusError as error:
            raise _status_error(self.base_url, error.status_code, error.body, error.message) from None

    def close(self) -> None:
        self._sdk.close()


class HttpxClient(OpenAICompatibleClient):
    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float,
                 max_connections: int = 256):
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def open_chat_stream(self, payload: dict) -> ChatStream:
        request = self._http.build_request("POST", "/chat/completions", json={**payload, "stream": True})
        with self._http_errors():
            response = self._http.send(request, stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
        self._raise_for_status(response)
        return ChatStream(response)

    def _post(self, path: str, payload: dict) -> UpstreamReply:
        with self._http_errors():
            response = self._http.post(path, json=payload)
        self._raise_for_status(response)
        return UpstreamReply(response.content, response.headers)

    def _raise_for_status(self, response: httpx.Response) -> None:
        """An error status becomes Unavailable or Rejected (the body must have been read)."""
        if response.status_code >= 400:
            raise _status_error(self.base_url, response.status_code, _json_or_none(response), response.text,
                                response.headers.get("retry-after"))

    @contextmanager
    def _http_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise UpstreamUnavailable(f"{self.base_url}: timed out", reason="timeout") from None
        except httpx.TransportError:
            raise UpstreamUnavailable(f"{self.base_url}: cannot connect", reason="connect") from None

    def close(self) -> None:
        self._http.close()


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _status_error(base_url: str, status: int, body: object, fallback: str,
                  retry_after: str | None = None) -> Exception:
    """5xx and 404/408/429 may succeed elsewhere; any other 4xx is the caller's to fix."""
    message = _upstream_message(body) or fallback[:500]
    if status >= 500 or status in (404, 408, 429):
        inner = body.get("error") if isinstance(body, dict) else None
        return UpstreamUnavailable(f"{base_url}: HTTP {status}: {message}", reason=f"http_{status}", status=status,
                                   upstream_error=inner if isinstance(inner, dict) else None, retry_after=retry_after)
    return UpstreamRejected(status, message)


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
