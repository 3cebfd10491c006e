"""`tenantctl onboard <name>`: copy tenant-template/ to tenants/<name>/ and fill in its spec.

Exactly what the README's manual steps do (`cp -r tenant-template tenants/<name>`, edit
tenant.json), with the spec validated before anything is written.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tenant_spec import SPEC_FILENAME, TEMPLATE_DIRNAME, SpecError, TenantSpec, parse_tenant_spec

# What a template copy must never carry along (a user may have run terraform inside it).
_NOT_COPIED = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.backup", ".terraform.lock.hcl")


def template_dir(tenants_dir: Path) -> Path:
    """tenant-template/ sits beside tenants/ at the repository root."""
    return tenants_dir.resolve().parent / TEMPLATE_DIRNAME


def onboard_tenant(tenants_dir: Path, name: str, industry: str, system_prompt: str,
                   display_name: str | None = None, backend: str | None = None) -> TenantSpec:
    """Create tenants/<name>/ from the template; refuses an existing tenant or an invalid spec."""
    template = template_dir(tenants_dir)
    target = tenants_dir / name
    spec_document = json.loads((template / SPEC_FILENAME).read_text(encoding="utf-8"))
    spec_document.update(name=name, industry=industry, system_prompt=system_prompt,
                         display_name=display_name or _display_name(name))
    if backend:
        spec_document["backend"] = backend
    spec = parse_tenant_spec(spec_document, f"tenant '{name}'")
    if target.exists():
        raise SpecError(f"{target}: tenant '{name}' already exists; pick another name or edit its spec")
    shutil.copytree(template, target, ignore=_NOT_COPIED)
    (target / SPEC_FILENAME).write_text(json.dumps(spec_document, indent=2) + "\n", encoding="utf-8")
    return spec


def _display_name(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("-"))


def _read_prompt(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read the prompt file: {error}") from None


def command_onboard(args: argparse.Namespace) -> int:
    spec = onboard_tenant(args.tenants_dir, args.name, args.industry, _read_prompt(args.prompt_file),
                          display_name=args.display_name, backend=args.backend)
    directory = args.tenants_dir / spec.name
    print(f"created {directory}/ from {TEMPLATE_DIRNAME}/ ({spec.display_name}, {spec.industry}, backend {spec.backend})")
    print(f"next: review {directory / SPEC_FILENAME}, then `tenantctl apply {spec.name}` "
          f"(or terraform -chdir={directory} init && terraform -chdir={directory} apply)")
    return 0


def register(subparsers) -> None:
    onboard = subparsers.add_parser("onboard", help="create tenants/<name>/ from tenant-template/")
    onboard.add_argument("name", help="tenant name: a DNS-1123 label of at most 40 characters")
    onboard.add_argument("--industry", required=True)
    onboard.add_argument("--prompt-file", type=Path, required=True, help="file holding the tenant's system prompt")
    onboard.add_argument("--display-name", help="default: the name, capitalised")
    onboard.add_argument("--backend", choices=["openai", "vllm", "auto"], help="default: the template's (auto)")
    onboard.set_defaults(handler=command_onboard)
