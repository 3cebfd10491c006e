"""The spec's `alerts`: where a tenant's own alerts go (the platform renders Alertmanager's routes
from them: alert_config_sync/routing.py)."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Kubernetes Secret names (DNS-1123 subdomain), also safe as a file name.
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# One address, no display name: nothing that could add a header or a second recipient.
EMAIL_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+$"
)
MAX_URL_LENGTH = 2048


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host and no credentials in it (tokens are referenced, see module doc)."""
    if len(url) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError(f"must be a URL of at most {MAX_URL_LENGTH} characters without spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise ValueError(f"is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: name the bearer token instead (a spec's webhook_token_secret)")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AlertReceivers(_Strict):
    """Where alerts go: a tenant's own (`TenantAlerts`) or the platform's."""

    webhook_urls: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Alertmanager webhooks (http/https; the JSON body of Alertmanager's webhook receiver).",
    )
    email: list[str] = Field(
        default_factory=list, max_length=10, description="Addresses mailed through the platform's SMTP relay."
    )

    @field_validator("webhook_urls")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        return [check_webhook_url(value) for value in values]

    @field_validator("email")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) > 254 or not EMAIL_ADDRESS.match(value):
                raise ValueError(f"'{value[:80]}' is not a plain e-mail address (name@example.com)")
        return values


class TenantAlerts(AlertReceivers):
    """A tenant spec's `alerts`: where the tenant's own alerts go. It names receivers only, never
    which alerts: the tenant's route always matches its own name."""

    webhook_token_secret: str | None = Field(
        None,
        description="Secret holding a bearer token sent to the webhooks (key `token`): on a cluster in "
        "the tenant's namespace, in local mode <run dir>/alert-secrets/<tenant>/<name>.",
    )
    severity_min: Literal["warning", "critical"] = Field(
        "warning", description="The least severe alert sent to the tenant's receivers."
    )

    @field_validator("webhook_token_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and not SECRET_NAME.match(value):
            raise ValueError("must be a Kubernetes Secret name (lower-case letters, digits, '-' and '.')")
        return value

    @property
    def has_receivers(self) -> bool:
        return bool(self.webhook_urls or self.email)
