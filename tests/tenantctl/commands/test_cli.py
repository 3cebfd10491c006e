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
from tenant_spec.models import DEFAULT_MODEL
from tenantctl.processes import port_is_free
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


MODEL_SERVERS = 3  # the default catalogue's cpu models: two chat models and the embedding model
# Each tenant's row of the table `tenantctl up` prints: the catalogue models it may use, its default first.
TENANT_MODELS = {
    "acme-corp": "smollm2-135m-instruct, gemma-3-270m, gpt-4o-mini",
    "closed-ai": "smollm2-135m-instruct",
}


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports."""
    while True:
        first = free_port()
        if all(port_is_free("127.0.0.1", port) for port in range(first + 1, first + count)):
            return first


@dataclass
class Ports:
    """Free ports for the shared services of one `tenantctl up`."""

    gateway: int = field(default_factory=free_port)
    model: int = field(default_factory=lambda: free_port_run(MODEL_SERVERS))  # the first of the model servers'
    prometheus: int = field(default_factory=free_port)
    redis: int = field(default_factory=free_port)
    alertmanager: int = field(default_factory=free_port)

    def every(self, tenant_ports: dict[str, int]) -> list[int]:
        return [
            self.gateway,
            *range(self.model, self.model + MODEL_SERVERS),
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
            "--first-model-port",
            str(ports.model),
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
        for model in ("smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2"):  # a server for each
            assert f"starting model-{model}" in output
        # no OpenAI key: its model stays in the catalogue, disabled, and the spec naming it is only warned about
        assert "warning: tenant acme-corp: models.allowed: gpt-4o-mini is disabled" in output
        lines = output.splitlines()
        assert any(line.split() == ["TENANT", "URL", "MODELS", "(DEFAULT", "FIRST)"] for line in lines), output
        for name, port in tenant_ports.items():
            row = f"{name}  http://127.0.0.1:{port}  {TENANT_MODELS[name]}"
            assert any(" ".join(line.split()) == " ".join(row.split()) for line in lines), output
        assert f"prometheus: http://127.0.0.1:{ports.prometheus}" in output
        assert f"alertmanager: http://127.0.0.1:{ports.alertmanager}" in output
        # the gateway, the model servers, tenantctl itself (child restarts) and each proxy
        assert_prometheus_scrapes_everything(ports.prometheus, expected_targets=2 + MODEL_SERVERS + len(tenant_ports))
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
    """Every target up (gateway, model servers, tenantctl, each proxy): waits for the first scrapes."""
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
    """kill -9 one tenant's proxy: the other tenant keeps answering, the proxy comes back; kill -9 the server
    of both tenants' default model: it comes back too. Both restarts are logged and counted in Prometheus;
    Ctrl-C still cleans up."""
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

        model_server = f"model-{DEFAULT_MODEL}"  # the first of the catalogue's: on --first-model-port
        model_pids = processes_mentioning(f"--port {ports.model}")
        assert len(model_pids) == 1
        kill_all(model_pids)
        read_until(process, f"{model_server} is back")
        assert wait_for(lambda: answers(acme) and answers(closed), timeout=120, what="both tenants answering")
        assert processes_mentioning(f"--port {ports.model}") != model_pids

        def counted() -> dict[str, float] | None:
            restarts = restarts_in_prometheus(ports.prometheus)
            restarted = {service: count for service, count in restarts.items() if count}
            return restarts if restarted == {"proxy-closed-ai": 1, model_server: 1} else None

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


def test_validate_lists_each_tenants_models_and_warns_of_a_disabled_one():
    """Each example spec against the default catalogue: its models listed; without an OpenAI key gpt-4o-mini is
    disabled, which is a warning (it answers 503 until enabled), not a refusal."""
    result = subprocess.run(
        [sys.executable, "-m", "tenantctl", "--tenants-dir", str(TENANTS_DIR), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENAI_API_KEY": "", "OPENAI_API_KEY_FILE": ""},
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["ok", "acme-corp", "Technology", "models=smollm2-135m-instruct,gemma-3-270m,gpt-4o-mini"],
        ["ok", "closed-ai", "Insurance", "models=smollm2-135m-instruct"],
    ]
    assert result.stderr.splitlines() == [
        "warning: tenant acme-corp: models.allowed: gpt-4o-mini is disabled in the catalogue "
        "(answers 503 until enabled)"
    ]


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
            "model": free_port_run(MODEL_SERVERS),
            "prometheus": free_port(),
            "alertmanager": free_port(),
            "redis": free_port(),
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
                "--first-model-port",
                str(ports["model"]),
                "--prometheus-port",
                str(ports["prometheus"]),
                "--alertmanager-port",
                str(ports["alertmanager"]),
                "--redis-port",
                str(ports["redis"]),
                "--run-dir",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    # Named among the taken ports (another process may hold one of the other free ports by now).
    assert "already in use: " in result.stderr and f"{service} port {port}" in result.stderr, result.stderr
