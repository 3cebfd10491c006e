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
from typing import Callable

from kubernetes import client
from pydantic import ValidationError

from llm_gateway.auth import TenantDirectory
from llm_gateway.cluster_polling import Poller, kubernetes_client
from llm_gateway.config import TenantDiscoveryConfig, TenantRoute

ROUTE_GROUP = "llm-tenants.io"
ROUTE_VERSION = "v1alpha1"
ROUTE_PLURAL = "tenantroutes"
log = logging.getLogger(__name__)


def route_from_object(route: dict) -> TenantRoute:
    """Validate one TenantRoute object (its name is the tenant's); ValueError says what is wrong with it."""
    spec = route.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("has no spec")
    try:
        return TenantRoute.model_validate({**spec, "name": route["metadata"]["name"]})
    except ValidationError as error:
        raise ValueError(f"invalid spec: {error}") from None


class TenantDiscovery(Poller):
    """Keeps a TenantDirectory equal to the config's tenants plus the cluster's TenantRoutes."""

    def __init__(self, settings: TenantDiscoveryConfig, directory: TenantDirectory,
                 static_tenants: list[TenantRoute], api: client.CustomObjectsApi | None = None,
                 on_refresh: Callable[[list[TenantRoute]], None] = lambda tenants: None):
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
        listing = self._api.list_namespaced_custom_object(ROUTE_GROUP, ROUTE_VERSION, self.settings.namespace,
                                                          ROUTE_PLURAL, _request_timeout=10)
        static_names = {tenant.name for tenant in self.static_tenants}
        discovered = []
        for item in listing.get("items", []):
            where = f"{self.settings.namespace}/{item.get('metadata', {}).get('name')}"
            try:
                route = route_from_object(item)
            except ValueError as error:
                log.warning("ignoring TenantRoute %s: %s", where, error)
                continue
            if route.name in static_names:
                log.warning("ignoring TenantRoute %s: tenant '%s' is set in the config file", where, route.name)
                continue
            discovered.append(route)
        self.directory.replace(self.static_tenants + discovered)
        self._on_refresh(self.static_tenants + discovered)
        self._synced.set()
        return discovered

    def describe_failure(self, error: Exception) -> str:
        return f"listing tenant routes in namespace {self.settings.namespace} failed: {error}"
