"""The platform and tenants applied with Terraform to the local node, as a user applies them, plus what
the node's tests and benchmarks need around it: volumes for the claims, the ingress path (a relay Pod),
probe Pods (in_cluster.py), Prometheus.

The node has no storage provisioner: like a cluster whose admin creates volumes by hand,
`HostPathVolumes` creates hostPath PersistentVolumes (class-less, so class-less claims bind to them; their
directories are writable by the Pods' users) before anything claims one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

from tenant_spec import SPEC_FILENAME
from tenantctl.cluster.in_cluster import IngressRelay, PodRunner
from tenantctl.cluster.local_cluster import LocalCluster
from tenantctl.images.build import terraform_variables
from tenantctl.images.cache import BuiltImage
from tenantctl.terraform.roots import repository_copy
from tenantctl.terraform.runner import Terraform
from tenantctl.waiting import wait_for

VOLUME_SIZE = "1Gi"
NAMESPACE = "monitoring"
INGRESS_NAMESPACE = "ingress-nginx"  # the tenants' default ingress_namespace: the "ingress path"

# Sized for the node (2 CPUs): what every Pod requests, so 30 tenants fit beside the platform. The catalogue
# is the platform root's default (three cpu models, one replica each, plus gpt-4o-mini, disabled without a key):
# each of its model servers requests cpu_model_server's share.
PLATFORM_SIZING = {
    "gateway": {"replicas": 1, "workers": 2, "cpu_request": "100m", "memory_request": "192Mi"},
    "prometheus": {"scrape_interval": "2s", "storage": VOLUME_SIZE, "cpu_request": "100m", "memory_request": "256Mi"},
    "redis": {"cpu_request": "20m", "memory_request": "32Mi"},
    "ledger": {"storage": VOLUME_SIZE, "cpu_request": "50m", "memory_request": "128Mi"},
    "cpu_model_server": {"threads": 2, "cpu_request": "100m", "memory_request": "256Mi"},
    "alertmanager": {"storage": VOLUME_SIZE, "cpu_request": "10m", "memory_request": "32Mi"},
}
TENANT_SIZING = {"cpu_request": "25m", "memory_request": "128Mi"}  # the spec's `proxy` requests


class HostPathVolumes:
    """Class-less hostPath PersistentVolumes under `base_dir`, created ahead of the claims."""

    def __init__(self, core: client.CoreV1Api, base_dir: Path):
        self.core = core
        self.base_dir = base_dir
        self.created: list[str] = []

    def ensure_available(self, count: int) -> None:
        available = [
            pv
            for pv in self.core.list_persistent_volume().items
            if pv.status.phase == "Available" and pv.metadata.name in self.created
        ]
        for _ in range(count - len(available)):
            name = f"local-{uuid.uuid4().hex[:10]}"
            directory = self.base_dir / name
            directory.mkdir(parents=True)
            directory.chmod(0o1777)  # Pods run as their own users (10001, 999, 65534)
            self.core.create_persistent_volume(
                client.V1PersistentVolume(
                    metadata=client.V1ObjectMeta(name=name, labels={"llm-tenants.io/test-volume": "true"}),
                    spec=client.V1PersistentVolumeSpec(
                        capacity={"storage": VOLUME_SIZE},
                        access_modes=["ReadWriteOnce"],
                        persistent_volume_reclaim_policy="Retain",
                        host_path=client.V1HostPathVolumeSource(path=str(directory), type="Directory"),
                    ),
                )
            )
            self.created.append(name)

    def remove_all(self) -> None:
        for name in self.created:
            try:
                self.core.delete_persistent_volume(name)
            except client.ApiException:
                pass
        shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class NodePlatform:
    """The repository copy applied to the node (tenantctl.terraform.roots.repository_copy), its images and
    the API as the cluster admin. Every tenant applied gets `admin_key` as its admin key (to add documents)."""

    kubeconfig: Path
    repo: Path
    built: dict[str, BuiltImage]
    volumes: HostPathVolumes
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    relay: IngressRelay | None = None
    admin_key: str = field(default_factory=lambda: "ak-" + secrets.token_urlsafe(24))

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api())

    @property
    def tenants_dir(self) -> Path:
        return self.repo / "tenants"

    @property
    def platform_image(self) -> str:
        return self.built["platform"].reference

    def platform_variables(self) -> dict[str, Any]:
        variables = {
            "kubeconfig_path": str(self.kubeconfig),
            "wait_for_rollout": True,
            **terraform_variables(self.built),
        }
        for name, sizing in PLATFORM_SIZING.items():  # beside the image variables of the same objects
            variables[name] = {**variables.get(name, {}), **sizing}
        return variables

    def tenant_variables(self) -> dict[str, Any]:
        return {"kubeconfig_path": str(self.kubeconfig), "wait_for_rollout": True, "proxy_image": self.platform_image}

    def terraform(self, root: Path, variables: dict[str, Any]) -> Terraform:
        return Terraform(root, variables=variables)

    def apply_platform(self) -> None:
        self.volumes.ensure_available(3)  # Prometheus, the ledger, Alertmanager
        terraform = self.terraform(self.repo / "shared-infrastructure" / "platform", self.platform_variables())
        terraform.init()
        terraform.apply()
        self.outputs["platform"] = terraform.output()

    def tenant_terraform(self, name: str) -> Terraform:
        return self.terraform(self.tenants_dir / name, self.tenant_variables())

    def apply_tenant(self, name: str) -> None:
        self.volumes.ensure_available(1)  # the tenant's documents
        self._prepare_spec_for_the_node(name)
        terraform = self.tenant_terraform(name)
        terraform.init()
        terraform.apply()
        self.outputs[name] = terraform.output()

    def _prepare_spec_for_the_node(self, name: str) -> None:
        """Requests sized for the node, and `admin_key` as the tenant's admin key."""
        spec_file = self.tenants_dir / name / SPEC_FILENAME
        spec = json.loads(spec_file.read_text())
        spec["proxy"] = {**TENANT_SIZING, **spec.get("proxy", {})}
        spec["admin_key_sha256"] = [hashlib.sha256(self.admin_key.encode()).hexdigest()]
        spec_file.write_text(json.dumps(spec, indent=2))

    def onboard(self, name: str, spec: dict) -> Path:
        """tenants/<name>/ as `tenantctl onboard` makes it: the template root with this spec."""
        directory = self.tenants_dir / name
        shutil.copytree(self.repo / "tenant-template", directory)
        (directory / SPEC_FILENAME).write_text(json.dumps(spec, indent=2))
        return directory

    # -- reaching things -----------------------------------------------------------------------------

    def pods(self, image: str | None = None) -> PodRunner:
        return PodRunner(self.api(), image or self.platform_image)

    def start_relay(self) -> None:
        self.core.create_namespace({"metadata": {"name": INGRESS_NAMESPACE}})
        self.relay = IngressRelay(self.pods(), INGRESS_NAMESPACE).start()

    def tenant_url(self, tenant: str) -> str:
        """The tenant's proxy, reached from the host through the ingress relay and the tenant's Service."""
        return f"{self.relay.url}/{tenant}"

    def ask(self, tenant: str, body: dict, timeout: float = 180) -> httpx.Response:
        return httpx.post(self.tenant_url(tenant) + "/ask", json=body, timeout=timeout)

    def cluster_ip_url(self, namespace: str, service: str) -> str:
        spec = self.core.read_namespaced_service(service, namespace).spec
        return f"http://{spec.cluster_ip}:{spec.ports[0].port}"

    def prometheus_url(self) -> str:
        """Prometheus through its ClusterIP, from the host (the monitoring namespace has no policy on it)."""
        return self.cluster_ip_url(NAMESPACE, "prometheus")

    def gateway_key(self, tenant: str) -> str:
        secret = self.core.read_namespaced_secret("tenant-proxy-gateway-key", tenant)
        return base64.b64decode(secret.data["key"]).decode()

    def wait_all_ready(self, namespace: str, timeout: float = 300) -> None:
        apps = client.AppsV1Api(self.api())

        def ready() -> bool:
            workloads = (
                apps.list_namespaced_deployment(namespace).items + apps.list_namespaced_stateful_set(namespace).items
            )
            return bool(workloads) and all((w.status.ready_replicas or 0) == (w.spec.replicas or 0) for w in workloads)

        wait_for(ready, timeout=timeout, what=f"every Deployment/StatefulSet in {namespace} Ready")


@contextmanager
def platform_on_node(cluster: LocalCluster, built: dict[str, BuiltImage], work_dir: Path) -> Iterator[NodePlatform]:
    """The running node made ready for the platform: the images imported, a copy of the repository's roots
    (work_dir/repo), volumes (work_dir/volumes) and the ingress relay; the relay and the volumes removed after.
    Nothing is applied yet: `apply_platform()`, then `apply_tenant(name)`."""
    for image in built.values():
        cluster.import_image(image.archive)
    volumes = HostPathVolumes(client.CoreV1Api(cluster.api_client()), work_dir / "volumes")
    platform = NodePlatform(
        kubeconfig=cluster.kubeconfig, repo=repository_copy(work_dir / "repo"), built=built, volumes=volumes
    )
    try:
        platform.start_relay()  # the ingress path: a relay Pod in the ingress controller's namespace
        yield platform
    finally:
        if platform.relay is not None:
            platform.relay.stop()
        volumes.remove_all()
