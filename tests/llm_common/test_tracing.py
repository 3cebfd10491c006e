"""Request ids and per-request log lines through real processes: a tenant proxy in front of a gateway
in front of the stub. One id travels proxy -> gateway -> backend and back; each service writes one JSON
line per request without prompt text or keys; caller-facing errors carry the id and no internal detail,
which the log keeps under that id."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tenantctl.local import launchers
from tests.conftest import start_process
from tests.helpers import STUB_MODEL, controlled_gateway_config, free_port, tenant_route, wait_for

pytestmark = pytest.mark.e2e

KEY = "gk-traced-secret-key"
PROMPT_TEXT = "my-confidential-question-text"


@pytest.fixture(scope="module")
def services(stub_url, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tracing")
    gateway_port, proxy_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    config = controlled_gateway_config([tenant_route("traced", KEY)], stub_url)
    started = []
    try:
        started.append(start_process(launchers.gateway(config, gateway_port, run_dir, workers=1)))
        started.append(
            start_process(
                launchers.tenant_proxy(
                    {
                        "tenant": "traced",
                        "system_prompt": "You help.",
                        "gateway_url": gateway_url + "/v1",
                        "gateway_key": KEY,
                    },
                    proxy_port,
                    run_dir,
                    workers=1,
                )
            )
        )
        yield {
            "gateway": gateway_url,
            "proxy": f"http://127.0.0.1:{proxy_port}",
            "gateway_log": run_dir / "gateway.log",
            "proxy_log": run_dir / "proxy-traced.log",
        }
    finally:
        for process in reversed(started):
            process.stop()


def request_lines(log: Path, request_id: str) -> list[dict]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and request_id in line:
            lines.append(json.loads(line))
    return lines


def test_one_request_id_travels_proxy_gateway_backend_and_back(services, stub_url):
    request_id = str(uuid.uuid4())
    response = httpx.post(
        services["proxy"] + "/v1/chat/completions",
        timeout=30,
        headers={"X-Request-Id": request_id},
        json={"messages": [{"role": "user", "content": PROMPT_TEXT}]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == request_id
    assert [seen["request_id"] for seen in httpx.get(stub_url + "/seen").json()].count(request_id) == 1

    for service, log in (("gateway", services["gateway_log"]), ("proxy", services["proxy_log"])):
        (line,) = wait_for(lambda log=log: request_lines(log, request_id), 30, f"the {service}'s log line")
        assert line["service"] == service and line["request_id"] == request_id
        assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/chat/completions", 200)
        assert (line["tenant"], line["backend"]) == ("traced", STUB_MODEL)  # the stub's model's own pool
        assert (line["prompt_tokens"], line["completion_tokens"]) == (10, 7)
        assert line["latency_ms"] > 0 and line["error_code"] is None
    for log in (services["gateway_log"], services["proxy_log"]):
        text = log.read_text(errors="replace")
        assert PROMPT_TEXT not in text and KEY not in text


def test_a_malformed_caller_id_is_replaced_and_still_travels(services, stub_url):
    response = httpx.post(
        services["proxy"] + "/v1/chat/completions",
        timeout=30,
        headers={"X-Request-Id": "<script>"},
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    request_id = response.headers["X-Request-Id"]
    assert uuid.UUID(request_id)
    assert request_id in [seen["request_id"] for seen in httpx.get(stub_url + "/seen").json()]


@pytest.mark.parametrize("fault, status", [("stub-fault:404", 502), ("stub-fault:400", 400), ("stub-fault:503", 502)])
def test_errors_carry_the_id_and_the_log_keeps_the_details(services, fault, status):
    response = httpx.post(
        services["proxy"] + "/v1/chat/completions", timeout=30, json={"messages": [{"role": "user", "content": fault}]}
    )
    assert response.status_code == status
    error = response.json()["error"]
    request_id = response.headers["X-Request-Id"]
    assert error["request_id"] == request_id
    for internal in ("10.11.12.13", "/srv/", "127.0.0.1", "http://"):
        assert internal not in response.text
    wait_for(
        lambda: any(
            request_id in line and "10.11.12.13" in line
            for line in services["gateway_log"].read_text(errors="replace").splitlines()
        ),
        30,
        "the backend's detail in the gateway's log under the request id",
    )
    (line,) = wait_for(lambda: request_lines(services["gateway_log"], request_id), 30, "the gateway's log line")
    assert line["status"] == status and line["error_code"] in ("backend_rejected_request", "upstream_error")


def test_an_unreachable_gateway_is_a_502_without_its_address(tmp_path):
    port, dead = free_port(), free_port()
    process = start_process(
        launchers.tenant_proxy(
            {
                "tenant": "lonely",
                "system_prompt": "p",
                "gateway_url": f"http://127.0.0.1:{dead}/v1",
                "gateway_key": "k",
            },
            port,
            tmp_path,
            workers=1,
        )
    )
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=30,
            json={"messages": [{"role": "user", "content": "hi"}]},
        )
    finally:
        process.stop()
    assert response.status_code == 502 and response.json()["error"]["code"] == "gateway_unreachable"
    assert str(dead) not in response.text and "127.0.0.1" not in response.text
    assert str(dead) in (tmp_path / "proxy-lonely.log").read_text()  # the operator can see where it went
