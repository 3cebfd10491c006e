"""Guardrails: what a tenant's proxy refuses before anything reaches the gateway.

From the tenant spec's `guardrails`:

- `sensitive_patterns`: regular expressions for data that must not leave the tenant (card
  numbers, national ids, keys, ...). A match refuses the request, naming the pattern.
- `refusal_rules`: `contains` (a case-insensitive substring) or `regex`, each with the
  `reason` shown to the user.
- `blocked_topics`: a topic and its keywords (case-insensitive, whole words).

Every caller-written message is checked (the question, the history, OpenAI `messages`),
never the tenant's own system prompt. A refusal is a 400 whose `code` is the kind of rule
(`sensitive_prompt`, `refusal_rule`, `blocked_topic`), counted by that reason in
`tenant_proxy_refusals_total`.

Patterns must be valid both in Python and in RE2 (Terraform checks them with `regex()`):
no look-arounds, no back-references.
"""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_common.errors import Refusal
from llm_common.usage import message_texts

GUARDRAIL_REASONS = ("sensitive_prompt", "refusal_rule", "blocked_topic")  # the refusals' `reason` (and `code`)

class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiled(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


class SensitivePattern(_Rule):
    name: str = Field(description="Shown in the refusal, e.g. 'credit card number'.", min_length=1, max_length=100)
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return _compiled(value)

    @cached_property
    def compiled(self) -> re.Pattern:
        return re.compile(self.pattern)


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
    def compiled(self) -> re.Pattern:
        return re.compile(self.regex) if self.regex is not None else re.compile(re.escape(self.contains), re.I)


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
    def compiled(self) -> re.Pattern:
        return re.compile(r"\b(?:" + "|".join(re.escape(k.strip()) for k in self.keywords) + r")\b", re.I)


class Guardrails(_Rule):
    sensitive_patterns: list[SensitivePattern] = Field(default_factory=list, max_length=100)
    refusal_rules: list[RefusalRule] = Field(default_factory=list, max_length=100)
    blocked_topics: list[BlockedTopic] = Field(default_factory=list, max_length=100)

    def check(self, messages: list[dict]) -> None:
        """Raise a Refusal if any caller message breaks a rule (system messages are the tenant's own)."""
        texts = [text for message in messages if isinstance(message, dict) and message.get("role") != "system"
                 for text in message_texts(message)]
        for text in texts:
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
