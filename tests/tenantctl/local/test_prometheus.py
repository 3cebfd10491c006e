"""The local Prometheus configuration: every service scraped, rules loaded, valid for promtool."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from dashboards import ALERT_RULES_FILE
from tenantctl.local.prometheus import ScrapeTargets, prometheus_config

TARGETS = ScrapeTargets(
    gateway="http://127.0.0.1:8080",
    tenant_proxies=["http://127.0.0.1:5002", "http://127.0.0.1:5003"],
    model_servers=["http://127.0.0.1:8000", "https://gpu-1.example:8000"],
)


def test_scrapes_gateway_proxies_and_model_servers_with_the_alert_rules():
    config = prometheus_config(TARGETS, scrape_interval="5s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {name: job["static_configs"][0]["targets"] for name, job in jobs.items()} == {
        "llm-gateway": ["127.0.0.1:8080"],
        "tenant-proxy": ["127.0.0.1:5002", "127.0.0.1:5003"],
        "model-server": ["127.0.0.1:8000"],
        "model-server-https": ["gpu-1.example:8000"],
    }
    assert jobs["model-server-https"]["scheme"] == "https"
    # no target labels: the `tenant` label comes from the services' own series
    assert all(set(static) == {"targets"} for job in jobs.values() for static in job["static_configs"])
    assert config["rule_files"] == [str(ALERT_RULES_FILE)]
    assert config["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s"}


def test_promtool_accepts_the_config_and_its_rules(tmp_path):
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus_config(TARGETS)))
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout + result.stderr
