"""`tenantctl onboard <name>`: copy tenant-template/ to tenants/<name>/ and fill in its spec
(tenantctl/terraform/roots.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tenant_spec import SPEC_FILENAME, TEMPLATE_DIRNAME, SpecError
from tenantctl.terraform.roots import onboard_tenant


def _read_prompt(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read the prompt file: {error}") from None


def command_onboard(args: argparse.Namespace) -> int:
    spec = onboard_tenant(
        args.tenants_dir,
        args.name,
        args.industry,
        _read_prompt(args.prompt_file),
        display_name=args.display_name,
        models=args.allow_model,
    )
    directory = args.tenants_dir / spec.name
    print(
        f"created {directory}/ from {TEMPLATE_DIRNAME}/ ({spec.display_name}, {spec.industry}, "
        f"models {', '.join(spec.models.allowed)})"
    )
    print(
        f"next: review {directory / SPEC_FILENAME}, then `tenantctl apply {spec.name}` "
        f"(or terraform -chdir={directory} init && terraform -chdir={directory} apply)"
    )
    return 0


def register(subparsers) -> None:
    onboard = subparsers.add_parser("onboard", help="create tenants/<name>/ from tenant-template/")
    onboard.add_argument("name", help="tenant name: a DNS-1123 label of at most 40 characters")
    onboard.add_argument("--industry", required=True)
    onboard.add_argument("--prompt-file", type=Path, required=True, help="file holding the tenant's system prompt")
    onboard.add_argument("--display-name", help="default: the name, capitalised")
    onboard.add_argument(
        "--allow-model",
        action="append",
        metavar="MODEL",
        help="a catalogue model the tenant may use, the first its default (repeatable; default: the template's)",
    )
    onboard.set_defaults(handler=command_onboard)
