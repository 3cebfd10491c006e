"""A client of one OpenAI-compatible endpoint: OpenAI, a vLLM replica, a llama.cpp
server, or our own gateway (the tenant proxy's upstream).

Uses the openai SDK's raw-response mode: the SDK sets auth, timeouts and maps
errors, while we pass the upstream JSON and SSE bytes through without parsing
them into models (cheaper, and nothing the backend sent is lost).
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping, NamedTuple

import httpx
import openai

from llm_common.sse import iter_event_data


class UpstreamUnavailable(Exception):
    """The backend failed before sending any answer byte; another backend may be tried."""

    def __init__(self, message: str, *, reason: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


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
    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float):
        self.base_url = base_url
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._sdk = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def chat(self, payload: dict) -> UpstreamReply:
        """Non-streaming chat completion; returns the upstream JSON body as bytes."""
        return self._post("/chat/completions", payload)

    def embeddings(self, payload: dict) -> UpstreamReply:
        return self._post("/embeddings", payload)

    def open_chat_stream(self, payload: dict) -> ChatStream:
        with _upstream_errors(self.base_url):
            response = self._sdk.post("/chat/completions", body={**payload, "stream": True},
                                      cast_to=httpx.Response, stream=True)
            return ChatStream(response)

    def _post(self, path: str, payload: dict) -> UpstreamReply:
        # The SDK's low-level post: its auth, timeouts and error mapping, without the
        # per-call re-validation of every message that `create()` does (~3 ms a call).
        with _upstream_errors(self.base_url):
            response = self._sdk.post(path, body=payload, cast_to=httpx.Response)
            return UpstreamReply(response.content, response.headers)

    def close(self) -> None:
        self._sdk.close()


class _upstream_errors:
    """Translate the SDK's exceptions into Unavailable (try elsewhere) or Rejected (tell the caller)."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, traceback):
        if error is None:
            return False
        if isinstance(error, openai.APITimeoutError):
            raise UpstreamUnavailable(f"{self.base_url}: timed out", reason="timeout") from error
        if isinstance(error, openai.APIConnectionError):
            raise UpstreamUnavailable(f"{self.base_url}: cannot connect", reason="connect") from error
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            message = _upstream_message(error)
            if status >= 500 or status in (404, 408, 429):
                raise UpstreamUnavailable(
                    f"{self.base_url}: HTTP {status}: {message}", reason=f"http_{status}", status=status
                ) from error
            raise UpstreamRejected(status, message) from error
        return False


def _upstream_message(error: "openai.APIStatusError") -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("detail"):
            return str(body["detail"])
    return error.message
