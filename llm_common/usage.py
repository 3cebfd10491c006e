"""Token counts: read from an OpenAI `usage` object, or estimated when a backend reports none."""

from __future__ import annotations

import json
from collections.abc import Iterator

TOKEN_KINDS = ("prompt", "completion")


def token_counts(usage: object) -> Iterator[tuple[str, int]]:
    """(kind, count) for each positive prompt/completion count; nothing for absent or odd usage."""
    if not isinstance(usage, dict):
        return
    for kind in TOKEN_KINDS:
        count = usage.get(f"{kind}_tokens")
        if isinstance(count, int) and count > 0:
            yield kind, count


def is_usage_only(chunk: object) -> bool:
    """A stream's closing usage chunk (`choices` empty), which is sent only to callers who asked for it."""
    return isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict) and not chunk.get("choices")


# A backend that reports no usage (some do not in streams) is counted by the gateway itself:
# completion tokens as the number of content chunks (vLLM, llama.cpp and OpenAI send about one
# token per chunk), prompt tokens estimated from the text at about 4 characters per token
# (OpenAI's rule of thumb for English) plus a few tokens of chat-template overhead per message.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_request_prompt_tokens(payload: dict) -> int:
    """A rough token count of everything a chat request puts in the prompt: each message's text,
    name, tool calls (function name and arguments), and the tool definitions (as JSON)."""
    messages = payload.get("messages")
    total = 0
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            texts = [*_message_texts(message), *_message_extras(message)]
            total += TOKENS_PER_MESSAGE + sum(estimate_text_tokens(text) for text in texts)
    tools = payload.get("tools")
    if tools:
        total += estimate_text_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def estimate_embedding_tokens(inputs: object) -> int:
    """A rough token count of an embeddings `input` (a string or a list of strings)."""
    texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
    return sum(estimate_text_tokens(text) for text in texts if isinstance(text, str))


def _message_texts(message: dict) -> list[str]:
    """The text of one chat message: its string content, or the text parts of a multi-part content."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return []


def _message_extras(message: dict) -> list[str]:
    texts = [message[key] for key in ("name", "refusal") if isinstance(message.get(key), str)]
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts += [value for value in (function.get("name"), function.get("arguments")) if isinstance(value, str)]
    return texts
