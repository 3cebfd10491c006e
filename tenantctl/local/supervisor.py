"""Local mode survives a crashing child: whatever exits is started again, with backoff.

`tenantctl up` calls `Supervisor.check()` about twice a second from its main thread (children
must be started from the thread that outlives them: their death signal follows that thread).
For each child (Redis, model servers, gateway, proxies, Prometheus):

- it exits (any cause: a crash, the OOM killer, `kill -9`): logged with its exit code, then
  started again after a backoff of 1 s, 2 s, 4 s, ... up to 30 s (`RestartPolicy`). Leftovers of
  its process group (e.g. gunicorn workers of a dead master) are killed first, so the port is free;
- a restarted child that does not become healthy within the start timeout counts as failed again;
- a child healthy for 60 s has its failures forgotten, so an occasional crash never adds up;
- after 5 failures in a row (each within 60 s of its restart) tenantctl gives up on that child:
  it stays down, logged, `tenantctl_child_up` stays 0 (and its dependants answer 502/503 as
  they would on a cluster), and everything else keeps running. Ctrl-C stops all as usual.

Metrics (served by tenantctl itself on a loopback port that the local Prometheus scrapes):
`tenantctl_child_restarts_total{service}` (restarts started) and `tenantctl_child_up{service}`
(1 while the child runs and answered its health check). A child that hangs without exiting is
not restarted: only an exit is unambiguous on one machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from tenantctl.processes import ManagedProcess

Log = Callable[[str], None]


@dataclass(frozen=True)
class RestartPolicy:
    initial_delay: float = 1.0
    max_delay: float = 30.0
    max_failures: int = 5  # in a row; then the child stays down
    stable_after: float = 60.0  # healthy this long: earlier failures are forgotten
    startup_timeout: float = 180.0

    def delay(self, failures: int) -> float:
        return min(self.initial_delay * 2 ** (failures - 1), self.max_delay)


class ChildMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.restarts = Counter(
            "tenantctl_child_restarts_total",
            "Local mode: restarts of a child process that had exited.",
            ["service"],
            registry=registry,
        )
        self.up = Gauge(
            "tenantctl_child_up",
            "Local mode: 1 while the child process runs and answered its "
            "health check, 0 while it is down or restarting.",
            ["service"],
            registry=registry,
        )

    def started(self, service: str) -> None:
        self.restarts.labels(service=service)  # the series exists at 0 from the start
        self.up.labels(service=service).set(1)


@dataclass
class _Child:
    process: ManagedProcess
    state: str = "running"  # running | waiting | starting | given_up
    failures: int = 0
    since: float = field(default_factory=time.monotonic)  # when the current state began
    restart_at: float = 0.0


class Supervisor:
    def __init__(
        self, processes: list[ManagedProcess], metrics: ChildMetrics, log: Log, policy: RestartPolicy = RestartPolicy()
    ):
        self.children = [_Child(process) for process in processes]
        self.metrics = metrics
        self.log = log
        self.policy = policy

    def check(self) -> None:
        """One look at every child; never blocks longer than one health check."""
        now = time.monotonic()
        for child in self.children:
            if child.state == "running":
                if not child.process.is_running():
                    self._failed(child, now, f"exited with code {child.process.popen.returncode}")
                elif child.failures and now - child.since >= self.policy.stable_after:
                    child.failures = 0
            elif child.state == "waiting" and now >= child.restart_at:
                self._restart(child, now)
            elif child.state == "starting":
                self._check_start(child, now)

    def given_up(self) -> list[str]:
        return [child.process.name for child in self.children if child.state == "given_up"]

    def _failed(self, child: _Child, now: float, why: str) -> None:
        name = child.process.name
        self.metrics.up.labels(service=name).set(0)
        child.failures += 1
        if child.failures > self.policy.max_failures:
            child.state = "given_up"
            child.process.stop()
            self.log(
                f"tenantctl: {name} {why}; it failed {child.failures} times in a row, so it stays down "
                f"(log: {child.process.log_path}); the other services keep running"
            )
            return
        delay = self.policy.delay(child.failures)
        child.state, child.restart_at = "waiting", now + delay
        self.log(
            f"tenantctl: {name} {why}; restarting it in {delay:g}s (failure {child.failures} of at most "
            f"{self.policy.max_failures} in a row; log: {child.process.log_path})"
        )

    def _restart(self, child: _Child, now: float) -> None:
        child.process.stop()  # reaps it and kills what is left of its process group (the port must be free)
        child.process.start()
        self.metrics.restarts.labels(service=child.process.name).inc()
        child.state, child.since = "starting", now

    def _check_start(self, child: _Child, now: float) -> None:
        if not child.process.is_running():
            self._failed(child, now, f"exited with code {child.process.popen.returncode} while starting")
        elif child.process.is_healthy():
            child.state, child.since = "running", now
            self.metrics.up.labels(service=child.process.name).set(1)
            self.log(f"tenantctl: {child.process.name} is back")
        elif now - child.since > self.policy.startup_timeout:
            child.process.stop()
            self._failed(child, now, f"was not healthy {self.policy.startup_timeout:g}s after its restart")
