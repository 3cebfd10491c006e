"""Reading tenant specs: one `tenants/<name>/tenant.json` per tenant.

Validation errors name the file and the field, e.g.
``tenants/acme-corp/tenant.json: quota.cpu: must be ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from tenant_spec.model import TenantSpec
from tenant_spec.problems import problems

SPEC_FILENAME = "tenant.json"
TEMPLATE_DIRNAME = "tenant-template"


class SpecError(ValueError):
    """A tenant spec is missing, unreadable or invalid; the message names file and field."""


def parse_tenant_spec(document: object, source: str) -> TenantSpec:
    """Validate an already-decoded spec document; `source` names it in errors."""
    try:
        return TenantSpec.model_validate(document)
    except ValidationError as error:
        raise SpecError(f"{source}: {'; '.join(problems(error))}") from None


def load_tenant_spec(path: Path) -> TenantSpec:
    """Read and validate one spec file; the directory name must equal `name`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpecError(f"{path}: not valid JSON: {error}") from None
    spec = parse_tenant_spec(document, str(path))
    if path.parent.name != spec.name:
        raise SpecError(f"{path}: name: '{spec.name}' must equal the directory name '{path.parent.name}'")
    return spec


def discover_tenant_specs(tenants_dir: Path) -> list[TenantSpec]:
    """Load every `tenants/<name>/tenant.json`, checking names and ports are unique."""
    if not tenants_dir.is_dir():
        raise SpecError(f"{tenants_dir}: tenants directory not found")
    specs = [load_tenant_spec(spec_file) for spec_file in sorted(tenants_dir.glob(f"*/{SPEC_FILENAME}"))]
    if not specs:
        raise SpecError(f"{tenants_dir}: no tenant found (expected <name>/{SPEC_FILENAME})")
    _check_unique_ports(specs, tenants_dir)
    return specs


def _check_unique_ports(specs: list[TenantSpec], tenants_dir: Path) -> None:
    owners: dict[int, str] = {}
    for spec in specs:
        if spec.local_port is None:
            continue
        if spec.local_port in owners:
            raise SpecError(
                f"{tenants_dir / spec.name / SPEC_FILENAME}: local_port: {spec.local_port} "
                f"is already used by tenant '{owners[spec.local_port]}'"
            )
        owners[spec.local_port] = spec.name
