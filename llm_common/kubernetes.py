"""Reading the cluster, for the services that do (the gateway: TenantRoutes and pool members; the alert
config sync: TenantRoutes): the API client, one TenantRoute reader, and a refresh every few seconds in a
daemon thread, where a failed refresh is logged and the last known state kept."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from kubernetes import client
from kubernetes import config as kube_config

from llm_common.catalogue import CatalogueError, ModelCatalogue, parse_catalogue, tenant_entitlement_problems
from tenant_spec.route import ROUTE_GROUP, ROUTE_PLURAL, ROUTE_VERSION, TenantRoute, route_from_object

log = logging.getLogger(__name__)


def kubernetes_client(kubeconfig: str | None) -> client.ApiClient:
    """In a Pod: its ServiceAccount; outside: the given kubeconfig."""
    if kubeconfig:
        return kube_config.new_client_from_config(config_file=kubeconfig)
    configuration = client.Configuration()
    kube_config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def read_tenant_routes(api: client.CustomObjectsApi, namespace: str) -> list[TenantRoute]:
    """The valid TenantRoutes of `namespace`; an invalid one is logged and left out."""
    listing = api.list_namespaced_custom_object(
        ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, _request_timeout=10
    )
    routes = []
    for item in listing.get("items", []):
        try:
            routes.append(route_from_object(item))
        except ValueError as error:
            log.warning("ignoring TenantRoute %s/%s: %s", namespace, _object_name(item), error)
    return routes


CATALOGUE_PLURAL = "modelcatalogues"
CATALOGUE_OBJECT = "platform"  # the one ModelCatalogue the platform root publishes in its namespace


def read_model_catalogue(api: client.CustomObjectsApi, namespace: str) -> ModelCatalogue | None:
    """The platform's published catalogue (shared-infrastructure/platform); None when it cannot be read."""
    try:
        catalogue = api.get_namespaced_custom_object(
            ROUTE_GROUP, ROUTE_VERSION, namespace, CATALOGUE_PLURAL, CATALOGUE_OBJECT, _request_timeout=10
        )
        return parse_catalogue(catalogue["spec"]["models"], f"ModelCatalogue {namespace}/{CATALOGUE_OBJECT}")
    except (client.ApiException, KeyError, TypeError, CatalogueError) as error:
        log.warning("cannot read the model catalogue in %s: %s", namespace, getattr(error, "reason", None) or error)
        return None


def catalogue_warnings(api: client.CustomObjectsApi, namespace: str) -> list[str]:
    """What the published catalogue means for the tenants' routes: each disabled model a tenant still names
    (the API server's own warning, which Terraform's kubectl provider does not show)."""
    catalogue = read_model_catalogue(api, namespace)
    if catalogue is None:
        return []
    return [
        warning
        for route in read_tenant_routes(api, namespace)
        for warning in tenant_entitlement_problems(route.name, route.models, catalogue)[1]
    ]


def _object_name(item: object) -> object:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    return metadata.get("name") if isinstance(metadata, dict) else None


class Poller(ABC):
    """`refresh()` now and then every `interval` seconds until `stop()`."""

    def __init__(self, name: str, interval: float):
        self._name = name
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def refresh(self) -> object:
        """Read the cluster once and apply what was read."""

    @abstractmethod
    def describe_failure(self, error: Exception) -> str:
        """The log line when a refresh fails."""

    def start(self) -> None:
        """Refresh now (a failure is logged, not fatal) and then in the background."""
        self._refresh_logged()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._refresh_logged()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except Exception as error:  # keep the last known state; readiness tells whether we ever read it
            log.error(self.describe_failure(error))
