"""The gateway's asynchronous clients of one OpenAI-compatible endpoint (a vLLM replica, a llama.cpp
server, OpenAI), the event-loop counterparts of llm_common/openai_client.py's (which the tenant
proxy's threads use): the same failure sorting (UpstreamUnavailable / UpstreamRejected), the
upstream bytes passed through unparsed.

- `AsyncHttpxClient`: plain HTTP for the pool members, where the SDK's per-call machinery would
  be most of the latency we add. Its connection pool is as large as the streams a gateway
  process holds at once (`max_connections`), since each stream holds a connection.
- `AsyncSdkClient`: the official SDK's `AsyncOpenAI` (its low-level `post`), for OpenAI itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import AsyncIterator, Callable, Iterator, Mapping

import httpx
import openai

from llm_common.openai_client import (REQUEST_ID_HEADER, UpstreamReply, _headers, _json_or_none, _status_error,
                                      _transport_failure)
from llm_common.sse import aiter_event_data

DEFAULT_MAX_CONNECTIONS = 4096


class AsyncChatStream:
    """An opened upstream stream: the request is sent and the status checked; iterate for SSE data."""

    def __init__(self, response: httpx.Response):
        self._response = response
        self._closed = False
        self.headers: Mapping[str, str] = response.headers
        self.on_close: list[Callable[[], None]] = []

    def __aiter__(self) -> AsyncIterator[str]:
        return aiter_event_data(self._response.aiter_lines())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._response.aclose()
        finally:
            for callback in self.on_close:
                callback()


class AsyncOpenAICompatibleClient:
    """chat / embeddings / streamed chat against one base URL (ending in /v1); `request_id` is
    sent as X-Request-Id."""

    base_url: str

    async def chat(self, payload: dict, request_id: str | None = None) -> UpstreamReply:
        return await self._post("/chat/completions", payload, request_id)

    async def embeddings(self, payload: dict, request_id: str | None = None) -> UpstreamReply:
        return await self._post("/embeddings", payload, request_id)

    async def open_chat_stream(self, payload: dict, request_id: str | None = None) -> AsyncChatStream:
        """Send the request and check its status; the body is read as it is iterated."""
        raise NotImplementedError

    async def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class AsyncHttpxClient(AsyncOpenAICompatibleClient):
    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS):
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=None),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def open_chat_stream(self, payload: dict, request_id: str | None = None) -> AsyncChatStream:
        request = self._http.build_request("POST", "/chat/completions", json={**payload, "stream": True},
                                           headers=_headers(request_id))
        with _http_errors(self.base_url):
            response = await self._http.send(request, stream=True)
        if response.status_code >= 400:
            try:
                with _http_errors(self.base_url):
                    await response.aread()
            finally:
                await response.aclose()
            self._raise_for_status(response)
        return AsyncChatStream(response)

    async def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        with _http_errors(self.base_url):
            response = await self._http.post(path, json=payload, headers=_headers(request_id))
        self._raise_for_status(response)
        return UpstreamReply(response.content, response.headers)

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise _status_error(self.base_url, response.status_code, _json_or_none(response), response.text,
                                response.headers.get("retry-after"))

    async def aclose(self) -> None:
        await self._http.aclose()


class AsyncSdkClient(AsyncOpenAICompatibleClient):
    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float):
        self.base_url = base_url
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._sdk = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def open_chat_stream(self, payload: dict, request_id: str | None = None) -> AsyncChatStream:
        with _sdk_errors(self.base_url):
            response = await self._sdk.post("/chat/completions", body={**payload, "stream": True},
                                            cast_to=httpx.Response, stream=True, options=_sdk_options(request_id))
            return AsyncChatStream(response)

    async def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        # The SDK's low-level post: its auth, timeouts and error mapping, without `create()`'s
        # per-call re-validation of every message.
        with _sdk_errors(self.base_url):
            response = await self._sdk.post(path, body=payload, cast_to=httpx.Response,
                                            options=_sdk_options(request_id))
            return UpstreamReply(await response.aread(), response.headers)

    async def aclose(self) -> None:
        await self._sdk.close()


def _sdk_options(request_id: str | None) -> dict:
    return {"headers": {REQUEST_ID_HEADER: request_id}} if request_id else {}


@contextmanager
def _http_errors(base_url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as error:
        raise _transport_failure(base_url, error) from None


@contextmanager
def _sdk_errors(base_url: str) -> Iterator[None]:
    try:
        yield
    except openai.APITimeoutError as error:
        raise _transport_failure(base_url, error.__cause__ or error) from None
    except openai.APIConnectionError as error:
        raise _transport_failure(base_url, error.__cause__ or error) from None
    except openai.APIStatusError as error:
        raise _status_error(base_url, error.status_code, error.body, error.message,
                            error.response.headers.get("retry-after")) from None
