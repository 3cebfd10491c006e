"""The gateway's asynchronous clients of one OpenAI-compatible endpoint (a vLLM replica, a llama.cpp
server, OpenAI), the event-loop counterparts of llm_common/openai_client.py's (which the tenant
proxy's threads use): the same failure sorting (UpstreamUnavailable / UpstreamRejected), the
upstream bytes passed through unparsed.

- `AiohttpClient`: plain HTTP for the pool members, where the SDK's per-call machinery would be
  most of the latency we add. Its connection pool is as large as the streams a gateway process
  holds at once (`max_connections`), since each stream holds a connection.
- `AsyncSdkClient`: the official SDK's `AsyncOpenAI` (its low-level `post`), for OpenAI itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import openai

from llm_common.openai_client import REQUEST_ID_HEADER, UpstreamReply, UpstreamUnavailable, _status_error
from llm_common.sse import aiter_event_data

DEFAULT_MAX_CONNECTIONS = 4096
READ_BUFFER_BYTES = 1 << 20  # an SSE line (one chunk) may be up to twice this long


class AsyncChatStream:
    """An opened upstream stream: the request is sent and the status checked; iterate for SSE data."""

    def __init__(self, response: _AiohttpStream | _SdkStream):
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


class AiohttpClient(AsyncOpenAICompatibleClient):
    """Plain HTTP with aiohttp. Measured against httpx's AsyncClient on this path (bench/upstream_clients.py),
    aiohttp costs a tenth of the CPU per request; the session is opened on first use, on the worker's loop."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ):
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                read_bufsize=READ_BUFFER_BYTES,
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def _send(self, path: str, payload: dict, request_id: str | None) -> aiohttp.ClientResponse:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        with _aiohttp_errors(self.base_url):
            return await self._http().post(self.base_url + path, data=json.dumps(payload).encode(), headers=headers)

    async def open_chat_stream(self, payload: dict, request_id: str | None = None) -> AsyncChatStream:
        response = await self._send("/chat/completions", {**payload, "stream": True}, request_id)
        if response.status >= 400:
            try:
                with _aiohttp_errors(self.base_url):
                    content = await response.read()
            finally:
                response.release()
            raise self._status_error(response, content)
        return AsyncChatStream(_AiohttpStream(response, self.base_url))

    async def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        response = await self._send(path, payload, request_id)
        try:
            with _aiohttp_errors(self.base_url):
                content = await response.read()
        finally:
            response.release()
        if response.status >= 400:
            raise self._status_error(response, content)
        return UpstreamReply(content, response.headers)

    def _status_error(self, response: aiohttp.ClientResponse, content: bytes) -> Exception:
        text = content.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        return _status_error(self.base_url, response.status, body, text, response.headers.get("retry-after"))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _AiohttpStream:
    """An aiohttp response body in the shape AsyncChatStream reads (`headers`, `aiter_lines`, `aclose`);
    closing it before the end drops the connection, which tells the upstream to stop generating."""

    def __init__(self, response: aiohttp.ClientResponse, base_url: str):
        self._response, self._base_url = response, base_url
        self.headers = response.headers
        self._ended = False

    async def aiter_lines(self) -> AsyncIterator[str]:
        with _aiohttp_errors(self._base_url):
            async for line in self._response.content:
                yield line.decode("utf-8").rstrip("\r\n")
        self._ended = True

    async def aclose(self) -> None:
        if self._ended:
            self._response.release()
        else:
            self._response.close()


class AsyncSdkClient(AsyncOpenAICompatibleClient):
    """The SDK's low-level `post` (its auth, timeouts and error mapping, without `create()`'s per-call
    re-validation of every message), asking for the SDK's own unparsed response, `openai.AsyncAPIResponse`.
    Only plain values and the SDK's own types cross into it, whichever HTTP library it uses underneath."""

    def __init__(self, base_url: str, api_key: str, *, connect_timeout: float, read_timeout: float):
        self.base_url = base_url
        timeout = openai.Timeout(read_timeout, connect=connect_timeout)
        self._sdk = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def open_chat_stream(self, payload: dict, request_id: str | None = None) -> AsyncChatStream:
        # The SDK's `with_streaming_response` marks its requests with this header: the response comes
        # back with its body not yet read.
        headers = {"X-Stainless-Raw-Response": "stream"}
        response = await self._send("/chat/completions", {**payload, "stream": True}, request_id, headers)
        return AsyncChatStream(_SdkStream(response))

    async def _post(self, path: str, payload: dict, request_id: str | None) -> UpstreamReply:
        response = await self._send(path, payload, request_id, {})  # the body is read inside the SDK
        return UpstreamReply(await response.read(), response.headers)

    async def _send(
        self, path: str, payload: dict, request_id: str | None, headers: dict[str, str]
    ) -> openai.AsyncAPIResponse:
        if request_id:
            headers = {**headers, REQUEST_ID_HEADER: request_id}
        with _sdk_errors(self.base_url):
            return await self._sdk.post(
                path, body=payload, cast_to=openai.AsyncAPIResponse[bytes], options={"headers": headers}
            )

    async def aclose(self) -> None:
        await self._sdk.close()


class _SdkStream:
    """An `openai.AsyncAPIResponse` in the shape AsyncChatStream reads (`headers`, `aiter_lines`, `aclose`)."""

    def __init__(self, response: openai.AsyncAPIResponse):
        self._response = response
        self.headers = response.headers

    def aiter_lines(self) -> AsyncIterator[str]:
        return self._response.iter_lines()

    async def aclose(self) -> None:
        await self._response.close()


@contextmanager
def _aiohttp_errors(base_url: str) -> Iterator[None]:
    """`connect`: the request never reached the upstream; `timeout`: no answer (or next chunk) in time;
    `disconnected`: the connection broke while the upstream had the request."""
    try:
        yield
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
        raise _unavailable(base_url, "connect", error) from None
    except (TimeoutError, aiohttp.SocketTimeoutError) as error:
        raise _unavailable(base_url, "timeout", error) from None
    except (aiohttp.ClientError, ValueError) as error:  # ValueError: a line longer than the read buffer
        raise _unavailable(base_url, "disconnected", error) from None


def _unavailable(base_url: str, reason: str, error: BaseException) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{base_url}: {reason}: {type(error).__name__}: {error}", reason=reason)


@contextmanager
def _sdk_errors(base_url: str) -> Iterator[None]:
    try:
        yield
    except openai.APIConnectionError as error:  # APITimeoutError included
        raise _sdk_transport_failure(base_url, error) from None
    except openai.APIStatusError as error:
        raise _status_error(
            base_url, error.status_code, error.body, error.message, error.response.headers.get("retry-after")
        ) from None


def _sdk_transport_failure(base_url: str, error: openai.APIConnectionError) -> UpstreamUnavailable:
    """Sorted like the other clients' failures. The SDK has one error for "never connected" and "lost the
    connection"; its cause, an exception of the SDK's HTTP library, tells them apart by its class's name."""
    cause = error.__cause__ or error
    causes = {cls.__name__ for cls in type(cause).__mro__}
    if causes & {"ConnectError", "ConnectTimeout"}:
        reason = "connect"
    elif isinstance(error, openai.APITimeoutError):
        reason = "timeout"
    else:
        reason = "disconnected"
    return _unavailable(base_url, reason, cause)
