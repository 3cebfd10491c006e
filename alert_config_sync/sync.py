"""The cluster's Alertmanager config, kept equal to the tenants' routes: a sidecar in the Alertmanager
Pod (shared-infrastructure/platform/alertmanager.tf), the platform image.

Every few seconds it lists the TenantRoutes (the objects the gateway discovers tenants from; a tenant
apply writes one, so onboarding needs no platform apply), renders alertmanager.yml with the renderer
local mode uses (alert_config_sync/routing.py), and when the file changes writes it and asks
Alertmanager to reload (`POST /-/reload`; Alertmanager keeps its last good config if a reload fails).
`--once` renders once and exits: the init container, so Alertmanager starts with a config.

A tenant whose `alerts` names a `webhook_token_secret` has granted this Pod's ServiceAccount `get` on
that one Secret in its own namespace (shared-infrastructure/modules/tenant); the token is written to
a file in the Pod's memory volume, and the config refers to the file. A route that is invalid, or whose
Secret cannot be read, is logged and routed to the platform's receivers only: one tenant's mistake
never stops the others' alerts.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from kubernetes import client
from pydantic import ValidationError

from alert_config_sync.routing import AlertTenant, PlatformAlerts, render_alertmanager_config, tenant_problem
from llm_common.catalogue import tenant_backends
from llm_common.kubernetes import kubernetes_client, read_model_catalogue, read_tenant_routes
from tenant_spec.alerts import TenantAlerts

TOKEN_KEY = "token"  # the key of a tenant's webhook token Secret
log = logging.getLogger("alert-config-sync")


class AlertConfigSync:
    def __init__(
        self,
        namespace: str,
        platform: PlatformAlerts,
        output: Path,
        tokens_dir: Path,
        api: client.ApiClient,
        reload_url: str | None = None,
    ):
        self.namespace = namespace
        self.platform = platform
        self.output = output
        self.tokens_dir = tokens_dir
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.reload_url = reload_url
        self._reload_pending = False

    def tenants(self) -> list[AlertTenant]:
        """Every valid TenantRoute as routing needs it (invalid ones logged and left out)."""
        tenants = []
        catalogue = read_model_catalogue(self.custom, self.namespace)
        for route in read_tenant_routes(self.custom, self.namespace):
            where = f"{self.namespace}/{route.name}"
            backends = tenant_backends(route.models, catalogue)
            try:
                alerts = TenantAlerts.model_validate(route.alerts) if route.alerts is not None else None
                problem = tenant_problem(AlertTenant(route.name, backends, alerts), self.platform)
            except ValidationError as error:
                alerts, problem = None, f"invalid alerts: {error}"
            if problem:
                log.warning("TenantRoute %s: %s; its alerts go to the platform only", where, problem)
                alerts = None
                if tenant_problem(AlertTenant(route.name, backends), self.platform):  # no tenant name: left out
                    continue
            tenants.append(AlertTenant(route.name, backends, alerts))
        return tenants

    def write_tokens(self, tenants: list[AlertTenant]) -> tuple[list[AlertTenant], dict[str, str]]:
        """Each named token Secret, read into a file; a tenant whose Secret cannot be read keeps the
        platform's receivers only (logged)."""
        self.tokens_dir.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        usable = []
        for tenant in tenants:
            secret = tenant.alerts.webhook_token_secret if tenant.alerts else None
            if secret is not None:
                try:
                    token = self._read_token(tenant.name, secret)
                except (client.ApiException, KeyError, ValueError) as error:
                    reason = getattr(error, "reason", None) or repr(error)
                    log.warning(
                        "tenant %s: cannot read Secret %s/%s (key %s): %s; its alerts go to the platform only",
                        tenant.name,
                        tenant.name,
                        secret,
                        TOKEN_KEY,
                        reason,
                    )
                    tenant = AlertTenant(tenant.name, tenant.backends, None)
                else:
                    files[tenant.name] = str(_write_private(self.tokens_dir / tenant.name, token))
            usable.append(tenant)
        for stale in self.tokens_dir.iterdir():
            if stale.name not in files and not stale.name.startswith("."):
                stale.unlink(missing_ok=True)
        return usable, files

    def _read_token(self, namespace: str, name: str) -> str:
        secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=10)
        token = base64.b64decode((secret.data or {})[TOKEN_KEY]).decode("utf-8").strip()
        if not token or any(ch in token for ch in "\r\n"):
            raise ValueError("empty or not one line")
        return token

    def render(self) -> str:
        tenants, token_files = self.write_tokens(self.tenants())
        return yaml.safe_dump(render_alertmanager_config(self.platform, tenants, token_files), sort_keys=False)

    def sync(self) -> bool:
        """Render once; write and reload when the config changed. True when it changed."""
        text = self.render()
        current = self.output.read_text(encoding="utf-8") if self.output.exists() else None
        changed = text != current
        if changed:
            _write_private(self.output, text)
            log.info("alertmanager config written (%d bytes)", len(text))
            self._reload_pending = self.reload_url is not None
        if self._reload_pending:
            self._reload()
        return changed

    def _reload(self) -> None:
        try:
            response = httpx.post(self.reload_url, timeout=10)
            response.raise_for_status()
            self._reload_pending = False
            log.info("alertmanager reloaded")
        except httpx.HTTPError as error:  # not up yet, or the config refused: tried again next time
            log.warning("alertmanager reload failed: %s", error)


def _write_private(path: Path, text: str) -> Path:
    """Atomically (rename), readable by this user only: Alertmanager runs as the same user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def load_platform(path: Path) -> PlatformAlerts:
    return PlatformAlerts.model_validate_json(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alert_config_sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True, help="where the TenantRoutes are (the platform's namespace)")
    parser.add_argument("--platform", type=Path, required=True, help="the platform's receivers (PlatformAlerts JSON)")
    parser.add_argument("--output", type=Path, required=True, help="alertmanager.yml to write")
    parser.add_argument("--tokens-dir", type=Path, required=True, help="where tenants' webhook tokens are written")
    parser.add_argument("--reload-url", help="Alertmanager's /-/reload (not with --once)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between syncs")
    parser.add_argument("--once", action="store_true", help="render once and exit (the init container)")
    parser.add_argument("--kubeconfig", help="outside a cluster: the kubeconfig to use")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    syncer = AlertConfigSync(
        args.namespace,
        load_platform(args.platform),
        args.output,
        args.tokens_dir,
        kubernetes_client(args.kubeconfig),
        None if args.once else args.reload_url,
    )
    if args.once:
        syncer.sync()
        return 0
    while True:
        try:
            syncer.sync()
        except Exception as error:  # noqa: BLE001 - the API server away: keep the last config, try again
            log.error("sync failed: %s", error)
        time.sleep(args.interval)
