"""Small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from flask import Flask
from kubernetes import client, config

import openai_stub
from app import create_app
from app.config import ProxyConfig
from llm_gateway.auth import hash_gateway_key
from tenant_spec import SPEC_FILENAME, TenantSpec, discover_tenant_specs
from tenant_spec.models import DEFAULT_MODEL
from tenant_spec.rate_limits import RateLimits
from tenantctl.cluster.control_plane import LocalControlPlane
from tenantctl.local.platform import LocalPlatform
from tenantctl.processes import ManagedProcess, free_port
from tenantctl.terraform.runner import Terraform
from tenantctl.waiting import wait_for

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


def recorded_chat_usage(row) -> dict:
    """The `usage` the gateway answers a chat completion with: its ledger row's numbers (a UsageRecord)."""
    usage = {
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
    }
    return {**usage, "estimated": True} if row.usage_estimated else usage


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


def stub_backend(port: int, log_dir: Path, *options: str) -> ManagedProcess:
    """The OpenAI stub (openai_stub/): answers instantly (usage in streams only when asked for); `options` e.g.
    `--stream-tokens 20 --token-interval 0.1` for streams of a slow model."""
    return ManagedProcess(
        "stub", openai_stub.command(port, *options), f"http://127.0.0.1:{port}/health", log_dir / "stub.log"
    )


class InProcessServer:
    """An ASGI app on uvicorn, on a daemon thread of this process, on a free loopback port."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, name="in-process-server", daemon=True)

    def start(self) -> str:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="the in-process server to listen")
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def proxy_app(gateway_url: str, **settings: Any) -> Flask:
    """The tenant proxy from its app factory (the fast layer), in front of `gateway_url` (e.g. the stub)."""
    config = {
        "tenant": "globex",
        "system_prompt": "You are the assistant of Globex.",
        "gateway_url": gateway_url + "/v1",
        "gateway_key": "gk-test",
        **settings,
    }
    return create_app(ProxyConfig.model_validate(config))


def stub_requests(stub_url: str, path: str = "/v1/chat/completions") -> list[dict]:
    """The bodies of the latest requests the stub received at `path`, oldest first."""
    return [entry["body"] for entry in httpx.get(stub_url + "/seen").json() if entry["path"] == path]


STUB_MODEL = openai_stub.MODEL  # the catalogue's chat model the stub serves in gateway tests
STUB_EMBEDDING_MODEL = openai_stub.EMBEDDING_MODEL


def tenant_route(name: str, key: str, **fields: Any) -> dict:
    """A gateway config tenant allowed the stub's model."""
    return {"name": name, "models": {"allowed": [STUB_MODEL]}, "key_sha256": [hash_gateway_key(key)], **fields}


def controlled_gateway_config(
    tenants: list[dict], backend_url: str, redis_url: str | None = None, ledger_url: str | None = None, **extra: Any
) -> dict:
    """A gateway config with rate limits in `redis_url` and the ledger at `ledger_url` (when given)."""
    config: dict = {"tenants": tenants, **openai_stub.stub_models(backend_url), **extra}
    if redis_url:
        config["limits"] = {"redis_url": redis_url, **config.get("limits", {})}
    if ledger_url:
        config["ledger"] = {"url": ledger_url}
    return config


def chat(
    gateway_url: str, key: str | None, timeout: float = 60, headers: dict | None = None, **body: Any
) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    body.setdefault("max_tokens", 5)
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        gateway_url + "/v1/chat/completions", json=body, headers={**auth, **(headers or {})}, timeout=timeout
    )


