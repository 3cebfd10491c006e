"""Where alerts go: each tenant's receivers (its spec's `alerts`) and the platform's, as one
Alertmanager configuration.

One renderer for both modes: local mode (`tenantctl up`) renders it from the tenant specs, the
cluster's config-sync sidecar (alert_config_sync/sync.py) from the TenantRoutes each tenant
apply writes, so a tenant onboarded later gets its route without a platform apply.

Routing cannot cross tenants. A tenant's route matches `tenant="<name>"`, where the name is the
route's own (its spec's `name`, the TenantRoute's object name, a DNS label): nothing in a tenant's
`alerts` is a matcher, so no spec can claim another tenant's alerts. On a cluster the `tenant`
label of a tenant's series is its namespace, set by Prometheus (shared-infrastructure/platform/
prometheus.tf), never by the tenant's Pods. The platform's receivers hear every alert (or only
the platform's own, with `receive_tenant_alerts: false`).

Inhibition: while a gateway backend is down (`LLMGatewayBackendDown{backend}`), the error-ratio and
latency alerts of the tenants whose models it serves (each self-hosted model is its own backend,
OpenAI's models share `openai`) are held back:
the platform hears the cause, the tenants do not get the symptoms.

Secrets are referenced, never written into the configuration: a webhook's bearer token is read by
Alertmanager from a file (`credentials_file`), which the caller provides per tenant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenant_spec.alerts import EMAIL_ADDRESS, AlertReceivers, TenantAlerts

SEVERITIES = ("warning", "critical")  # the shipped rules' severities, least to most urgent
TENANT_SYMPTOM_ALERTS = ("TenantHighErrorRatio", "TenantLatencySLOFastBurn", "TenantLatencySLOSlowBurn")
BACKEND_DOWN_ALERT = "LLMGatewayBackendDown"
PLATFORM_RECEIVER = "platform"
TENANT_RECEIVER_PREFIX = "tenant-"
DURATION = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d|w)$")
TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


class AlertRoutingError(ValueError):
    """Alert routing cannot be rendered as asked (e.g. a token a receiver needs is missing)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Smtp(_Strict):
    smarthost: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$", description="host:port of the SMTP relay.")
    sender: str = Field(description="The From address.")
    auth_username: str | None = None
    auth_password_file: str | None = Field(None, description="File holding the SMTP password (a mounted Secret).")
    require_tls: bool = True

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not EMAIL_ADDRESS.match(value):
            raise ValueError("must be a plain e-mail address")
        return value


class PlatformAlerts(AlertReceivers):
    """The platform's receivers and the routing's timings (platform root variable / local settings)."""

    webhook_token_file: str | None = Field(None, description="File holding a bearer token for the platform webhooks.")
    smtp: Smtp | None = None
    receive_tenant_alerts: bool = Field(True, description="Whether the platform also hears every tenant's alerts.")
    group_wait: str = Field("30s", pattern=DURATION.pattern)
    group_interval: str = Field("5m", pattern=DURATION.pattern)
    repeat_interval: str = Field("4h", pattern=DURATION.pattern)
    resolve_timeout: str = Field("5m", pattern=DURATION.pattern)


@dataclass(frozen=True)
class AlertTenant:
    """What routing needs of one tenant: its name, the backends its models are served by (for inhibition,
    llm_common.catalogue.tenant_backends) and its `alerts`."""

    name: str
    backends: frozenset[str]
    alerts: TenantAlerts | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.backends, frozenset):  # a str would pass as a set of its letters
            raise TypeError(f"AlertTenant {self.name}: backends must be a frozenset of backend names")


def tenant_receiver(name: str) -> str:
    return TENANT_RECEIVER_PREFIX + name


def render_alertmanager_config(
    platform: PlatformAlerts, tenants: Iterable[AlertTenant], token_files: Mapping[str, str] | None = None
) -> dict:
    """The alertmanager.yml document. `token_files`: tenant name -> file holding the bearer token its
    `webhook_token_secret` names (required for every tenant that names one)."""
    tenants = sorted(tenants, key=lambda tenant: tenant.name)
    _check_tenants(tenants, platform)
    token_files = token_files or {}
    routed = [tenant for tenant in tenants if tenant.alerts is not None and tenant.alerts.has_receivers]
    config: dict = {
        "global": _global(platform),
        "route": {
            "receiver": PLATFORM_RECEIVER,
            "group_by": ["tenant", "alertname"],
            "group_wait": platform.group_wait,
            "group_interval": platform.group_interval,
            "repeat_interval": platform.repeat_interval,
            "routes": [_platform_route(platform), *(_tenant_route(tenant) for tenant in routed)],
        },
        "inhibit_rules": _inhibit_rules(tenants),
        "receivers": [
            _receiver(PLATFORM_RECEIVER, platform, platform.webhook_token_file),
            *(_receiver(tenant_receiver(t.name), t.alerts, _token_file(t, token_files)) for t in routed),
        ],
    }
    if not config["inhibit_rules"]:
        del config["inhibit_rules"]
    return config


