"""Tenants learned from the cluster: the TenantRoute objects that each tenant's Terraform apply writes.

A tenant apply (shared-infrastructure/modules/tenant) writes a TenantRoute (llm-tenants.io/v1alpha1,
defined by the platform root's tenant_routes.tf) named after the tenant into the gateway's own
namespace: the tenant's backend, models, max_tokens, limits and the SHA-256 of its key (never the
key). The gateway's Role lets it read TenantRoutes (and its pools' EndpointSlices) in that namespace
and nothing else: no Secret anywhere. Every worker re-lists them every `refresh_seconds`: a new
tenant is served, a destroyed one refused, within that time and without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kubernetes import client

from llm_common.kubernetes import Poller, kubernetes_client, read_tenant_routes
from llm_gateway.auth import TenantDirectory
from llm_gateway.config import TenantDiscoveryConfig
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)


class TenantDiscovery(Poller):
    """Keeps a TenantDirectory equal to the config's tenants plus the cluster's TenantRoutes."""

    def __init__(
        self,
        settings: TenantDiscoveryConfig,
        directory: TenantDirectory,
        static_tenants: list[TenantRoute],
        api: client.CustomObjectsApi | None = None,
        on_refresh: Callable[[list[TenantRoute]], None] = lambda tenants: None,
    ):
        super().__init__("tenant-discovery", settings.refresh_seconds)
        self.settings = settings
        self.directory = directory
        self.static_tenants = list(static_tenants)
        self._on_refresh = on_refresh  # told every tenant after each refresh (e.g. to export budgets)
        self._api = api or client.CustomObjectsApi(kubernetes_client(settings.kubeconfig))
        self._synced = threading.Event()

    @property
    def synced(self) -> bool:
        """True once the routes have been listed at least once."""
        return self._synced.is_set()

    def refresh(self) -> list[TenantRoute]:
        """List the TenantRoutes once and swap the directory; returns the discovered routes."""
        static_names = {tenant.name for tenant in self.static_tenants}
        discovered = []
        for route in read_tenant_routes(self._api, self.settings.namespace):
            if route.name in static_names:
                log.warning(
                    "ignoring TenantRoute %s/%s: tenant '%s' is set in the config file",
                    self.settings.namespace,
                    route.name,
                    route.name,
                )
                continue
            discovered.append(route)
        self.directory.replace(self.static_tenants + discovered)
        self._on_refresh(self.static_tenants + discovered)
        self._synced.set()
        return discovered

    def describe_failure(self, error: Exception) -> str:
        return f"listing tenant routes in namespace {self.settings.namespace} failed: {error}"
