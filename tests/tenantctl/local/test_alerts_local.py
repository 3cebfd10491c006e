"""Alerts in local mode, end to end: the platform as `tenantctl up` starts it (Alertmanager from Debian's
package, Prometheus sending to it), with webhook receivers this test runs on loopback.

Both tenants may use only the chat model smollm2-135m-instruct, whose pool is the OpenAI stub
(openai_stub/, given as the model's endpoint; the catalogue is the default's smollm2 and embedding model):
it answers a question `stub-fault:500` with a 500, which is how one tenant's answers go bad while the
other's do not; stopping it takes the model's backend down. The shipped rules are loaded with shorter
windows and `for` durations (a copy, made here), so the alerts fire and resolve within seconds; everything
else is what a user runs.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from alert_config_sync.routing import PlatformAlerts, TenantAlerts
from dashboards import ALERT_RULES_FILE
from tenant_spec.models import DEFAULT_MODEL, TenantModels
from tenant_spec.rate_limits import RateLimits
from tenantctl.local.alertmanager import amtool_check
from tenantctl.local.catalogue import DEFAULT_CATALOGUE
from tenantctl.local.platform import LocalPlatform, LocalSettings
from tests.helpers import free_port, prometheus_query, specs_on_free_ports, stub_backend, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


class WebhookReceiver:
    """Alertmanager webhook notifications, kept by path (`/<receiver>`): a loopback HTTP server."""

    def __init__(self):
        self.notifications: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.notifications.setdefault(self.path.strip("/"), []).append(
                        {**body, "authorization": self.headers.get("Authorization")}
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{path}"

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return list(self.notifications.get(path, []))

    def alerts(self, path: str, alertname: str, status: str) -> list[dict]:
        """Alerts named `alertname` in notifications of `status` (firing/resolved) to `path`."""
        return [
            alert
            for note in self.received(path)
            if note["status"] == status
            for alert in note["alerts"]
            if alert["labels"]["alertname"] == alertname
        ]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def quick_rules(target: Path) -> Path:
    """The shipped rules with 20 s windows instead of 5 m and `for: 1s`: same expressions, seconds to fire."""
    document = yaml.safe_load(ALERT_RULES_FILE.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[5m\]", "[20s]", rule["expr"])
            if "for" in rule:
                rule["for"] = "1s"
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


class Traffic:
    """Asks a tenant in a loop (a background thread) until stopped; every answer's status is kept."""

    def __init__(self, url: str, question: str):
        self.url, self.question = url, question
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                self.statuses.append(http.post(self.url + "/ask", json={"question": self.question}).status_code)
                self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)


