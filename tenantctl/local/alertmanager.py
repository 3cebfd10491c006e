"""Alert routing in local mode: the local Alertmanager's config, and amtool's check of a rendered one.

The config comes from the one renderer both modes use (alert_config_sync/routing.py), here fed by the
tenant specs. A spec's `alerts.webhook_token_secret` names a file in the run directory,
`<run dir>/alert-secrets/<tenant>/<name>`, holding the bearer token: Alertmanager reads it from
there (`credentials_file`), the token is never copied into the config.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from alert_config_sync.routing import AlertRoutingError, AlertTenant, PlatformAlerts, render_alertmanager_config
from llm_common.catalogue import ModelCatalogue, tenant_backends
from tenant_spec import SPEC_FILENAME, SpecError, TenantSpec

ALERT_SECRETS_DIR = "alert-secrets"


def alert_token_path(run_dir: Path, tenant: str, secret: str) -> Path:
    return run_dir / ALERT_SECRETS_DIR / tenant / secret


def alert_token_files(specs: list[TenantSpec], run_dir: Path, tenants_dir: Path | None = None) -> dict[str, str]:
    """Each tenant's webhook token file (absolute path), for those whose spec names one; a missing
    or empty file is a spec error naming the field and where the token belongs."""
    files: dict[str, str] = {}
    for spec in specs:
        secret = spec.alerts.webhook_token_secret if spec.alerts else None
        if secret is None:
            continue
        path = alert_token_path(run_dir, spec.name, secret).resolve()
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            where = tenants_dir / spec.name / SPEC_FILENAME if tenants_dir else spec.name
            raise SpecError(f"{where}: alerts.webhook_token_secret: put the token in {path} (mode 0600)")
        files[spec.name] = str(path)
    return files


def alert_tenants(specs: list[TenantSpec], catalogue: ModelCatalogue | None) -> list[AlertTenant]:
    return [AlertTenant(spec.name, tenant_backends(spec.models, catalogue), spec.alerts) for spec in specs]


def local_alertmanager_config(
    specs: list[TenantSpec],
    platform: PlatformAlerts,
    run_dir: Path,
    tenants_dir: Path | None = None,
    catalogue: ModelCatalogue | None = None,
) -> dict:
    try:
        return render_alertmanager_config(
            platform, alert_tenants(specs, catalogue), alert_token_files(specs, run_dir, tenants_dir)
        )
    except AlertRoutingError as error:
        raise SpecError(str(error)) from None


def amtool_check(config: dict) -> str:
    """`amtool check-config` on a rendered config; its output, or RuntimeError with it when it fails."""
    amtool = shutil.which("amtool")
    if amtool is None:
        raise RuntimeError("amtool is not installed: run ./scripts/setup (Debian package prometheus-alertmanager)")
    with tempfile.TemporaryDirectory(prefix="alertmanager-") as directory:
        path = Path(directory) / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise RuntimeError(f"amtool check-config failed:\n{output}")
    return output