def tenant_problem(tenant: AlertTenant, platform: PlatformAlerts) -> str | None:
    """Why this tenant cannot be routed as it asks (None: it can)."""
    if not TENANT_NAME.match(tenant.name):
        return f"tenant '{tenant.name[:60]}': not a tenant name (a DNS label)"
    if tenant.alerts is not None and tenant.alerts.email and platform.smtp is None:
        return f"tenant '{tenant.name}': alerts.email needs the platform's SMTP relay (smtp)"
    return None


def _check_tenants(tenants: list[AlertTenant], platform: PlatformAlerts) -> None:
    names = [tenant.name for tenant in tenants]
    for tenant in tenants:
        problem = tenant_problem(tenant, platform)
        if problem:
            raise AlertRoutingError(problem)
        if names.count(tenant.name) > 1:
            raise AlertRoutingError(f"tenant '{tenant.name}': listed twice")
    if platform.email and platform.smtp is None:
        raise AlertRoutingError("platform alerts: email needs smtp")


def _global(platform: PlatformAlerts) -> dict:
    settings: dict = {"resolve_timeout": platform.resolve_timeout}
    if platform.smtp is not None:
        smtp = platform.smtp
        settings.update(
            {"smtp_smarthost": smtp.smarthost, "smtp_from": smtp.sender, "smtp_require_tls": smtp.require_tls}
        )
        if smtp.auth_username:
            settings["smtp_auth_username"] = smtp.auth_username
        if smtp.auth_password_file:
            settings["smtp_auth_password_file"] = smtp.auth_password_file
    return settings


def _platform_route(platform: PlatformAlerts) -> dict:
    """First, and `continue`d past: the platform hears what it should, then the tenant routes are tried."""
    route: dict = {"receiver": PLATFORM_RECEIVER, "continue": True}
    if not platform.receive_tenant_alerts:
        route["matchers"] = ['tenant=""']
    return route


def _tenant_route(tenant: AlertTenant) -> dict:
    severities = SEVERITIES[SEVERITIES.index(tenant.alerts.severity_min) :]
    return {
        "receiver": tenant_receiver(tenant.name),
        "matchers": [f'tenant="{tenant.name}"', f'severity=~"{"|".join(severities)}"'],
    }


def _receiver(name: str, receivers: AlertReceivers, token_file: str | None) -> dict:
    receiver: dict = {"name": name}
    if receivers.webhook_urls:
        http_config = {"authorization": {"type": "Bearer", "credentials_file": token_file}} if token_file else {}
        receiver["webhook_configs"] = [
            {
                "url": url,
                "send_resolved": True,
                "max_alerts": 50,
                **({"http_config": http_config} if http_config else {}),
            }
            for url in receivers.webhook_urls
        ]
    if receivers.email:
        receiver["email_configs"] = [{"to": address, "send_resolved": True} for address in receivers.email]
    return receiver


def _token_file(tenant: AlertTenant, token_files: Mapping[str, str]) -> str | None:
    if tenant.alerts.webhook_token_secret is None:
        return None
    try:
        return token_files[tenant.name]
    except KeyError:
        raise AlertRoutingError(
            f"tenant '{tenant.name}': the token of alerts.webhook_token_secret "
            f"'{tenant.alerts.webhook_token_secret}' is not available"
        ) from None


def _inhibit_rules(tenants: list[AlertTenant]) -> list[dict]:
    """A backend down silences the symptoms of the tenants routed to it (see module doc)."""
    rules = []
    for backend in sorted({backend for tenant in tenants for backend in tenant.backends}):
        affected = [tenant.name for tenant in tenants if backend in tenant.backends]
        if affected:
            rules.append(
                {
                    "source_matchers": [f'alertname="{BACKEND_DOWN_ALERT}"', f'backend="{backend}"'],
                    "target_matchers": [
                        f'alertname=~"{"|".join(TENANT_SYMPTOM_ALERTS)}"',
                        f'tenant=~"{"|".join(affected)}"',
                    ],
                }
            )
    return rules
