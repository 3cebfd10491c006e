"""Guardrails: what a tenant's proxy refuses before anything reaches the gateway.

From the tenant spec's `guardrails`:

- `sensitive_patterns`: regular expressions for data that must not leave the tenant (card
  numbers, national ids, keys, ...). A match refuses the request, naming the pattern.
- `refusal_rules`: `contains` (a case-insensitive substring) or `regex`, each with the
  `reason` shown to the user.
- `blocked_topics`: a topic and its keywords (case-insensitive, whole words).

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
worker backtrack for ever. RE2 has no back-references or look-arounds, so a spec using them is
refused at validation, as Terraform (Go's regexp, the same syntax) refuses it.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Iterable, Iterator

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.normalization import normalize_for_matching
from llm_common.errors import Refusal

GUARDRAIL_REASONS = ("sensitive_prompt", "refusal_rule", "blocked_topic")  # the refusals' `reason` (and `code`)
# Values under these keys are message structure, not text a model reads.
STRUCTURAL_KEYS = frozenset({"role", "type", "id", "tool_call_id", "detail"})
# Text parts of one message are also checked joined: as vLLM's chat templates join them, and without a separator.
PART_SEPARATORS = ("", "\n")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _re2(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False  # a refused spec pattern is reported once, by us
    return re2.compile(pattern, options)


def _compiled(pattern: str) -> str:
    try:
        _re2(pattern)
    except re2.error as error:
        detail = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ValueError(f"not a valid RE2 regular expression ({detail}); guardrail patterns run on a "
                         "linear-time engine: no back-references, no look-arounds") from None
    return pattern


class SensitivePattern(_Rule):
    name: str = Field(description="Shown in the refusal, e.g. 'credit card number'.", min_length=1, max_length=100)
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return _compiled(value)

    @cached_property
    def compiled(self) -> re2._Regexp:
        return _re2(self.pattern)


class RefusalRule(_Rule):
    contains: str | None = Field(None, min_length=1, max_length=1000)
    regex: str | None = Field(None, min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=500, description="Shown to the user when the rule refuses.")

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return value if value is None else _compiled(value)

    @model_validator(mode="after")
    def _one_matcher(self) -> "RefusalRule":
        if (self.contains is None) == (self.regex is None):
            raise ValueError("set exactly one of 'contains' and 'regex'")
        return self

    @cached_property
    def compiled(self) -> re2._Regexp:
        if self.regex is not None:
            return _re2(self.regex)
        return _re2("(?i)" + re2.escape(normalize_for_matching(self.contains)))


class BlockedTopic(_Rule):
    topic: str = Field(min_length=1, max_length=100)
    keywords: list[str] = Field(min_length=1, max_length=100)

    @field_validator("keywords")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not value.strip() for value in values):
            raise ValueError("keywords must not be blank")
        return values

    @cached_property
    def compiled(self) -> re2._Regexp:
        """Any keyword as a whole word: not preceded or followed by a letter or digit of any script."""
        keywords = "|".join(re2.escape(normalize_for_matching(k.strip())) for k in self.keywords)
        return _re2(r"(?i)(?:^|[^\pL\pN_])(?:" + keywords + r")(?:$|[^\pL\pN_])")


class Guardrails(_Rule):
    sensitive_patterns: list[SensitivePattern] = Field(default_factory=list, max_length=100)
    refusal_rules: list[RefusalRule] = Field(default_factory=list, max_length=100)
    blocked_topics: list[BlockedTopic] = Field(default_factory=list, max_length=100)

    def check(self, messages: list[dict], tools: object = None, instructions: str | None = None) -> None:
        """Raise a Refusal if anything the caller sent breaks a rule (system messages are the tenant's own;
        the caller's `instructions`, which go below the tenant's prompt, are checked)."""
        if not (self.sensitive_patterns or self.refusal_rules or self.blocked_topics):
            return
        texts = caller_texts(messages, tools)
        for text in texts if instructions is None else itertools.chain([instructions], texts):
            normalized = normalize_for_matching(text)
            self._check_text(normalized)
            if normalized != text:
                self._check_text(text)

    def _check_text(self, text: str) -> None:
        for sensitive in self.sensitive_patterns:
            if sensitive.compiled.search(text):
                raise Refusal(400, f"refused: the message contains sensitive data ({sensitive.name}); "
                                   "remove it and ask again", reason="sensitive_prompt")
        for rule in self.refusal_rules:
            if rule.compiled.search(text):
                raise Refusal(400, f"refused: {rule.reason}", reason="refusal_rule")
        for blocked in self.blocked_topics:
            if blocked.compiled.search(text):
                raise Refusal(400, f"refused: this assistant does not discuss {blocked.topic}",
                              reason="blocked_topic")


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
