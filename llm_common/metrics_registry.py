"""Prometheus exposition that stays correct under several gunicorn workers.

With `PROMETHEUS_MULTIPROC_DIR` set (our gunicorn config always sets it),
prometheus-client writes each worker's samples to files there and `/metrics`
merges them; metrics are then created unregistered. Without it (a single
process), metrics live in one private registry per app. Each service serves `render()`
at `/metrics` (app/metrics.py, llm_gateway/routes/operations.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

# Seconds, for request durations, time to first token and pool member latency alike;
# 10 is a bucket boundary on purpose: the latency SLO alert counts answers within 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class MetricsRegistry:
    def __init__(self, multiprocess_dir: str | None):
        self.multiprocess_dir = multiprocess_dir
        self._registry = CollectorRegistry(auto_describe=True)

    @property
    def for_new_metrics(self) -> CollectorRegistry | None:
        """The registry to pass as `registry=` when creating a metric."""
        return None if self.multiprocess_dir else self._registry

    def render(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self._registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)
