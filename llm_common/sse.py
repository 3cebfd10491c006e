"""Server-sent events as OpenAI streams them: `data: <json>\\n\\n`, ending in `data: [DONE]` (chat completions),
or `event: <type>` before each `data:` (the Responses API, which sends no `[DONE]`)."""

from __future__ import annotations

import json
from typing import Iterable, Iterator

DONE = "[DONE]"


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