def streamed_chunks(response: httpx.Response) -> list[dict | str]:
    """The SSE data payloads of a streamed answer (JSON decoded, except `[DONE]`)."""
    return [
        line[6:] if line == "data: [DONE]" else json.loads(line[6:])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def away_from_a_minute_boundary(margin: float = 8.0) -> None:
    """Rate limit windows are fixed minutes: wait until the current one has `margin` s left (the next one
    starts if this one ends sooner), so a short burst of requests falls in one window."""
    wait_for(lambda: 60 - time.time() % 60 >= margin, timeout=margin + 5, what="a rate-limit minute with time left")


# The shared test platforms' tenant controls are set here, on purpose, not taken from the example specs: rate
# and concurrency limits no sequence of tests reaches (so no answer depends on test order; a test about a limit
# starts a gateway of its own with the limit it needs), no token budget, and the dollar budgets the dashboard
# tests read back.
TEST_BUDGETS_USD = {"acme-corp": 50.0, "closed-ai": 20.0}
TEST_RATE_LIMITS = RateLimits(requests_per_minute=100_000, requests_per_hour=1_000_000, tokens_per_minute=100_000_000)


def specs_on_free_ports() -> list[TenantSpec]:
    return [
        spec.model_copy(
            update={
                "local_port": free_port(),
                "monthly_budget_usd": TEST_BUDGETS_USD[spec.name],
                "rate_limits": TEST_RATE_LIMITS,
                "monthly_token_budget": None,
                "max_concurrent_requests": None,
            }
        )
        for spec in discover_tenant_specs(TENANTS_DIR)
    ]


class RunningPlatform:
    def __init__(self, platform: LocalPlatform):
        self.platform = platform
        self.gateway_url = platform.gateway_url
        self.model_url = platform.model_urls(DEFAULT_MODEL)[0]
        self.embedding_url = platform.model_urls(platform.catalogue.embedding_model)[0]
        self.prometheus_url = platform.prometheus_url
        self.tenant_urls = {endpoint.name: endpoint.url for endpoint in platform.endpoints}
        self.keys = platform.keys
        self.admin_keys = platform.admin_keys
        self.model_api_key = platform.model_api_key

    def admin_headers(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_keys[tenant]}"}

    def ask(self, tenant: str, timeout: float = 120, **body) -> httpx.Response:
        return httpx.post(self.tenant_urls[tenant] + "/ask", json=body, timeout=timeout)


def prometheus_query(prometheus_url: str, expr: str, at: float | None = None) -> list[dict]:
    """An instant query through Prometheus's HTTP API; its result vector (fails on a query error)."""
    params = {"query": expr} if at is None else {"query": expr, "time": at}
    document = httpx.get(prometheus_url + "/api/v1/query", params=params, timeout=30).json()
    assert document["status"] == "success", f"{expr}: {document}"
    return document["data"]["result"]


# -- Kubernetes and Terraform ---------------------------------------------------------------------


@dataclass
class ControlPlane:
    plane: LocalControlPlane

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def api_url(self) -> str:
        return self.plane.api_url

    def api_client(self, impersonate: str | None = None, group: str | None = None) -> client.ApiClient:
        """A kubernetes ApiClient as the admin, or impersonating `impersonate` (and one `group`)."""
        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        if impersonate:
            api.set_default_header("Impersonate-User", impersonate)
        if group:
            api.set_default_header("Impersonate-Group", group)
        return api


@dataclass
class ClusterPlatform:
    """The platform and tenants applied with Terraform to the test control plane."""

    control_plane: ControlPlane
    repo: Path
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def tenants_dir(self) -> Path:
        return self.repo / "tenants"

    @property
    def platform_dir(self) -> Path:
        return self.repo / "shared-infrastructure" / "platform"

    def variables(self) -> dict[str, Any]:
        return {"kubeconfig_path": str(self.control_plane.kubeconfig), "wait_for_rollout": False}

    def terraform(self, root: Path) -> Terraform:
        return Terraform(root, variables=self.variables())

    @contextmanager
    def spec_changed(self, tenant: str, **changes: Any) -> Iterator[Path]:
        """The tenant's spec with `changes` for the duration of the block (the spec is its root's only input)."""
        spec_file = self.tenants_dir / tenant / SPEC_FILENAME
        original = spec_file.read_text()
        spec_file.write_text(json.dumps({**json.loads(original), **changes}))
        try:
            yield spec_file
        finally:
            spec_file.write_text(original)

    def apply_platform(self) -> None:
        self._apply("platform", self.platform_dir)

    def apply_tenant(self, name: str) -> None:
        self._apply(name, self.tenants_dir / name)

    def _apply(self, name: str, root: Path) -> None:
        terraform = self.terraform(root)
        terraform.init()
        terraform.apply()
        self.outputs[name] = terraform.output()

    def gateway_key(self, tenant: str) -> str:
        """The tenant's gateway key, read (as the cluster admin) from the Secret Terraform generated."""
        core = client.CoreV1Api(self.control_plane.api_client())
        secret = core.read_namespaced_secret("tenant-proxy-gateway-key", tenant)
        return base64.b64decode(secret.data["key"]).decode()


class TenantDocuments:
    """Tenants' knowledge through the proxies' /documents API, remembering what it added."""

    def __init__(self, platform: RunningPlatform):
        self.platform = platform
        self.added: list[tuple[str, str]] = []  # (tenant, document id)

    def add(self, tenant: str, title: str, text: str) -> dict:
        response = httpx.post(
            self.platform.tenant_urls[tenant] + "/documents",
            json={"title": title, "text": text},
            headers=self.platform.admin_headers(tenant),
            timeout=300,
        )
        assert response.status_code == 201, response.text
        document = response.json()
        self.added.append((tenant, document["id"]))
        return document

    def search(self, tenant: str, query: str, top_k: int = 3) -> list[dict]:
        response = httpx.post(
            self.platform.tenant_urls[tenant] + "/documents/search", json={"query": query, "top_k": top_k}, timeout=60
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def delete(self, tenant: str, document_id: str) -> httpx.Response:
        return httpx.delete(
            f"{self.platform.tenant_urls[tenant]}/documents/{document_id}",
            headers=self.platform.admin_headers(tenant),
            timeout=60,
        )

    def delete_all(self) -> None:
        for tenant, document_id in self.added:
            self.delete(tenant, document_id)
        self.added.clear()
