"""`tenantctl`'s entry point: the parser of every command (tenantctl/commands/__init__.py lists them)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kubernetes.client.rest import ApiException

from llm_common.catalogue import CatalogueError
from tenant_spec import SpecError, discover_tenant_specs
from tenantctl.commands import (
    alerts,
    cluster,
    deploy,
    images,
    knowledge,
    local,
    models,
    observability,
    onboard,
    status,
    usage,
)
from tenantctl.local.catalogue import check_specs, load_local_catalogue
from tenantctl.local.platform import openai_key_configured
from tenantctl.processes import ProcessFailed
from tenantctl.terraform.runner import TerraformError
from tenantctl.terraform.toolchain import ToolchainError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (SpecError, CatalogueError, ProcessFailed, TerraformError, ToolchainError, RuntimeError) as error:
        print(f"tenantctl: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        print(f"tenantctl: Kubernetes API error {error.status}: {error.reason}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenantctl", description="Per-tenant LLM platform control.")
    parser.add_argument(
        "--tenants-dir",
        type=Path,
        default=Path("tenants"),
        help="directory holding one <tenant>/tenant.json per tenant (default: tenants)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        metavar="FILE",
        help="local mode's model catalogue, JSON {name: entry} (default: the built-in one, as the platform root's)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local.register(commands)  # up, ask
    validate = commands.add_parser("validate", help="validate every tenant spec (and its models, by the catalogue)")
    validate.set_defaults(handler=command_validate)
    cluster.register(commands)  # cluster up|down|status
    images.register(commands)  # images build|list
    onboard.register(commands)  # onboard <name>
    deploy.register(commands)  # apply|destroy <name>, platform apply|destroy
    status.register(commands)  # status <name>
    observability.register(commands)  # dashboards, report <tenant>
    knowledge.register(commands)  # ingest <tenant> FILE…, documents, forget
    alerts.register(commands)  # alerts config
    usage.register(commands)  # usage <name>
    models.register(commands)  # models
    return parser


def command_validate(args: argparse.Namespace) -> int:
    specs = discover_tenant_specs(args.tenants_dir)
    catalogue = load_local_catalogue(args.models, openai_key_configured(os.environ))
    for warning in check_specs(specs, catalogue):
        print(f"warning: {warning}", file=sys.stderr)
    for spec in specs:
        print(f"ok  {spec.name:<24} {spec.industry:<16} models={','.join(spec.models.allowed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
