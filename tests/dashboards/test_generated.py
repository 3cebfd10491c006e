"""The committed dashboard JSON: current, one code path for template and tenants, safe to template;
a tenant's dashboard is rendered from the template, not committed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from dashboards import GENERATED_DIR, TENANT_PLACEHOLDER
from dashboards.generate import TEMPLATE_FILE, differences, rendered_files, tenant_dashboard_json, write
from dashboards.grafana import build, render
from dashboards.panels import tenant_dashboard
from dashboards.reading import dashboard_panels
from tenant_spec import TENANT_NAME_MAX_LENGTH, discover_tenant_specs
from tenantctl.local.report import unit_label
from tests.helpers import REPO_ROOT, TENANTS_DIR

TENANTS = [spec.name for spec in discover_tenant_specs(TENANTS_DIR)]


def generated() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(GENERATED_DIR.glob("*.json"))}


def test_committed_json_is_what_the_code_generates():
    assert differences() == [], "run `tenantctl dashboards` and commit dashboards/generated/"


def test_check_command_fails_on_stale_json_and_regenerating_fixes_it(tmp_path):
    write(tmp_path)
    (tmp_path / TEMPLATE_FILE).write_text("{}\n")
    (tmp_path / "tenant-acme-corp.json").write_text("{}\n")  # per-tenant files were committed once
    assert differences(tmp_path) == [
        f"{tmp_path / TEMPLATE_FILE}: outdated",
        f"{tmp_path / 'tenant-acme-corp.json'}: not generated (any more)",
    ]
    write(tmp_path)
    assert differences(tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(rendered_files())


def test_cli_check_passes_on_the_committed_json():
    result = subprocess.run(
        [sys.executable, "-m", "tenantctl", "dashboards", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_expected_dashboards_exist():
    assert sorted(generated()) == sorted(["platform-overview.json", "tenants-comparison.json", TEMPLATE_FILE])


@pytest.mark.parametrize("tenant", [*TENANTS, "a" * TENANT_NAME_MAX_LENGTH])
def test_tenant_dashboard_is_the_template_with_the_name_substituted(tenant):
    """What Terraform does, replace(file(template), "__TENANT__", name), is the dashboard the code builds for
    the tenant (the one `tenantctl report` draws)."""
    assert tenant_dashboard_json(tenant) == render(tenant_dashboard(tenant))


def test_cli_prints_a_tenants_dashboard():
    result = subprocess.run(
        [sys.executable, "-m", "tenantctl", "dashboards", "--tenant", "closed-ai"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["uid"] == "closed-ai"


def test_template_names_the_tenant_only_through_the_placeholder():
    template = generated()[TEMPLATE_FILE]
    text = json.dumps(template)
    assert not any(tenant in text for tenant in TENANTS)
    assert template["uid"] == TENANT_PLACEHOLDER and TENANT_PLACEHOLDER in template["title"]
    for panel in dashboard_panels(template):
        for expr, _ in panel.targets:
            assert f'tenant="{TENANT_PLACEHOLDER}"' in expr or f'namespace="{TENANT_PLACEHOLDER}"' in expr, expr


def test_every_selector_of_a_tenant_dashboard_is_scoped_to_the_tenant():
    """Each `{...}` matcher list names the tenant (or its namespace); there is no bare metric name."""
    for panel in dashboard_panels(generated()[TEMPLATE_FILE]):
        for expr, _ in panel.targets:
            selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^}]*)\}", expr)
            assert selectors, expr
            for _, matchers in selectors:
                assert (
                    f'tenant="{TENANT_PLACEHOLDER}"' in matchers or f'namespace="{TENANT_PLACEHOLDER}"' in matchers
                ), f"{panel.title}: {expr}"


def test_no_query_depends_on_job_or_instance():
    for name, dashboard in generated().items():
        for panel in dashboard_panels(dashboard):
            for expr, legend in panel.targets:
                assert not re.search(r"\b(job|instance)\b", expr + legend), f"{name} {panel.title}: {expr}"


def test_json_is_safe_for_terraform_templates_and_grafana():
    for name, dashboard in generated().items():
        text = (GENERATED_DIR / name).read_text()
        assert "${" not in text and "%{" not in text, name  # literal in file() and templatefile() alike
        ids = [panel["id"] for panel in dashboard["panels"]] + [
            inner["id"] for panel in dashboard["panels"] for inner in panel.get("panels", [])
        ]
        assert len(ids) == len(set(ids)), name
        assert len(dashboard["uid"]) <= 40, name  # Grafana's limit on dashboard uids


def test_longest_tenant_name_makes_a_valid_uid():
    name = "a" * TENANT_NAME_MAX_LENGTH
    assert build(tenant_dashboard(name))["uid"] == name


def test_every_panel_has_a_title_unit_and_queries_and_the_report_can_label_its_unit():
    for name, dashboard in generated().items():
        for panel in dashboard_panels(dashboard):
            assert panel.title and panel.targets, f"{name}: {panel}"
            label, _ = unit_label(panel.unit)
            assert label, f"{name} {panel.title}: {panel.unit}"


def test_per_tenant_dashboard_has_the_panels_the_issue_asks_for():
    titles = [panel.title for panel in dashboard_panels(generated()[TEMPLATE_FILE])]
    for wanted in (
        "Request rate",
        "Error ratio",
        "Latency (p50 / p95 / p99)",
        "Time to first token (p50 / p95 / p99)",
        "Tokens per second",
        "Estimated cost per hour",
        "Refusals",
        "Namespace quota usage",
    ):
        assert wanted in titles
    cluster_only = [panel.title for panel in dashboard_panels(generated()[TEMPLATE_FILE]) if panel.cluster_only]
    assert cluster_only == ["Namespace quota usage"]
