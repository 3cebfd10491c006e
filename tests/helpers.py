"""Small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tenantctl.local import LocalPlatform
from tenantctl.processes import free_port
from tenantctl.spec import TenantSpec, discover_tenant_specs

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANTS_DIR = REPO_ROOT / "tenants"


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (used to prove nothing was left running)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def metric_value(metrics_text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in series for key, val in labels.items()):
            total += float(value)
    return total


def specs_on_free_ports() -> list[TenantSpec]:
    return [spec.model_copy(update={"local_port": free_port()}) for spec in discover_tenant_specs(TENANTS_DIR)]


class RunningPlatform:
    def __init__(self, platform: LocalPlatform):
        self.platform = platform
        self.gateway_url = platform.gateway_url
        self.model_url = platform.model_url
        self.prometheus_url = platform.prometheus_url
        self.tenant_urls = {endpoint.name: endpoint.url for endpoint in platform.endpoints}
        self.keys = platform.keys

    def ask(self, tenant: str, timeout: float = 120, **body) -> httpx.Response:
        return httpx.post(self.tenant_urls[tenant] + "/ask", json=body, timeout=timeout)




def prometheus_query(prometheus_url: str, expr: str, at: float | None = None) -> list[dict]:
    """An instant query through Prometheus's HTTP API; its result vector (fails on a query error)."""
    params = {"query": expr} if at is None else {"query": expr, "time": at}
    document = httpx.get(prometheus_url + "/api/v1/query", params=params, timeout=30).json()
    assert document["status"] == "success", f"{expr}: {document}"
    return document["data"]["result"]
