"""`tenantctl`'s entry point: the parser of every command (tenantctl/commands/__init__.py lists them)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubernetes.client.rest import ApiException

from tenant_spec import SpecError, discover_tenant_specs
from tenantctl.commands import alerts, cluster, deploy, images, knowledge, local, observability, onboard, status, usage
from tenantctl.processes import ProcessFailed
from tenantctl.terraform.runner import TerraformError
from tenantctl.terraform.toolchain import ToolchainError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (SpecError, ProcessFailed, TerraformError, ToolchainError, RuntimeError) as error:
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
    commands = parser.add_subparsers(dest="command", required=True)
    local.register(commands)  # up, ask
    validate = commands.add_parser("validate", help="validate every tenant spec")
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
    return parser


def command_validate(args: argparse.Namespace) -> int:
    specs = discover_tenant_specs(args.tenants_dir)
    for spec in specs:
        print(f"ok  {spec.name:<24} {spec.industry:<16} backend={spec.backend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
