"""The alert rules, checked and unit-tested by promtool; and the cluster-only panels' queries,
evaluated by promtool's PromQL engine against series in kube-state-metrics' format."""

from __future__ import annotations

import json
import shutil
import subprocess

import yaml

from dashboards import ALERT_RULES_FILE, ALERT_TESTS_FILE
from dashboards.generate import tenant_dashboard_json
from dashboards.reading import dashboard_panels


def promtool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: ./scripts/setup installs Debian's prometheus package"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", str(ALERT_RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_rule_unit_tests_pass():
    result = promtool("test", "rules", str(ALERT_TESTS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(ALERT_RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts == {
        "TenantHighErrorRatio",
        "TenantLatencySLOFastBurn",
        "TenantLatencySLOSlowBurn",
        "LLMGatewayBackendDown",
        "TenantBudgetNearlySpent",
    }
    cases = [
        case
        for test in yaml.safe_load(ALERT_TESTS_FILE.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert firing == alerts and silent == alerts


def test_a_broken_expectation_makes_promtool_fail(tmp_path):
    """The unit tests can fail: with a budget ten times larger, the budget alert must not fire."""
    shutil.copy(ALERT_RULES_FILE, tmp_path / ALERT_RULES_FILE.name)
    (tmp_path / "broken_test.yml").write_text(ALERT_TESTS_FILE.read_text().replace("'50x120'", "'500x120'"))
    result = promtool("test", "rules", "broken_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "TenantBudgetNearlySpent" in result.stdout + result.stderr


def test_cluster_only_quota_panel_against_kube_state_metrics_series(tmp_path):
    """kube_resourcequota comes from kube-state-metrics, which only the cluster runs; here its
    series (as kube-state-metrics names and labels them) go through promtool's real PromQL engine.
    Both tenants' namespaces have series; acme-corp's dashboard must show only acme-corp's."""
    panel = next(p for p in dashboard_panels(json.loads(tenant_dashboard_json("acme-corp"))) if p.cluster_only)
    series = []
    for namespace, used, hard in (
        ("acme-corp", {"cpu": 0.5, "pods": 3}, {"cpu": 2, "pods": 10}),
        ("closed-ai", {"cpu": 1, "pods": 5}, {"cpu": 1, "pods": 5}),
    ):
        for kind, values in (("used", used), ("hard", hard)):
            for resource, value in values.items():
                series.append(
                    {
                        "series": f'kube_resourcequota{{namespace="{namespace}", resourcequota="tenant-quota", '
                        f'resource="{resource}", type="{kind}", job="kube-state-metrics"}}',
                        "values": f"{value}x10",
                    }
                )
    (tmp_path / "quota_test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": [],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": series,
                        "promql_expr_test": [
                            {
                                "expr": panel.targets[0][0],
                                "eval_time": "5m",
                                "exp_samples": [
                                    {"labels": '{namespace="acme-corp", resource="cpu"}', "value": 0.25},
                                    {"labels": '{namespace="acme-corp", resource="pods"}', "value": 0.3},
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    result = promtool("test", "rules", "quota_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
