"""`tenantctl dashboards` (regenerate or check the Grafana JSON) and `tenantctl report <tenant>` (a PNG:
tenantctl/local/report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dashboards import generate
from tenant_spec import discover_tenant_specs
from tenantctl.local.state import DEFAULT_RUN_DIR, read_state

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"


def register(subparsers) -> None:
    """Add `dashboards` and `report` to a CLI's argparse subparsers."""
    dashboards = subparsers.add_parser(
        "dashboards", help="regenerate the Grafana dashboards in dashboards/generated/, or print a tenant's"
    )
    generate.add_arguments(dashboards)
    dashboards.set_defaults(handler=command_dashboards)

    report = subparsers.add_parser("report", help="draw a tenant's dashboard panels from Prometheus into a PNG")
    report.add_argument("tenant")
    report.add_argument("--output", "-o", type=Path, help="PNG file (default: report-<tenant>.png)")
    report.add_argument(
        "--prometheus",
        metavar="URL",
        help=f"Prometheus to query (default: the running `tenantctl up`'s, else {DEFAULT_PROMETHEUS_URL})",
    )
    report.add_argument("--range", dest="time_range", default="1h", help="how far back, e.g. 30m, 6h, 2d (default 1h)")
    report.add_argument(
        "--rate-interval", default="1m", help="window of rate() in the panels, Grafana's $__rate_interval (default 1m)"
    )
    report.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    report.set_defaults(handler=command_report)


def command_dashboards(args: argparse.Namespace) -> int:
    if args.tenant is not None:
        _check_known(args.tenant, args.tenants_dir)
    return generate.run(args.check, args.tenant)


def _check_known(tenant: str, tenants_dir: Path) -> None:
    known = [spec.name for spec in discover_tenant_specs(tenants_dir)]
    if tenant not in known:
        raise RuntimeError(f"unknown tenant '{tenant}' (tenants: {', '.join(known)})")


def command_report(args: argparse.Namespace) -> int:
    from tenantctl.local.report import render_report  # matplotlib takes a while to import: only when asked

    _check_known(args.tenant, args.tenants_dir)
    state = read_state(args.run_dir) or {}
    url = args.prometheus or state.get("prometheus_url") or DEFAULT_PROMETHEUS_URL
    output = args.output or Path(f"report-{args.tenant}.png")
    result = render_report(args.tenant, url, output, time_range=args.time_range, rate_interval=args.rate_interval)
    print(f"{result.path}: {len(result.panels)} panels from {url}, last {args.time_range}")
    if result.panels_without_data:
        print(f"  without data: {', '.join(result.panels_without_data)}")
    return 0
