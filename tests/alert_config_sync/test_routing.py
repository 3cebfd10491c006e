"""The rendered Alertmanager configuration: valid for Debian's Alertmanager 0.25 (`amtool check-config`),
and routing as promised (`amtool config routes test` on the same file): a tenant's alert reaches its own
receivers and the platform's, never another tenant's, whatever the specs say."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alert_config_sync.routing import (
    AlertRoutingError,
    AlertTenant,
    PlatformAlerts,
    Smtp,
    TenantAlerts,
    render_alertmanager_config,
)
from tenantctl.local.alertmanager import amtool_check

AMTOOL = shutil.which("amtool")
MODEL = "smollm2-135m-instruct"  # a self-hosted model: a backend of its own
PLATFORM = PlatformAlerts(webhook_urls=["https://oncall.example.com/alertmanager"])


def two_tenants() -> list[AlertTenant]:
    return [
        AlertTenant(
            "acme-corp",
            frozenset({MODEL}),
            TenantAlerts(webhook_urls=["https://hooks.acme.example/alerts"], webhook_token_secret="alerts-webhook"),
        ),
        AlertTenant(
            "closed-ai",
            frozenset({"openai"}),
            TenantAlerts(webhook_urls=["http://10.0.0.7:9000/hook"], severity_min="critical"),
        ),
        AlertTenant("quiet-co", frozenset({MODEL, "openai"}), None),  # no receivers: its alerts go to the platform only
    ]


def write(config: dict, directory: Path) -> Path:
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def receivers_for(config_file: Path, **labels: str) -> set[str]:
    """Which receivers Alertmanager routes an alert with these labels to (amtool's route test)."""
    result = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={config_file}",
            *(f"{key}={value}" for key, value in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(result.stdout.strip().split(","))


@pytest.fixture
def rendered(tmp_path) -> Path:
    tokens = {"acme-corp": str(tmp_path / "acme-token")}
    return write(render_alertmanager_config(PLATFORM, two_tenants(), tokens), tmp_path)


def test_two_tenants_and_the_platform_pass_amtool_check_config(rendered):
    output = amtool_check(yaml.safe_load(rendered.read_text()))
    assert "SUCCESS" in output and "3 receivers" in output and "2 inhibit rules" in output


def test_a_tenant_alert_reaches_its_own_receivers_and_the_platform_only(rendered):
    assert receivers_for(rendered, alertname="TenantHighErrorRatio", tenant="acme-corp", severity="warning") == {
        "platform",
        "tenant-acme-corp",
    }
    assert receivers_for(rendered, alertname="TenantBudgetNearlySpent", tenant="closed-ai", severity="critical") == {
        "platform",
        "tenant-closed-ai",
    }
    # closed-ai asked for critical alerts only; quiet-co has no receivers; unknown tenants reach no tenant.
    assert receivers_for(rendered, alertname="TenantHighErrorRatio", tenant="closed-ai", severity="warning") == {
        "platform"
    }
    assert receivers_for(rendered, alertname="TenantHighErrorRatio", tenant="quiet-co", severity="critical") == {
        "platform"
    }
    assert receivers_for(rendered, alertname="TenantHighErrorRatio", tenant="acme-corp-x", severity="critical") == {
        "platform"
    }
    assert receivers_for(rendered, alertname="LLMGatewayBackendDown", backend=MODEL, severity="critical") == {
        "platform"
    }


def test_the_platform_may_keep_to_its_own_alerts(tmp_path):
    platform = PLATFORM.model_copy(update={"receive_tenant_alerts": False})
    config = write(render_alertmanager_config(platform, two_tenants(), {"acme-corp": "/t"}), tmp_path)
    assert receivers_for(config, alertname="TenantHighErrorRatio", tenant="acme-corp", severity="warning") == {
        "tenant-acme-corp"
    }
    assert receivers_for(config, alertname="LLMGatewayBackendDown", backend=MODEL) == {"platform"}


def test_a_backend_down_inhibits_the_symptoms_of_the_tenants_on_that_backend(rendered):
    rules = yaml.safe_load(rendered.read_text())["inhibit_rules"]
    by_backend = {rule["source_matchers"][1]: rule["target_matchers"] for rule in rules}
    assert by_backend[f'backend="{MODEL}"'][1] == 'tenant=~"acme-corp|quiet-co"'  # its model's tenants
    assert by_backend['backend="openai"'][1] == 'tenant=~"closed-ai|quiet-co"'
    assert all(rule["source_matchers"][0] == 'alertname="LLMGatewayBackendDown"' for rule in rules)
    assert "TenantBudgetNearlySpent" not in by_backend[f'backend="{MODEL}"'][0]  # a budget is no symptom


def test_tokens_are_referenced_as_files_never_inlined(rendered, tmp_path):
    text = rendered.read_text()
    assert f"credentials_file: {tmp_path / 'acme-token'}" in text
    closed_ai = next(r for r in yaml.safe_load(text)["receivers"] if r["name"] == "tenant-closed-ai")
    assert "http_config" not in closed_ai["webhook_configs"][0]  # no secret named: no Authorization
    with pytest.raises(AlertRoutingError, match="acme-corp.*alerts-webhook"):
        render_alertmanager_config(PLATFORM, two_tenants(), {})


def test_email_goes_through_the_platform_smtp_relay(tmp_path):
    tenants = [AlertTenant("acme-corp", frozenset({MODEL}), TenantAlerts(email=["oncall@acme.example"]))]
    with pytest.raises(AlertRoutingError, match="smtp"):
        render_alertmanager_config(PLATFORM, tenants)
    platform = PLATFORM.model_copy(
        update={
            "smtp": Smtp(
                smarthost="smtp.example.com:587",
                sender="am@example.com",
                auth_username="am",
                auth_password_file="/etc/smtp/pw",
            )
        }
    )
    config = render_alertmanager_config(platform, tenants)
    assert config["global"]["smtp_auth_password_file"] == "/etc/smtp/pw"
    assert "SUCCESS" in amtool_check(config)


@pytest.mark.parametrize(
    "alerts, complaint",
    [
        ({"webhook_urls": ["ftp://example.com/x"]}, "http"),
        ({"webhook_urls": ["https://user:secret@example.com/x"]}, "credentials"),
        ({"webhook_urls": ["https://example.com/x y"]}, "spaces"),
        ({"webhook_urls": ["https://"]}, "host"),
        ({"webhook_urls": ["https://example.com:99999/"]}, "valid URL"),
        ({"email": ["Eve <eve@example.com>"]}, "plain e-mail"),
        ({"email": ["a@example.com\nBcc: eve@example.com"]}, "plain e-mail"),
        ({"webhook_token_secret": "../etc/passwd"}, "Secret name"),
        ({"severity_min": "info"}, "warning"),
        # Nothing in a tenant's alerts chooses which alerts it gets: no matchers, no other tenant.
        ({"matchers": ['tenant="closed-ai"']}, "Extra inputs"),
        ({"tenant": "closed-ai"}, "Extra inputs"),
        ({"routes": [{"receiver": "x"}]}, "Extra inputs"),
    ],
)
def test_invalid_tenant_alerts_are_refused(alerts, complaint):
    with pytest.raises(ValidationError, match=complaint):
        TenantAlerts.model_validate(alerts)


def test_a_route_name_that_is_no_tenant_name_is_refused():
    for name in ('acme"}', "Acme", "a" * 41):
        with pytest.raises(AlertRoutingError, match="not a tenant name"):
            render_alertmanager_config(PLATFORM, [AlertTenant(name, frozenset({MODEL}), None)])
    with pytest.raises(AlertRoutingError, match="twice"):
        render_alertmanager_config(
            PLATFORM, [AlertTenant("a", frozenset({MODEL}), None), AlertTenant("a", frozenset({MODEL, "openai"}), None)]
        )
