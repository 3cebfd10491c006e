"""Tenants learned from the cluster: the route Secrets that each tenant's Terraform apply writes.

A tenant apply (shared-infrastructure/modules/tenant) writes `tenant-route-<name>` into the
gateway's own namespace, labelled `llm-tenants.io/gateway-route=true`, holding `route.json`:
the tenant's backend, models, max_tokens and the SHA-256 of its key (never the key). The
gateway lists them with a Role limited to its namespace, so it never needs to read Secrets in
tenant namespaces. Every worker re-lists them every `refresh_seconds`: a new tenant is served,
a destroyed one refused, within that time and without a restart.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Callable

from kubernetes import client, config as kube_config
from pydantic import ValidationError

from llm_gateway.auth import TenantDirectory
from llm_gateway.config import TenantDiscoveryConfig, TenantRoute

ROUTE_KEY = "route.json"
log = logging.getLogger(__name__)


def kubernetes_api(kubeconfig: str | None) -> client.CoreV1Api:
    """In a Pod: its ServiceAccount; outside: the given kubeconfig."""
    if kubeconfig:
        return client.CoreV1Api(kube_config.new_client_from_config(config_file=kubeconfig))
    configuration = client.Configuration()
    kube_config.load_incluster_config(client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def route_from_secret(secret: client.V1Secret) -> TenantRoute:
    """Decode and validate one route Secret; ValueError says what is wrong with it."""
    encoded = (secret.data or {}).get(ROUTE_KEY)
    if encoded is None:
        raise ValueError(f"has no '{ROUTE_KEY}'")
    try:
        return TenantRoute.model_validate(json.loads(base64.b64decode(encoded)))
    except (ValueError, ValidationError) as error:
        raise ValueError(f"invalid {ROUTE_KEY}: {error}") from None


class TenantDiscovery:
    """Keeps a TenantDirectory equal to the config's tenants plus the cluster's route Secrets."""

    def __init__(self, settings: TenantDiscoveryConfig, directory: TenantDirectory,
                 static_tenants: list[TenantRoute], api: client.CoreV1Api | None = None,
                 on_refresh: Callable[[list[TenantRoute]], None] = lambda tenants: None):
        self.settings = settings
        self.directory = directory
        self.static_tenants = list(static_tenants)
        self._on_refresh = on_refresh  # told every tenant after each refresh (e.g. to export budgets)
        self._api = api or kubernetes_api(settings.kubeconfig)
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def synced(self) -> bool:
        """True once the Secrets have been listed at least once."""
        return self._synced.is_set()

    def refresh(self) -> list[TenantRoute]:
        """List the route Secrets once and swap the directory; returns the discovered routes."""
        secrets = self._api.list_namespaced_secret(self.settings.namespace, label_selector=self.settings.label_selector,
                                                   _request_timeout=10)
        static_names = {tenant.name for tenant in self.static_tenants}
        discovered = []
        for secret in secrets.items:
            where = f"{self.settings.namespace}/{secret.metadata.name}"
            try:
                route = route_from_secret(secret)
            except ValueError as error:
                log.warning("ignoring tenant route Secret %s: %s", where, error)
                continue
            if route.name in static_names:
                log.warning("ignoring tenant route Secret %s: tenant '%s' is set in the config file", where, route.name)
                continue
            discovered.append(route)
        self.directory.replace(self.static_tenants + discovered)
        self._on_refresh(self.static_tenants + discovered)
        self._synced.set()
        return discovered

    def start(self) -> None:
        """Refresh now (failures are logged, not fatal) and then in the background."""
        self._refresh_logged()
        self._thread = threading.Thread(target=self._run, name="tenant-discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.refresh_seconds):
            self._refresh_logged()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except Exception as error:  # keep serving the last known tenants; /readyz tells whether we ever synced
            log.error("listing tenant routes in namespace %s failed: %s", self.settings.namespace, error)
