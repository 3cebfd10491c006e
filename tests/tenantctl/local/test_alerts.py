"""Local alert routing from the tenant specs: the `alerts` field, webhook token files, Prometheus pointed at
Alertmanager, and `tenantctl alerts config` (the fast layer: nothing is started)."""

from __future__ import annotations

import json

import pytest
import yaml

from alert_config_sync.routing import PlatformAlerts
from tenant_spec import SPEC_FILENAME, SpecError, discover_tenant_specs, load_tenant_spec
from tenantctl.commands.main import main as tenantctl
from tenantctl.local.alertmanager import alert_token_path, local_alertmanager_config
from tenantctl.local.prometheus import ScrapeTargets, prometheus_config
from tests.helpers import TENANTS_DIR


def write_spec(directory, name: str, **fields) -> None:
    spec = json.loads((TENANTS_DIR / "acme-corp" / SPEC_FILENAME).read_text())
    spec.update({"name": name, "local_port": None, **fields})
    (directory / name).mkdir(parents=True)
    (directory / name / SPEC_FILENAME).write_text(json.dumps(spec))


@pytest.mark.parametrize(
    "alerts, field",
    [
        ({"webhook_urls": ["https://ops:hunter2@hooks.example.com/"]}, "alerts.webhook_urls"),
        (
            {"tenant": "closed-ai", "webhook_urls": ["https://hooks.example.com/"]},
            "alerts.tenant: is not a known field",
        ),
        ({"matchers": ['tenant="closed-ai"']}, "alerts.matchers: is not a known field"),
    ],
)
def test_a_bad_or_grabbing_alerts_field_is_refused_with_file_and_field(tmp_path, alerts, field):
    write_spec(tmp_path, "grabber", alerts=alerts)
    with pytest.raises(SpecError) as refused:
        load_tenant_spec(tmp_path / "grabber" / SPEC_FILENAME)
    assert str(refused.value).startswith(f"{tmp_path / 'grabber' / SPEC_FILENAME}: {field}")


def test_a_named_token_must_be_in_the_run_directory(tmp_path):
    tenants, run_dir = tmp_path / "tenants", tmp_path / "run"
    write_spec(
        tenants,
        "acme-corp",
        alerts={"webhook_urls": ["https://hooks.example.com/a"], "webhook_token_secret": "alerts-webhook"},
    )
    specs = discover_tenant_specs(tenants)
    with pytest.raises(SpecError, match="alerts.webhook_token_secret: put the token in .*alert-secrets/acme-corp/"):
        local_alertmanager_config(specs, PlatformAlerts(), run_dir, tenants)
    token = alert_token_path(run_dir, "acme-corp", "alerts-webhook")
    token.parent.mkdir(parents=True)
    token.write_text("s3cret\n")
    config = local_alertmanager_config(specs, PlatformAlerts(), run_dir, tenants)
    webhook = next(r for r in config["receivers"] if r["name"] == "tenant-acme-corp")["webhook_configs"][0]
    assert webhook["http_config"]["authorization"]["credentials_file"] == str(token.resolve())
    assert "s3cret" not in yaml.safe_dump(config)


def test_prometheus_sends_alerts_to_the_local_alertmanager():
    targets = ScrapeTargets(gateway="http://127.0.0.1:8080", tenant_proxies=["http://127.0.0.1:5002"])
    assert "alerting" not in prometheus_config(targets)
    config = prometheus_config(targets, alertmanager="http://127.0.0.1:9093")
    alertmanagers = [{"scheme": "http", "static_configs": [{"targets": ["127.0.0.1:9093"]}]}]
    assert config["alerting"] == {"alertmanagers": alertmanagers}


def test_alerts_config_prints_the_checked_config_of_the_repository_specs(capsys):
    assert (
        tenantctl(
            [
                "--tenants-dir",
                str(TENANTS_DIR),
                "alerts",
                "config",
                "--platform-webhook",
                "https://oncall.example.com/am",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "SUCCESS" in captured.err  # amtool check-config
    config = yaml.safe_load(captured.out)
    assert config["receivers"][0] == {
        "name": "platform",
        "webhook_configs": [{"url": "https://oncall.example.com/am", "send_resolved": True, "max_alerts": 50}],
    }
    # Each self-hosted model the repository's tenants use is a backend of its own; OpenAI's models share one.
    assert {rule["source_matchers"][1] for rule in config["inhibit_rules"]} == {
        'backend="smollm2-135m-instruct"',
        'backend="gemma-3-270m"',
        'backend="openai"',
    }


def test_alerts_config_refuses_a_platform_webhook_with_credentials(capsys):
    assert (
        tenantctl(
            [
                "--tenants-dir",
                str(TENANTS_DIR),
                "alerts",
                "config",
                "--platform-webhook",
                "https://u:p@oncall.example.com/am",
            ]
        )
        == 1
    )
    assert "must not hold credentials" in capsys.readouterr().err
