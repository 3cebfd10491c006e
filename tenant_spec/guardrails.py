"""The spec's `guardrails`: what a tenant's proxy refuses before anything reaches the gateway.

- `sensitive_patterns`: regular expressions for data that must not leave the tenant (card
  numbers, national ids, keys, ...). A match refuses the request, naming the pattern.
- `refusal_rules`: `contains` (a case-insensitive substring) or `regex`, each with the
  `reason` shown to the user.
- `blocked_topics`: a topic and its keywords (case-insensitive, whole words).

Patterns are RE2 (google-re2), whose matching time is linear in the text. RE2 has no
back-references or look-arounds, so a spec using them is refused here, as Terraform (Go's
regexp, the same syntax) refuses it. How the proxy applies the rules: app/guardrails.py.
"""

from __future__ import annotations

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def compile_re2(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False  # a refused spec pattern is reported once, by us
    return re2.compile(pattern, options)


def _compiled(pattern: str) -> str:
    try:
        compile_re2(pattern)
    except re2.error as error:
        detail = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ValueError(
            f"not a valid RE2 regular expression ({detail}); guardrail patterns run on a "
            "linear-time engine: no back-references, no look-arounds"
        ) from None
    return pattern


class SensitivePattern(_Rule):
    """Data that must not leave the tenant (card numbers, national ids, keys): a match refuses, naming it."""

    name: str = Field(description="Shown in the refusal, e.g. 'credit card number'.", min_length=1, max_length=100)
    pattern: str = Field(min_length=1, max_length=1000, description="An RE2 regular expression.")

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return _compiled(value)


class RefusalRule(_Rule):
    """A substring (`contains`) or a pattern (`regex`), exactly one, refused with `reason`."""

    contains: str | None = Field(None, min_length=1, max_length=1000, description="A case-insensitive substring.")
    regex: str | None = Field(None, min_length=1, max_length=1000, description="An RE2 regular expression.")
    reason: str = Field(min_length=1, max_length=500, description="Shown to the user when the rule refuses.")

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return value if value is None else _compiled(value)

    @model_validator(mode="after")
    def _one_matcher(self) -> RefusalRule:
        if (self.contains is None) == (self.regex is None):
            raise ValueError("set exactly one of 'contains' and 'regex'")
        return self


class BlockedTopic(_Rule):
    """A topic the assistant does not discuss, recognised by its keywords."""

    topic: str = Field(min_length=1, max_length=100, description="Named in the refusal.")
    keywords: list[str] = Field(min_length=1, max_length=100, description="Whole words, case-insensitive.")

    @field_validator("keywords")
    @classmethod
    def _not_blank(cls, values: list[str]) -> list[str]:
        if any(not value.strip() for value in values):
            raise ValueError("keywords must not be blank")
        return values


class Guardrails(_Rule):
    """Checked by the proxy on everything a caller sends (never the tenant's own prompt); see app/guardrails.py."""

    sensitive_patterns: list[SensitivePattern] = Field(
        default_factory=list, max_length=100, description="Data that must not leave the tenant; a match refuses."
    )
    refusal_rules: list[RefusalRule] = Field(
        default_factory=list, max_length=100, description="Each refuses a match with its own reason."
    )
    blocked_topics: list[BlockedTopic] = Field(
        default_factory=list, max_length=100, description="Topics the assistant does not discuss."
    )