def alertmanager_alerts(url: str, alertname: str) -> list[dict]:
    return httpx.get(url + "/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}, timeout=10).json()


def firing_in_prometheus(prometheus_url: str, alertname: str, tenant: str) -> bool:
    return bool(
        prometheus_query(prometheus_url, f'ALERTS{{alertname="{alertname}",tenant="{tenant}",alertstate="firing"}}')
    )


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def alerting_platform(tmp_path, receiver, process_group):
    stub_port = free_port()
    stub = process_group(stub_backend(stub_port, tmp_path))
    catalogue = tmp_path / "models.json"
    embedding = "all-minilm-l6-v2"  # served by a local model server, as `tenantctl up` does
    catalogue.write_text(json.dumps({name: DEFAULT_CATALOGUE[name] for name in (DEFAULT_MODEL, embedding)}))
    token_dir = tmp_path / "run" / "alert-secrets" / "acme-corp"
    token_dir.mkdir(parents=True)
    (token_dir / "alerts-webhook").write_text("acme-webhook-token\n")
    specs = [
        spec.model_copy(
            update={
                "models": TenantModels(allowed=[DEFAULT_MODEL]),  # a self-hosted model only: no fallback
                "rate_limits": RateLimits(requests_per_minute=10_000, requests_per_hour=100_000),  # no 429s here
                "alerts": TenantAlerts(
                    webhook_urls=[receiver.url(spec.name)],
                    webhook_token_secret="alerts-webhook" if spec.name == "acme-corp" else None,
                ),
            }
        )
        for spec in specs_on_free_ports()
    ]
    settings = LocalSettings(
        run_dir=tmp_path / "run",
        gateway_port=free_port(),
        first_model_port=None,
        prometheus_port=free_port(),
        redis_port=free_port(),
        alertmanager_port=free_port(),
        scrape_interval="1s",
        catalogue_file=catalogue,
        model_endpoints={DEFAULT_MODEL: [f"http://127.0.0.1:{stub_port}"]},
        workers=1,
        alert_rules_file=quick_rules(tmp_path / "rules.yml"),
        platform_alerts=PlatformAlerts(
            webhook_urls=[receiver.url("platform")], group_wait="1s", group_interval="2s", repeat_interval="1h"
        ),
    )
    platform = LocalPlatform(specs, settings, environ={})
    try:
        platform.start()
        yield platform, stub
    finally:
        platform.stop()


def test_alerts_reach_their_tenant_only_and_a_backend_outage_reaches_the_platform(alerting_platform, receiver):
    platform, stub = alerting_platform
    acme_url = next(e.url for e in platform.endpoints if e.name == "acme-corp")
    prometheus, alertmanager = platform.prometheus_url, platform.alertmanager_url
    assert "SUCCESS" in amtool_check(yaml.safe_load((platform.settings.run_dir / "alertmanager.yml").read_text()))

    # acme-corp's answers go bad: its alert reaches its webhook (with its token) and the platform's.
    with Traffic(acme_url, "stub-fault:500") as bad:
        alert = wait_for(
            lambda: receiver.alerts("acme-corp", "TenantHighErrorRatio", "firing"),
            timeout=180,
            what="TenantHighErrorRatio at acme-corp's webhook",
        )[0]
    assert set(bad.statuses) == {502}, bad.statuses
    assert alert["labels"]["tenant"] == "acme-corp"
    assert receiver.received("acme-corp")[0]["authorization"] == "Bearer acme-webhook-token"
    wait_for(
        lambda: receiver.alerts("platform", "TenantHighErrorRatio", "firing"),
        timeout=60,
        what="the platform hearing acme-corp's alert too",
    )
    # Recovery (no more errors in the window): the resolved notification follows.
    wait_for(
        lambda: receiver.alerts("acme-corp", "TenantHighErrorRatio", "resolved"),
        timeout=180,
        what="the resolved notification at acme-corp's webhook",
    )
    assert receiver.received("closed-ai") == []

    # The model's backend goes down: the platform hears it; the tenants' error alerts it causes are inhibited.
    before = len(receiver.received("acme-corp"))
    stub.stop()
    down = wait_for(
        lambda: receiver.alerts("platform", "LLMGatewayBackendDown", "firing"),
        timeout=120,
        what="LLMGatewayBackendDown at the platform's webhook",
    )
    assert {alert["labels"]["backend"] for alert in down} == {DEFAULT_MODEL}
    with Traffic(acme_url, "Hello?") as failing:
        wait_for(
            lambda: firing_in_prometheus(prometheus, "TenantHighErrorRatio", "acme-corp"),
            timeout=120,
            what="acme-corp's error ratio alert firing in Prometheus",
        )
        suppressed = wait_for(
            lambda: [
                a for a in alertmanager_alerts(alertmanager, "TenantHighErrorRatio") if a["status"]["inhibitedBy"]
            ],
            timeout=60,
            what="Alertmanager inhibiting acme-corp's error ratio alert",
        )
    assert failing.statuses and all(status >= 500 for status in failing.statuses), failing.statuses
    assert suppressed[0]["labels"]["tenant"] == "acme-corp" and suppressed[0]["status"]["state"] == "suppressed"
    # Held back until it resolves, and the backend comes back only then: nothing ever reached the tenants.
    wait_for(
        lambda: not alertmanager_alerts(alertmanager, "TenantHighErrorRatio"),
        timeout=180,
        what="acme-corp's error ratio alert resolved in Alertmanager",
    )
    stub.start()
    wait_for(
        lambda: receiver.alerts("platform", "LLMGatewayBackendDown", "resolved"),
        timeout=180,
        what="the backend's resolved notification at the platform's webhook",
    )
    assert len(receiver.received("acme-corp")) == before
    assert receiver.received("closed-ai") == []
