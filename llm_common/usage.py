"""Reading the token counts out of an OpenAI `usage` object."""

from __future__ import annotations

from typing import Iterator

TOKEN_KINDS = ("prompt", "completion")


def token_counts(usage: object) -> Iterator[tuple[str, int]]:
    """(kind, count) for each positive prompt/completion count; nothing for absent or odd usage."""
    if not isinstance(usage, dict):
        return
    for kind in TOKEN_KINDS:
        count = usage.get(f"{kind}_tokens")
        if isinstance(count, int) and count > 0:
            yield kind, count
