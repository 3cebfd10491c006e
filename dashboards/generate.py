"""Write the committed dashboard JSON (`dashboards/generated/`), or check that it is current.

    python -m dashboards [--check] [--tenants-dir tenants]      (also: tenantctl dashboards)

Files: platform-overview.json, tenants-comparison.json, tenant-template.json (the tenant
name is the placeholder __TENANT__, for Terraform) and tenant-<name>.json per tenant spec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards import GENERATED_DIR, TENANT_PLACEHOLDER
from dashboards.grafana import render
from dashboards.panels import platform_overview, tenant_dashboard, tenants_comparison

TENANT_FILE_PREFIX = "tenant-"
TEMPLATE_FILE = "tenant-template.json"


def tenant_file(tenant: str) -> str:
    return f"{TENANT_FILE_PREFIX}{tenant}.json"


def rendered_files(tenants: list[str]) -> dict[str, str]:
    """File name -> JSON text for every generated dashboard."""
    files = {
        "platform-overview.json": render(platform_overview()),
        "tenants-comparison.json": render(tenants_comparison()),
        TEMPLATE_FILE: render(tenant_dashboard(TENANT_PLACEHOLDER)),
    }
    files.update({tenant_file(tenant): render(tenant_dashboard(tenant)) for tenant in tenants})
    return files


def differences(tenants: list[str], directory: Path = GENERATED_DIR) -> list[str]:
    """What is missing, outdated or left over in `directory`, compared with freshly rendered files."""
    wanted = rendered_files(tenants)
    problems = []
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: outdated")
    problems += [f"{path}: no such tenant any more" for path in _leftovers(directory, wanted)]
    return problems


def write(tenants: list[str], directory: Path = GENERATED_DIR) -> list[Path]:
    """Write every dashboard (and remove those of tenants that are gone); returns the changed files."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered_files(tenants)
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
    return sorted(path for path in directory.glob(f"{TENANT_FILE_PREFIX}*.json") if path.name not in wanted)


def run(tenants: list[str], check: bool, directory: Path = GENERATED_DIR) -> int:
    """The command behind `python -m dashboards` and `tenantctl dashboards`."""
    if check:
        problems = differences(tenants, directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("dashboards are stale: run `tenantctl dashboards` (or `python -m dashboards`)", file=sys.stderr)
            return 1
        print(f"dashboards in {directory} are up to date")
        return 0
    changed = write(tenants, directory)
    print(f"{len(changed)} file(s) changed in {directory}" + "".join(f"\n  {path.name}" for path in changed))
    return 0


def main(argv: list[str] | None = None) -> int:
    from tenantctl.spec import SpecError, discover_tenant_specs  # the specs are tenantctl's; only needed here

    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__.splitlines()[0])
    parser.add_argument("--tenants-dir", type=Path, default=Path("tenants"))
    parser.add_argument("--check", action="store_true", help="only check that the committed JSON is current")
    args = parser.parse_args(argv)
    try:
        tenants = [spec.name for spec in discover_tenant_specs(args.tenants_dir)]
    except SpecError as error:
        print(f"dashboards: {error}", file=sys.stderr)
        return 1
    return run(tenants, args.check)
