"""Pool members learned from the cluster: the ready Pods behind a Service, from its EndpointSlices.

The platform root gives the model pool (vLLM or the CPU model server) and the embedding servers
headless Services. Balancing over a Service's virtual IP would make the whole pool one member:
one failure would eject every replica, and least-outstanding routing would see one queue. Here
each Pod is a member, so routing, health checks and ejection are per replica.

EndpointSlices rather than DNS A records of the headless Service: the gateway already talks to
the API (tenant routes), a slice says which endpoints are ready (the Pods' readiness probes) and
carries the port by name, and a changed slice is seen at the next refresh rather than after DNS
caches expire. The gateway's Role allows reading EndpointSlices in its own namespace only.
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from llm_common.kubernetes import Poller, kubernetes_client
from llm_gateway.backends import BackendPool, PoolMember
from llm_gateway.config import PoolDiscoveryConfig

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def ready_member_urls(slices: list[client.V1EndpointSlice], port_name: str) -> list[str]:
    """http://<address>:<port> of every ready endpoint (a missing `ready` condition means ready)."""
    urls = set()
    for endpoint_slice in slices:
        port = next((p.port for p in endpoint_slice.ports or [] if p.name == port_name and p.port), None)
        if port is None:
            continue
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            for address in endpoint.addresses[:1]:
                host = f"[{address}]" if ":" in address else address
                urls.add(f"http://{host}:{port}")
    return sorted(urls)


class PoolDiscovery(Poller):
    """Keeps a BackendPool's members equal to the ready Pods of one Service."""

    def __init__(
        self,
        settings: PoolDiscoveryConfig,
        pool: BackendPool,
        make_member: Callable[[str], PoolMember],
        api: client.DiscoveryV1Api | None = None,
    ):
        super().__init__(f"{pool.name}-discovery", settings.refresh_seconds)
        self.settings = settings
        self.pool = pool
        self._make_member = make_member
        self._api = api or client.DiscoveryV1Api(kubernetes_client(settings.kubeconfig))

    def refresh(self) -> list[str]:
        slices = self._api.list_namespaced_endpoint_slice(
            self.settings.namespace, label_selector=f"{SERVICE_NAME_LABEL}={self.settings.service}", _request_timeout=10
        )
        urls = ready_member_urls(slices.items, self.settings.port_name)
        self.pool.set_member_urls(urls, self._make_member)
        return urls

    def describe_failure(self, error: Exception) -> str:
        return f"listing the Pods of {self.settings.namespace}/{self.settings.service} failed: {error}"
