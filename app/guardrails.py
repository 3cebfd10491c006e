"""Guardrails: the proxy applies its tenant's `guardrails` (tenant_spec/guardrails.py) before anything
reaches the gateway.

Everything a caller sends is checked, never the tenant's own system prompt: every string of every
caller message (text content and each text part, `name`, tool call names and arguments, tool
results), the text parts of a message joined (a number split across parts is still one number),
the `tools` the caller defines (names, descriptions, parameter schemas), the Responses API's
`instructions` and every embeddings input. Each text is read
after `normalize_for_matching` (NFKC, invisible characters removed, digits and homoglyphs folded:
app/normalization.py), and as sent when that differs. A refusal is a 400 whose `code` is the kind
of rule (`sensitive_prompt`, `refusal_rule`, `blocked_topic`), counted by that reason in
`tenant_proxy_refusals_total`.

Patterns run on RE2 (google-re2), whose matching time is linear in the text: no pattern can make a
worker backtrack for ever.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import re2

from app.normalization import normalize_for_matching
from llm_common.errors import Refusal
from tenant_spec.guardrails import Guardrails, compile_re2

GUARDRAIL_REASONS = ("sensitive_prompt", "refusal_rule", "blocked_topic")  # the refusals' `reason` (and `code`)
# Values under these keys are message structure, not text a model reads.
STRUCTURAL_KEYS = frozenset({"role", "type", "id", "tool_call_id", "detail"})
# Text parts of one message are also checked joined: as vLLM's chat templates join them, and without a separator.
PART_SEPARATORS = ("", "\n")


class GuardrailCheck:
    """A tenant's rules compiled once (per worker), applied to every request."""

    def __init__(self, guardrails: Guardrails):
        self.sensitive = [(rule.name, compile_re2(rule.pattern)) for rule in guardrails.sensitive_patterns]
        self.refusals = [
            (rule.reason, _refusal_matcher(rule.contains, rule.regex)) for rule in guardrails.refusal_rules
        ]
        self.topics = [(topic.topic, _keyword_matcher(topic.keywords)) for topic in guardrails.blocked_topics]

    def check(self, messages: list[dict], tools: object = None, instructions: str | None = None) -> None:
        """Raise a Refusal if anything the caller sent breaks a rule (system messages are the tenant's own;
        the caller's `instructions`, which go below the tenant's prompt, are checked)."""
        if not (self.sensitive or self.refusals or self.topics):
            return
        texts = caller_texts(messages, tools)
        for text in texts if instructions is None else itertools.chain([instructions], texts):
            normalized = normalize_for_matching(text)
            self._check_text(normalized)
            if normalized != text:
                self._check_text(text)

    def _check_text(self, text: str) -> None:
        for name, pattern in self.sensitive:
            if pattern.search(text):
                raise Refusal(
                    400,
                    f"refused: the message contains sensitive data ({name}); remove it and ask again",
                    reason="sensitive_prompt",
                )
        for reason, pattern in self.refusals:
            if pattern.search(text):
                raise Refusal(400, f"refused: {reason}", reason="refusal_rule")
        for topic, pattern in self.topics:
            if pattern.search(text):
                raise Refusal(400, f"refused: this assistant does not discuss {topic}", reason="blocked_topic")


def _refusal_matcher(contains: str | None, regex: str | None) -> re2._Regexp:
    if regex is not None:
        return compile_re2(regex)
    return compile_re2("(?i)" + re2.escape(normalize_for_matching(contains)))


def _keyword_matcher(keywords: list[str]) -> re2._Regexp:
    """Any keyword as a whole word: not preceded or followed by a letter or digit of any script."""
    alternatives = "|".join(re2.escape(normalize_for_matching(keyword.strip())) for keyword in keywords)
    return compile_re2(r"(?i)(?:^|[^\pL\pN_])(?:" + alternatives + r")(?:$|[^\pL\pN_])")


def caller_texts(messages: Iterable[object], tools: object = None) -> Iterator[str]:
    """Every text of the caller's messages and tool definitions a model could read."""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "system":
            continue
        yield from _strings(message)
        content = message.get("content")
        if isinstance(content, list):
            parts = [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
            if len(parts) > 1:
                yield from (separator.join(parts) for separator in PART_SEPARATORS)
    if tools is not None:
        yield from _strings(tools)


def _strings(value: object) -> Iterator[str]:
    """The string leaves of a JSON value, except structural ones (iterative: any nesting depth)."""
    stack: list[tuple[object, object]] = [(value, None)]
    while stack:
        item, key = stack.pop()
        if isinstance(item, str):
            if key not in STRUCTURAL_KEYS:
                yield item
        elif isinstance(item, dict):
            stack.extend((child, child_key) for child_key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, key) for child in item)
