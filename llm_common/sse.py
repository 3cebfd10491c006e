"""Server-sent events as OpenAI streams them: `data: <json>\\n\\n`, ending in `data: [DONE]` (chat completions),
or `event: <type>` before each `data:` (the Responses API, which sends no `[DONE]`).

Both services read an upstream's events with `iter_event_data` (the proxy's threads) or
`aiter_event_data` (the gateway's event loop) and write their own with `encode_event`; streamed
answers carry `STREAM_HEADERS`, so no proxy in between buffers them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

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
