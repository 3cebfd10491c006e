"""The Terraform roots: one per tenant (tenants/<name>/, made from tenant-template/) and the shared
platform's (shared-infrastructure/platform/).

`onboard_tenant` does what the manual steps do (`cp -r tenant-template tenants/<name>`, edit
tenant.json), with the spec validated before anything is written. `repository_copy` copies what the
roots need (they refer to ../../shared-infrastructure and ../../dashboards) elsewhere, so `.terraform/`
and state land there and never in the working tree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tenant_spec import SPEC_FILENAME, TEMPLATE_DIRNAME, SpecError, TenantSpec, load_tenant_spec, parse_tenant_spec
from tenantctl.paths import REPO_ROOT

PLATFORM_ROOT = Path("shared-infrastructure") / "platform"
# What a template copy must never carry along (a user may have run terraform inside it).
_NOT_COPIED = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.backup", ".terraform.lock.hcl")
# What a tenant root needs beside itself, for a copy of the repository's roots.
REPOSITORY_PARTS = ("tenant-template", "tenants", "shared-infrastructure", "dashboards")
_NOT_COPIED_WITH_THE_REPOSITORY = shutil.ignore_patterns(
    ".terraform", "*.tfstate*", ".terraform.lock.hcl", "__pycache__"
)


def template_dir(tenants_dir: Path) -> Path:
    """tenant-template/ sits beside tenants/ at the repository root."""
    return tenants_dir.resolve().parent / TEMPLATE_DIRNAME


def onboard_tenant(
    tenants_dir: Path,
    name: str,
    industry: str,
    system_prompt: str,
    display_name: str | None = None,
    models: list[str] | None = None,
) -> TenantSpec:
    """Create tenants/<name>/ from the template; refuses an existing tenant or an invalid spec."""
    template = template_dir(tenants_dir)
    target = tenants_dir / name
    spec_document = json.loads((template / SPEC_FILENAME).read_text(encoding="utf-8"))
    spec_document.update(
        name=name, industry=industry, system_prompt=system_prompt, display_name=display_name or _display_name(name)
    )
    if models:
        spec_document["models"] = {"allowed": models}
    spec = parse_tenant_spec(spec_document, f"tenant '{name}'")
    if target.exists():
        raise SpecError(f"{target}: tenant '{name}' already exists; pick another name or edit its spec")
    shutil.copytree(template, target, ignore=_NOT_COPIED)
    (target / SPEC_FILENAME).write_text(json.dumps(spec_document, indent=2) + "\n", encoding="utf-8")
    return spec


def _display_name(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("-"))


def tenant_root(tenants_dir: Path, name: str) -> Path:
    """The tenant's directory, after validating its spec (errors name the file and the field)."""
    directory = tenants_dir / name
    if not (directory / SPEC_FILENAME).exists():
        raise SpecError(f"{directory / SPEC_FILENAME}: no such tenant (create it with `tenantctl onboard {name}`)")
    load_tenant_spec(directory / SPEC_FILENAME)
    return directory


def platform_root(tenants_dir: Path) -> Path:
    return tenants_dir.resolve().parent / PLATFORM_ROOT


def repository_copy(target: Path) -> Path:
    """The Terraform-relevant part of the repository, copied to `target` (returned)."""
    for part in REPOSITORY_PARTS:
        shutil.copytree(REPO_ROOT / part, target / part, ignore=_NOT_COPIED_WITH_THE_REPOSITORY)
    return target
