"""`tenantctl up` as a user runs it: a table once healthy, answers, and nothing left after Ctrl-C or kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tenant_spec import SPEC_FILENAME
from tests.helpers import TENANTS_DIR, free_port, processes_mentioning, wait_for


@pytest.fixture
def tenants_on_free_ports(tmp_path) -> tuple[Path, dict[str, int]]:
    """A copy of tenants/ whose specs use free ports (so a running `tenantctl up` is not disturbed)."""
    target = tmp_path / "tenants"
    shutil.copytree(TENANTS_DIR, target)
    ports = {}
    for spec_file in target.glob(f"*/{SPEC_FILENAME}"):
        document = json.loads(spec_file.read_text())
        document["local_port"] = ports[document["name"]] = free_port()
        spec_file.write_text(json.dumps(document))
    return target, ports


@dataclass
class Ports:
    """Free ports for the shared services of one `tenantctl up`."""

    gateway: int = field(default_factory=free_port)
    model: int = field(default_factory=free_port)
    embedding: int = field(default_factory=free_port)
    prometheus: int = field(default_factory=free_port)
    redis: int = field(default_factory=free_port)
    alertmanager: int = field(default_factory=free_port)

    def every(self, tenant_ports: dict[str, int]) -> list[int]:
        return [
            self.gateway,
            self.model,
            self.embedding,
            self.prometheus,
            self.redis,
            self.alertmanager,
            *tenant_ports.values(),
        ]


def start_tenantctl_up(tenants: Path, run_dir: Path, ports: Ports) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenantctl",
            "--tenants-dir",
            str(tenants),
            "up",
            "--run-dir",
            str(run_dir),
            "--gateway-port",
            str(ports.gateway),
            "--model-port",
            str(ports.model),
            "--embedding-port",
            str(ports.embedding),
            "--workers",
            "1",
            "--prometheus-port",
            str(ports.prometheus),
            "--scrape-interval",
            "1s",
            "--redis-port",
            str(ports.redis),
            "--alertmanager-port",
            str(ports.alertmanager),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OPENAI_API_KEY": ""},
    )


@contextmanager
def running_tenantctl_up(tmp_path: Path, tenants: Path, tenant_ports: dict[str, int]):
    """`tenantctl up` on free ports; stopped with Ctrl-C at the end, which must leave nothing running."""
    ports = Ports()
    process = start_tenantctl_up(tenants, tmp_path / "run", ports)
    try:
        yield process, ports
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert leftovers(ports.every(tenant_ports)) == []


def read_until(process: subprocess.Popen, marker: str, timeout: float = 240) -> str:
    output = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if marker in line:
            return "".join(output)
    raise AssertionError(f"'{marker}' never printed:\n{''.join(output)}")


def leftovers(ports: list[int]) -> list[int]:
    return [
        pid
        for port in ports
        for pid in processes_mentioning(f"127.0.0.1:{port}") + processes_mentioning(f"--port {port}")
    ]


@pytest.mark.e2e
def test_up_prints_table_answers_and_stops_cleanly(tmp_path, tenants_on_free_ports):
    tenants, tenant_ports = tenants_on_free_ports
    with running_tenantctl_up(tmp_path, tenants, tenant_ports) as (process, ports):
        output = read_until(process, "Press Ctrl-C to stop.")
        assert "loading" in output or "starting model-server" in output
        for name, port in tenant_ports.items():
            assert f"http://127.0.0.1:{port}" in output and name in output
        assert f"prometheus: http://127.0.0.1:{ports.prometheus}" in output
        assert f"alertmanager: http://127.0.0.1:{ports.alertmanager}" in output
        # the gateway, the model server, tenantctl itself (child restarts) and each proxy
        assert_prometheus_scrapes_everything(ports.prometheus, expected_targets=3 + len(tenant_ports))
        answer = httpx.post(
            f"http://127.0.0.1:{tenant_ports['closed-ai']}/ask",
            timeout=120,
            json={"question": "Which company do you work for?", "max_tokens": 20},
        )
        assert answer.status_code == 200
        ask = subprocess.run(
            [
                sys.executable,
                "-m",
                "tenantctl",
                "ask",
                "acme-corp",
                "Say hi.",
                "--max-tokens",
                "5",
                "--run-dir",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ask.returncode == 0, ask.stderr
        assert ask.stdout.strip()
        usage = subprocess.run(
            [
                sys.executable,
                "-m",
                "tenantctl",
                "--tenants-dir",
                str(tenants),
                "usage",
                "closed-ai",
                "--run-dir",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert usage.returncode == 0, usage.stderr
        assert "requests 1 " in usage.stdout and "remaining" in usage.stdout  # the /ask above, from the ledger


def assert_prometheus_scrapes_everything(port: int, expected_targets: int) -> None:
    """Every target up (gateway, model server, tenantctl, each proxy): waits for the first scrapes."""
    url = f"http://127.0.0.1:{port}/api/v1/query"

    def all_up() -> bool:
        up = httpx.get(url, params={"query": "up"}, timeout=10).json()["data"]["result"]
        return len(up) == expected_targets and all(series["value"][1] == "1" for series in up)

    wait_for(all_up, timeout=30, what=f"{expected_targets} Prometheus targets up")


@pytest.mark.e2e
def test_kill_minus_9_of_tenantctl_leaves_no_orphan(tmp_path, tenants_on_free_ports):
    tenants, tenant_ports = tenants_on_free_ports
    ports = Ports()
    process = start_tenantctl_up(tenants, tmp_path / "run", ports)
    read_until(process, "Press Ctrl-C to stop.")
    process.kill()
    process.wait()
    every = ports.every(tenant_ports)
    wait_for(lambda: leftovers(every) == [], timeout=30, what="no process left of tenantctl up")


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def restarts_in_prometheus(prometheus_port: int) -> dict[str, float]:
    result = httpx.get(
        f"http://127.0.0.1:{prometheus_port}/api/v1/query",
        timeout=10,
        params={"query": "tenantctl_child_restarts_total"},
    ).json()["data"]["result"]
    return {series["metric"]["service"]: float(series["value"][1]) for series in result}


def answers(port: int) -> bool:
    try:
        return (
            httpx.post(
                f"http://127.0.0.1:{port}/ask", json={"question": "Hi", "max_tokens": 3}, timeout=120
            ).status_code
            == 200
        )
    except httpx.HTTPError:
        return False


@pytest.mark.e2e
def test_up_restarts_a_crashed_proxy_and_model_server(tmp_path, tenants_on_free_ports):
    """kill -9 one tenant's proxy: the other tenant keeps answering, the proxy comes back; kill -9 the model
    server: it comes back too. Both restarts are logged and counted in Prometheus; Ctrl-C still cleans up."""
    tenants, tenant_ports = tenants_on_free_ports
    with running_tenantctl_up(tmp_path, tenants, tenant_ports) as (process, ports):
        read_until(process, "Press Ctrl-C to stop.")
        acme, closed = tenant_ports["acme-corp"], tenant_ports["closed-ai"]
        proxy_pids = processes_mentioning(f"127.0.0.1:{closed}")
        assert proxy_pids
        kill_all(proxy_pids)  # the gunicorn master and its workers, as a crash or the OOM killer would
        assert answers(acme)  # the other tenant is not affected
        output = read_until(process, "proxy-closed-ai is back")
        assert "proxy-closed-ai exited with code -9; restarting it in 1s" in output
        assert answers(closed)

        model_pids = processes_mentioning(f"--port {ports.model}")
        assert len(model_pids) == 1
        kill_all(model_pids)
        read_until(process, "model-server is back")
        assert wait_for(lambda: answers(acme) and answers(closed), timeout=120, what="both tenants answering")
        assert processes_mentioning(f"--port {ports.model}") != model_pids

        def counted() -> dict[str, float] | None:
            restarts = restarts_in_prometheus(ports.prometheus)
            restarted = {service: count for service, count in restarts.items() if count}
            return restarts if restarted == {"proxy-closed-ai": 1, "model-server": 1} else None

        restarts = wait_for(counted, timeout=60, what="both restarts counted in Prometheus")
        assert restarts["proxy-acme-corp"] == 0 and restarts["gateway"] == 0


def test_up_refuses_an_invalid_spec(tmp_path, tenants_on_free_ports):
    tenants, _ = tenants_on_free_ports
    spec_file = tenants / "closed-ai" / SPEC_FILENAME
    document = json.loads(spec_file.read_text())
    spec_file.write_text(json.dumps({**document, "system_prompt": ""}))
    result = subprocess.run(
        [sys.executable, "-m", "tenantctl", "--tenants-dir", str(tenants), "up", "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{spec_file}: system_prompt:" in result.stderr


def test_ask_without_a_running_platform(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tenantctl", "ask", "acme-corp", "hi", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "tenantctl up" in result.stderr


@pytest.mark.parametrize("service", ["gateway", "prometheus", "alertmanager"])
def test_up_refuses_a_port_in_use(tmp_path, tenants_on_free_ports, service):
    tenants, _ = tenants_on_free_ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {
            "gateway": free_port(),
            "model": free_port(),
            "prometheus": free_port(),
            "alertmanager": free_port(),
            service: port,
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tenantctl",
                "--tenants-dir",
                str(tenants),
                "up",
                "--gateway-port",
                str(ports["gateway"]),
                "--model-port",
                str(ports["model"]),
                "--prometheus-port",
                str(ports["prometheus"]),
                "--alertmanager-port",
                str(ports["alertmanager"]),
                "--run-dir",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"already in use: {service} port {port}" in result.stderr
