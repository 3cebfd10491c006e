"""`tenantctl alerts config`: the Alertmanager config the tenant specs make (tenantctl/local/alertmanager.py),
checked by amtool; and the platform's receivers as given on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from alert_config_sync.routing import PlatformAlerts
from tenant_spec import discover_tenant_specs
from tenantctl.local.alertmanager import amtool_check, local_alertmanager_config
from tenantctl.local.catalogue import load_local_catalogue


def platform_alerts(webhook_urls: list[str], option: str) -> PlatformAlerts:
    """The platform's receivers given on the command line; a bad URL is an error naming the option."""
    try:
        return PlatformAlerts(webhook_urls=webhook_urls)
    except ValueError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise RuntimeError(f"{option}: {problems}") from None


def register(subparsers) -> None:
    alerts = subparsers.add_parser("alerts", help="alert routing: the Alertmanager config the tenant specs make")
    commands = alerts.add_subparsers(dest="alerts_command", required=True)
    config = commands.add_parser("config", help="print the rendered alertmanager.yml (checked with amtool)")
    config.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".run/local"),
        help="where tenants' webhook token files are (<run dir>/alert-secrets/<tenant>/<name>)",
    )
    config.add_argument(
        "--platform-webhook", action="append", default=[], metavar="URL", help="a platform receiver (repeatable)"
    )
    config.set_defaults(handler=command_config)


def command_config(args: argparse.Namespace) -> int:
    specs = discover_tenant_specs(args.tenants_dir)
    platform = platform_alerts(args.platform_webhook, "--platform-webhook")
    catalogue = load_local_catalogue(args.models, openai_key=True)
    config = local_alertmanager_config(specs, platform, args.run_dir, args.tenants_dir, catalogue)
    print(amtool_check(config), file=sys.stderr)
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0
