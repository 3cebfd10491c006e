"""Write the committed dashboard JSON (`dashboards/generated/`), check that it is current, or render
one tenant's dashboard.

    python -m dashboards [--check | --tenant NAME]      (also: tenantctl dashboards)

Committed: platform-overview.json, tenants-comparison.json and tenant-template.json, where the tenant
name is the placeholder __TENANT__. A tenant's own dashboard is that template with its name put in,
as the Terraform tenant module does it (`tenant_dashboard_json`, `--tenant NAME`); it is rendered
when needed, not committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards import GENERATED_DIR, TENANT_PLACEHOLDER
from dashboards.grafana import render
from dashboards.panels import platform_overview, tenant_dashboard, tenants_comparison

TEMPLATE_FILE = "tenant-template.json"


def rendered_files() -> dict[str, str]:
    """File name -> JSON text for every committed dashboard."""
    return {
        "platform-overview.json": render(platform_overview()),
        "tenants-comparison.json": render(tenants_comparison()),
        TEMPLATE_FILE: render(tenant_dashboard(TENANT_PLACEHOLDER)),
    }


def tenant_dashboard_json(tenant: str, directory: Path = GENERATED_DIR) -> str:
    """The tenant's dashboard: the committed template with its name, exactly as Terraform renders it."""
    return (directory / TEMPLATE_FILE).read_text(encoding="utf-8").replace(TENANT_PLACEHOLDER, tenant)


def differences(directory: Path = GENERATED_DIR) -> list[str]:
    """What is missing, outdated or left over in `directory`, compared with freshly rendered files."""
    wanted = rendered_files()
    problems = []
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: outdated")
    problems += [f"{path}: not generated (any more)" for path in _leftovers(directory, wanted)]
    return problems


def write(directory: Path = GENERATED_DIR) -> list[Path]:
    """Write every dashboard (and remove files that are not generated); returns the changed files."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered_files()
    changed = []
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in _leftovers(directory, wanted):
        path.unlink()
        changed.append(path)
    return changed


def _leftovers(directory: Path, wanted: dict[str, str]) -> list[Path]:
    return sorted(path for path in directory.glob("*.json") if path.name not in wanted)


def run(check: bool, tenant: str | None = None, directory: Path = GENERATED_DIR) -> int:
    """The command behind `python -m dashboards` and `tenantctl dashboards`."""
    if tenant is not None:
        print(tenant_dashboard_json(tenant, directory), end="")
        return 0
    if check:
        problems = differences(directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("dashboards are stale: run `tenantctl dashboards` (or `python -m dashboards`)", file=sys.stderr)
            return 1
        print(f"dashboards in {directory} are up to date")
        return 0
    changed = write(directory)
    print(f"{len(changed)} file(s) changed in {directory}" + "".join(f"\n  {path.name}" for path in changed))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--check",
        action="store_true",
        help="change nothing; fail when the committed JSON is not what the code generates",
    )
    choice.add_argument(
        "--tenant", metavar="NAME", help="print this tenant's dashboard JSON (e.g. to import in Grafana)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.check, args.tenant)
