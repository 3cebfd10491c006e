"""Server-sent events as OpenAI streams them: `data: <json>\\n\\n`, ending in `data: [DONE]` (chat completions),
or `event: <type>` before each `data:` (the Responses API, which sends no `[DONE]`).

Both services relay an upstream's stream to their caller the same way (`relay_events` for the
tenant proxy's threads, `relay_events_async` for the gateway's event loop): each upstream data
payload is passed on as it arrives (or dropped, when `observe` says so), the stream ends with
`[DONE]`, and a stream that breaks after bytes were sent ends with an in-band error event, since
the status line is long gone. Answers carry `STREAM_HEADERS`, so no proxy in between buffers them.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

DONE = "[DONE]"
STREAM_MEDIA_TYPE = "text/event-stream"
# no-cache: never stored; X-Accel-Buffering: nginx (and ingress-nginx) pass each event on at once.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def encode_named_event(payload: dict) -> bytes:
    """An event named by its payload's `type`, as the Responses API streams them: `event: <type>` + `data:`."""
    return f"event: {payload['type']}\n".encode() + encode_event(payload)


def iter_event_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the `data:` payloads of an SSE stream given line by line (comments and blanks skipped)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


async def aiter_event_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """`iter_event_data` for an asynchronous stream of lines."""
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


@dataclass
class RelayHooks:
    """What a relay does beside passing events on.

    `observe(data)` sees each payload and returns it (or None to drop it); `first()` is called at the
    first payload; `finished(status)` once, with `ok` or `stream_broken`, before the final event;
    `broken(error)` returns the in-band error event's body when the upstream broke off. In the
    asynchronous relay `finished` may be a coroutine function (the gateway writes its ledger row there).
    """

    broken: Callable[[Exception], dict]
    observe: Callable[[str], str | None] = lambda data: data
    first: Callable[[], None] = lambda: None
    finished: Callable[[str], object] = lambda status: None


def relay_events(upstream: Iterable[str], hooks: RelayHooks) -> Iterator[bytes]:
    """Relay upstream data payloads as SSE bytes (see the module docstring)."""
    first = True
    try:
        for data in upstream:
            if first:
                hooks.first()
                first = False
            if data == DONE:
                break
            passed = hooks.observe(data)
            if passed is not None:
                yield encode_event(passed)
    except Exception as error:  # the upstream broke after bytes were sent: tell the caller in-band
        hooks.finished("stream_broken")
        yield encode_event(hooks.broken(error))
        return
    hooks.finished("ok")
    yield encode_event(DONE)


async def relay_events_async(upstream: AsyncIterable[str], hooks: RelayHooks) -> AsyncIterator[bytes]:
    """`relay_events` for an asynchronous upstream (the gateway)."""
    first = True
    try:
        async for data in upstream:
            if first:
                hooks.first()
                first = False
            if data == DONE:
                break
            passed = hooks.observe(data)
            if passed is not None:
                yield encode_event(passed)
    except Exception as error:
        await _maybe_await(hooks.finished("stream_broken"))
        yield encode_event(hooks.broken(error))
        return
    await _maybe_await(hooks.finished("ok"))
    yield encode_event(DONE)


async def _maybe_await(result: object) -> None:
    if inspect.isawaitable(result):
        await result
