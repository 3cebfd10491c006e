"""`tenantctl status <tenant>`: what the tenant has on the cluster, read with the kubernetes client.

Quota usage (from the ResourceQuota's status, filled by the controller manager), the proxy
Deployment's replicas, Pods by phase, and a count of every other object the tenant module creates.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tenantctl.commands.deploy import resolve_kubeconfig

PROXY_DEPLOYMENT = "tenant-proxy"


@dataclass
class TenantStatus:
    name: str
    exists: bool
    quota: dict[str, tuple[str, str]] = field(default_factory=dict)  # resource -> (used, hard)
    proxy_replicas: tuple[int, int] | None = None  # (ready, desired)
    pods: dict[str, int] = field(default_factory=dict)  # phase -> count
    objects: dict[str, int] = field(default_factory=dict)  # kind -> count


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    return kube_config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None)


def read_tenant_status(api: client.ApiClient, name: str) -> TenantStatus:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.read_namespace(name)
    except ApiException as error:
        if error.status == 404:
            return TenantStatus(name, exists=False)
        raise
    status = TenantStatus(name, exists=True)
    for quota in core.list_namespaced_resource_quota(name).items:
        hard, used = quota.status.hard or {}, quota.status.used or {}
        status.quota.update({resource: (used.get(resource, "?"), limit) for resource, limit in sorted(hard.items())})
    try:
        deployment = apps.read_namespaced_deployment(PROXY_DEPLOYMENT, name)
        status.proxy_replicas = (deployment.status.ready_replicas or 0, deployment.spec.replicas or 0)
    except ApiException as error:
        if error.status != 404:
            raise
    status.pods = dict(Counter(pod.status.phase for pod in core.list_namespaced_pod(name).items))
    status.objects = _object_counts(api, name)
    return status


def _object_counts(api: client.ApiClient, namespace: str) -> dict[str, int]:
    core, rbac, networking = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    listings = {
        "ConfigMap": core.list_namespaced_config_map,
        "Secret": core.list_namespaced_secret,
        "Service": core.list_namespaced_service,
        "ServiceAccount": core.list_namespaced_service_account,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
        "LimitRange": core.list_namespaced_limit_range,
        "Role": rbac.list_namespaced_role,
        "RoleBinding": rbac.list_namespaced_role_binding,
        "NetworkPolicy": networking.list_namespaced_network_policy,
    }
    return {kind: len(list_objects(namespace).items) for kind, list_objects in listings.items()}


def format_status(status: TenantStatus) -> str:
    if not status.exists:
        return f"tenant {status.name}: no namespace on this cluster (apply it with `tenantctl apply {status.name}`)"
    lines = [f"tenant {status.name}: namespace {status.name}"]
    if status.proxy_replicas is not None:
        ready, desired = status.proxy_replicas
        lines.append(f"  proxy: {ready}/{desired} replicas ready")
    lines.append("  pods: " + (", ".join(f"{count} {phase}" for phase, count in sorted(status.pods.items())) or "none"))
    lines.append("  quota:")
    width = max((len(resource) for resource in status.quota), default=0)
    lines += [f"    {resource:<{width}}  {used} / {hard}" for resource, (used, hard) in status.quota.items()]
    lines.append("  objects: " + ", ".join(f"{count} {kind}" for kind, count in status.objects.items()))
    return "\n".join(lines)


def command_status(args: argparse.Namespace) -> int:
    kubeconfig, _ = resolve_kubeconfig(args.kubeconfig)
    status = read_tenant_status(api_client(kubeconfig), args.tenant)
    print(format_status(status))
    return 0 if status.exists else 1


def register(subparsers) -> None:
    status = subparsers.add_parser("status", help="a tenant's quota usage and objects on the cluster")
    status.add_argument("tenant")
    status.add_argument(
        "--kubeconfig", type=Path, help="default: $KUBECONFIG, a `tenantctl cluster up`, ~/.kube/config"
    )
    status.set_defaults(handler=command_status)
