"""Server-sent events as OpenAI streams them: `data: <json>\\n\\n`, ending in `data: [DONE]`."""

from __future__ import annotations

import json
from typing import Iterable, Iterator

DONE = "[DONE]"


def encode_event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def iter_event_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the `data:` payloads of an SSE stream given line by line (comments and blanks skipped)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()
