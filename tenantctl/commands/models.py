"""`tenantctl models [--cluster]`: the model catalogue, each entry's health, ready replicas and load, and the
tenants that may use it.

Local mode: the catalogue `tenantctl up` runs (`--models FILE` or the default), the tenants' specs, and the
running gateway's /metrics (members up, requests in flight). `--cluster`: the published ModelCatalogue,
the TenantRoutes, each model's Deployment (ready/desired replicas) and the load Prometheus last saw of
the gateways, read through the API server.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client.parser import text_string_to_metric_families

from llm_common.catalogue import CatalogueError, ModelCatalogue
from llm_common.kubernetes import read_model_catalogue, read_tenant_routes
from tenant_spec import discover_tenant_specs
from tenantctl.commands.deploy import PLATFORM_NAMESPACE, resolve_kubeconfig
from tenantctl.local.catalogue import load_local_catalogue
from tenantctl.local.platform import openai_key_configured
from tenantctl.local.state import DEFAULT_RUN_DIR, read_state

PROMETHEUS_SERVICE = "prometheus:9090"
LOAD_QUERY = "sum by (backend) (llm_gateway_pool_member_in_flight_requests)"


@dataclass(frozen=True)
class BackendState:
    """What is known of one backend: members ready and wanted, and requests in flight (None: unknown)."""

    ready: int
    desired: int
    load: float | None


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="the model catalogue: health, ready replicas, load, tenants")
    models.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="local mode's (default .run/local)")
    models.add_argument("--cluster", action="store_true", help="the cluster's catalogue instead of local mode's")
    models.add_argument("--kubeconfig", type=Path, help="with --cluster: default $KUBECONFIG, a `tenantctl cluster up`")
    models.set_defaults(handler=command_models)


def command_models(args: argparse.Namespace) -> int:
    if args.cluster:
        catalogue, tenants, states = cluster_models(args.kubeconfig)
    else:
        catalogue = load_local_catalogue(args.models, openai_key_configured(os.environ))
        tenants = {spec.name: spec.models.allowed for spec in discover_tenant_specs(args.tenants_dir)}
        states = local_states(catalogue, (read_state(args.run_dir) or {}).get("gateway_url"))
    print(models_table(catalogue, tenants, states))
    return 0


def local_states(catalogue: ModelCatalogue, gateway_url: str | None) -> dict[str, BackendState] | None:
    """Each backend's members (usable / all) and requests in flight, from the gateway's /metrics; None when it
    does not answer (the platform is not running)."""
    if gateway_url is None:
        return None
    try:
        text = httpx.get(f"{gateway_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    counts: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            backend = sample.labels.get("backend")
            if backend is None:
                continue
            count = counts.setdefault(backend, [0, 0, 0.0])
            if sample.name == "llm_gateway_pool_member_up":
                count[0] += sample.value
                count[1] += 1
            elif sample.name == "llm_gateway_pool_member_in_flight_requests":
                count[2] += sample.value
    return {backend: BackendState(int(up), int(members), load) for backend, (up, members, load) in counts.items()}


def cluster_models(
    kubeconfig: Path | None,
) -> tuple[ModelCatalogue, dict[str, list[str]], dict[str, BackendState]]:
    config_file, _ = resolve_kubeconfig(kubeconfig)
    api = kube_config.new_client_from_config(config_file=str(config_file) if config_file else None)
    custom = client.CustomObjectsApi(api)
    catalogue = read_model_catalogue(custom, PLATFORM_NAMESPACE)
    if catalogue is None:
        raise CatalogueError(f"no readable ModelCatalogue in {PLATFORM_NAMESPACE}: apply the platform root first")
    tenants = {route.name: route.models.allowed for route in read_tenant_routes(custom, PLATFORM_NAMESPACE)}
    loads = _prometheus_loads(api)
    apps = client.AppsV1Api(api)
    states = {}
    for name, entry in catalogue.models.items():
        backend = catalogue.backend(name)
        if not entry.self_hosted:
            states[backend] = BackendState(1, 1, loads.get(backend))
            continue
        try:
            deployment = apps.read_namespaced_deployment(f"model-{name}", PLATFORM_NAMESPACE, _request_timeout=10)
            ready, desired = deployment.status.ready_replicas or 0, deployment.spec.replicas or 0
        except client.ApiException:
            ready, desired = 0, entry.replicas
        states[backend] = BackendState(ready, desired, loads.get(backend))
    return catalogue, tenants, states


def _prometheus_loads(api: client.ApiClient) -> dict[str, float]:
    """Requests in flight per backend, as Prometheus last scraped the gateways ({} when it cannot say)."""
    try:
        response = api.call_api(
            f"/api/v1/namespaces/{PLATFORM_NAMESPACE}/services/{PROMETHEUS_SERVICE}/proxy/api/v1/query",
            "GET",
            query_params=[("query", LOAD_QUERY)],
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=10,
        )[0]
        results = json.loads(response.data)["data"]["result"]
        return {row["metric"]["backend"]: float(row["value"][1]) for row in results if "backend" in row["metric"]}
    except (client.ApiException, OSError, ValueError, KeyError, TypeError):
        return {}


def models_table(
    catalogue: ModelCatalogue, tenants: dict[str, list[str]], states: dict[str, BackendState] | None
) -> str:
    """`tenants`: tenant -> the models its spec allows (names or aliases); `states` by backend (None: unknown)."""
    header = ("MODEL", "ENGINE", "KIND", "ALIASES", "ENABLED", "HEALTH", "READY", "LOAD", "TENANTS")
    rows = [header]
    for name, entry in catalogue.models.items():
        state = (states or {}).get(catalogue.backend(name))
        if entry.kind == "embedding":
            users = ["(all)"]
        else:
            users = [tenant for tenant, allowed in tenants.items() if name in catalogue.entitled(allowed)]
        rows.append(
            (
                name,
                entry.engine,
                entry.kind,
                ",".join(entry.aliases) or "-",
                "yes" if entry.enabled else "no",
                _health(state, entry.enabled),
                "-" if state is None else f"{state.ready}/{state.desired}",
                "-" if state is None or state.load is None else f"{state.load:g}",
                ",".join(sorted(users)) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _health(state: BackendState | None, enabled: bool) -> str:
    if state is None or not enabled:
        return "-"
    return "up" if state.ready else "down"
