"""The supervisor of `tenantctl up` with real child processes: a crashed child comes back, counted;
a crash loop backs off and ends with the child left down.
(`tenantctl up` itself: tests/tenantctl/commands/test_cli.py.)"""

from __future__ import annotations

import os
import signal
import sys

from prometheus_client import CollectorRegistry

from tenantctl.local.supervisor import ChildMetrics, RestartPolicy, Supervisor
from tenantctl.processes import ManagedProcess
from tests.helpers import free_port, wait_for

FAST = RestartPolicy(initial_delay=0.05, max_delay=0.2, max_failures=3, stable_after=60, startup_timeout=30)


def supervised(process: ManagedProcess, policy: RestartPolicy = FAST) -> tuple[Supervisor, CollectorRegistry, list]:
    registry, logged = CollectorRegistry(), []
    metrics = ChildMetrics(registry)
    process.start()
    metrics.started(process.name)
    return Supervisor([process], metrics, logged.append, policy), registry, logged


def sample(registry: CollectorRegistry, name: str, service: str) -> float:
    return registry.get_sample_value(name, {"service": service})


def test_a_killed_child_is_restarted_and_counted(tmp_path):
    port = free_port()
    server = ManagedProcess(
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        f"http://127.0.0.1:{port}/",
        tmp_path / "web.log",
        cwd=tmp_path,
    )
    supervisor, registry, logged = supervised(server)
    try:
        server.wait_healthy(30)
        first_pid = server.pid
        os.kill(first_pid, signal.SIGKILL)

        def back() -> bool:
            supervisor.check()
            return server.pid != first_pid and sample(registry, "tenantctl_child_up", "web") == 1

        wait_for(back, timeout=60, what="the web server restarted and healthy")
        assert sample(registry, "tenantctl_child_restarts_total", "web") == 1
        assert server.is_healthy()
        assert any("web exited with code -9; restarting it in 0.05s" in line for line in logged), logged
        assert any("web is back" in line for line in logged)
    finally:
        server.stop()


def test_a_crash_loop_backs_off_and_gives_up(tmp_path):
    crashing = ManagedProcess(
        "crasher",
        [sys.executable, "-c", "raise SystemExit(3)"],
        "unused",
        tmp_path / "crasher.log",
        ready=lambda: False,
    )
    supervisor, registry, logged = supervised(crashing)

    def given_up() -> bool:
        supervisor.check()
        return supervisor.given_up() == ["crasher"]

    wait_for(given_up, timeout=60, what="the supervisor to give up")
    assert sample(registry, "tenantctl_child_restarts_total", "crasher") == FAST.max_failures
    assert sample(registry, "tenantctl_child_up", "crasher") == 0
    delays = [line.split("restarting it in ")[1].split("s ")[0] for line in logged if "restarting it in" in line]
    assert delays == ["0.05", "0.1", "0.2"]  # doubling, capped at max_delay
    assert "failed 4 times in a row, so it stays down" in logged[-1]
    for _ in range(3):  # stays down
        supervisor.check()
    assert not crashing.is_running()
    assert sample(registry, "tenantctl_child_restarts_total", "crasher") == FAST.max_failures


def test_backoff_grows_and_is_capped():
    policy = RestartPolicy(initial_delay=1, max_delay=30)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
