"""The local Prometheus's configuration: what it scrapes, which alert rules it evaluates and the
Alertmanager it sends alerts to.

Scrape jobs add no `tenant` label: every tenant series carries the `tenant` label its
service sets, so dashboards and alert rules work the same on a cluster, where the jobs
are named differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dashboards import ALERT_RULES_FILE


@dataclass(frozen=True)
class ScrapeTargets:
    """Base URLs (scheme://host:port) of what to scrape at `/metrics`."""

    gateway: str
    tenant_proxies: list[str]
    model_servers: list[str] = field(default_factory=list)
    tenantctl: str | None = None  # local mode's own metrics (child restarts)


def prometheus_config(
    targets: ScrapeTargets,
    scrape_interval: str = "15s",
    alertmanager: str | None = None,
    rule_file: Path = ALERT_RULES_FILE,
) -> dict:
    """`alertmanager`: base URL of the Alertmanager to send alerts to (None: alerts stay in Prometheus)."""
    jobs = [
        *_jobs("llm-gateway", [targets.gateway]),
        *_jobs("tenant-proxy", targets.tenant_proxies),
        *_jobs("model-server", targets.model_servers),
        *_jobs("tenantctl", [targets.tenantctl] if targets.tenantctl else []),
    ]
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(rule_file)],
        "scrape_configs": jobs,
    }
    if alertmanager is not None:
        parts = urlsplit(alertmanager)
        alertmanagers = [{"scheme": parts.scheme, "static_configs": [{"targets": [parts.netloc]}]}]
        config["alerting"] = {"alertmanagers": alertmanagers}
    return config


def _jobs(name: str, urls: list[str]) -> list[dict]:
    """One job per URL scheme (a job has one scheme), named `name` for plain HTTP."""
    by_scheme: dict[str, list[str]] = {}
    for url in urls:
        parts = urlsplit(url)
        by_scheme.setdefault(parts.scheme, []).append(parts.netloc)
    return [
        {
            "job_name": name if scheme == "http" else f"{name}-{scheme}",
            "scheme": scheme,
            "static_configs": [{"targets": hosts}],
        }
        for scheme, hosts in by_scheme.items()
    ]
