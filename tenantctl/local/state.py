"""What a running `tenantctl up` leaves in its run directory for the other commands: its URLs and
tenants (state.json, while it runs), the usage ledger, and the tenants' generated admin keys."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tenantctl.processes import write_private_json, write_private_text

STATE_FILE = "state.json"
DEFAULT_RUN_DIR = Path(".run/local")
LEDGER_FILE = "ledger.sqlite3"
ADMIN_KEYS_DIR = "admin-keys"


def write_state(run_dir: Path, state: dict) -> None:
    write_private_json(run_dir / STATE_FILE, state)  # the ledger URL may hold a password


def remove_state(run_dir: Path) -> None:
    (run_dir / STATE_FILE).unlink(missing_ok=True)


def read_state(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def tenant_url(run_dir: Path, tenant: str) -> str:
    """The URL of a tenant's proxy in the platform running from `run_dir`."""
    state = read_state(run_dir)
    if state is None:
        raise RuntimeError(f"no running platform found in {run_dir}: start it with `tenantctl up`")
    for endpoint in state["tenants"]:
        if endpoint["name"] == tenant:
            return endpoint["url"]
    known = ", ".join(endpoint["name"] for endpoint in state["tenants"])
    raise RuntimeError(f"unknown tenant '{tenant}' (running: {known})")


def admin_key_path(run_dir: Path, tenant: str) -> Path:
    return run_dir / ADMIN_KEYS_DIR / f"{tenant}.key"


def local_admin_key(run_dir: Path, tenant: str) -> str:
    """The tenant's generated admin key: read from the run directory, or made (once) and kept there 0600."""
    path = admin_key_path(run_dir, tenant)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    if not key:
        key = "ak-" + secrets.token_urlsafe(32)
        write_private_text(path, key + "\n")
    return key
