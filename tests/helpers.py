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
        self.model_url = f"http://{platform.settings.host}:{platform.settings.model_port}"
        self.embedding_url = f"http://{platform.settings.host}:{platform.settings.embedding_port}"
        self.tenant_urls = {endpoint.name: endpoint.url for endpoint in platform.endpoints}
        self.keys = platform.keys

    def ask(self, tenant: str, timeout: float = 120, **body) -> httpx.Response:
        return httpx.post(self.tenant_urls[tenant] + "/ask", json=body, timeout=timeout)




class TenantDocuments:
    """Tenants' knowledge through the proxies' /documents API, remembering what it added."""

    def __init__(self, platform: RunningPlatform):
        self.platform = platform
        self.added: list[tuple[str, str]] = []  # (tenant, document id)

    def add(self, tenant: str, title: str, text: str) -> dict:
        response = httpx.post(self.platform.tenant_urls[tenant] + "/documents", json={"title": title, "text": text},
                              timeout=300)
        assert response.status_code == 201, response.text
        document = response.json()
        self.added.append((tenant, document["id"]))
        return document

    def search(self, tenant: str, query: str, top_k: int = 3) -> list[dict]:
        response = httpx.post(self.platform.tenant_urls[tenant] + "/documents/search",
                              json={"query": query, "top_k": top_k}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def delete(self, tenant: str, document_id: str) -> httpx.Response:
        return httpx.delete(f"{self.platform.tenant_urls[tenant]}/documents/{document_id}", timeout=60)

    def delete_all(self) -> None:
        for tenant, document_id in self.added:
            self.delete(tenant, document_id)
        self.added.clear()
