"""The gateway's long-lived objects, built once per worker by create_app; `start` and `aclose`
run on the worker's event loop (the app's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_common.catalogue import OPENAI_BACKEND, CatalogueModel
from llm_gateway.auth import TenantDirectory
from llm_gateway.backends import AiohttpClient, AsyncSdkClient, BackendPool, PoolMember
from llm_gateway.backends.outlier import OutlierPolicy
from llm_gateway.completions import Completions
from llm_gateway.concurrency import ConcurrencyLeases
from llm_gateway.config import GatewayConfig, OpenAIConfig, PoolConfig
from llm_gateway.limits import SharedCounters
from llm_gateway.metering import Metering
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.pool_admission import AdmissionHub
from llm_gateway.routing import Router

if TYPE_CHECKING:
    from llm_gateway.pool_discovery import PoolDiscovery
    from llm_gateway.tenant_discovery import TenantDiscovery


@dataclass(frozen=True)
class GatewayServices:
    config: GatewayConfig
    metrics: GatewayMetrics
    tenants: TenantDirectory
    router: Router
    metering: Metering
    completions: Completions
    discovery: TenantDiscovery | None = None
    pool_discoveries: tuple[PoolDiscovery, ...] = ()

    async def start(self) -> None:
        """Connect to Redis, then start the background work: health checks (event loop), cluster readers (threads)."""
        await self.metering.start()
        for pool_discovery in self.pool_discoveries:
            pool_discovery.start()
        for backend in self.router.backends.values():
            backend.start_health_checks()
        if self.discovery is not None:
            self.discovery.start()

    async def aclose(self) -> None:
        for poller in (*self.pool_discoveries, *([self.discovery] if self.discovery else [])):
            poller.stop()
        for backend in self.router.backends.values():
            await backend.aclose()
        await self.metering.aclose()


def build_backends(
    config: GatewayConfig,
    metrics: GatewayMetrics,
    counters: SharedCounters | None = None,
    leases: ConcurrencyLeases | None = None,
) -> dict[str, BackendPool]:
    """One pool per self-hosted model (named after it), and OpenAI's when a key is configured. With Redis
    (`counters`, and the worker's `leases` that keep its slots alive), a model's slots are shared by every
    gateway process (pool_admission.py)."""
    hub = AdmissionHub(counters, leases) if counters is not None and leases is not None else None
    backends = {name: _pool(name, pool, config.models[name], metrics, hub) for name, pool in config.pools.items()}
    if config.openai is not None:
        backends[OPENAI_BACKEND] = _openai_backend(config.openai, metrics)
    return backends


def _pool(
    name: str, pool: PoolConfig, model: CatalogueModel, metrics: GatewayMetrics, hub: AdmissionHub | None
) -> BackendPool:
    """A model's pool of the configured endpoints (with `discovery`: none until pool_discoveries() finds them);
    with `max_sequences` (per member, from the catalogue), requests beyond it wait in fair queues, shared
    by every gateway process through `hub` (Redis) when there is one."""
    outlier = OutlierPolicy(
        consecutive_failures=pool.consecutive_failures,
        eject_seconds=pool.eject_cooldown_seconds,
        max_ejection_percent=pool.max_ejection_percent,
    )
    return BackendPool(
        name,
        [pool_member(pool, url) for url in pool.endpoints],
        metrics,
        outlier=outlier,
        health_path=pool.health_path,
        health_interval=pool.health_interval_seconds,
        unhealthy_threshold=pool.unhealthy_threshold,
        capacity_per_member=model.max_sequences,
        max_queued_per_tenant=pool.max_queued_per_tenant,
        queue_timeout=pool.queue_timeout_seconds,
        share_hold=pool.share_hold_seconds,
        engine=model.engine,
        admission_hub=hub if model.max_sequences is not None else None,
    )


def pool_member(pool: PoolConfig, url: str) -> PoolMember:
    return PoolMember(
        url,
        AiohttpClient(
            url + "/v1",
            pool.api_key,
            connect_timeout=pool.connect_timeout_seconds,
            read_timeout=pool.read_timeout_seconds,
        ),
    )


def pool_discoveries(config: GatewayConfig, backends: dict[str, BackendPool]) -> list[PoolDiscovery]:
    """One PoolDiscovery per pool configured with `discovery` (members = a Service's ready Pods)."""
    from llm_gateway.pool_discovery import PoolDiscovery

    return [
        PoolDiscovery(pool.discovery, backends[name], lambda url, pool=pool: pool_member(pool, url))
        for name, pool in config.pools.items()
        if pool.discovery is not None
    ]


def _openai_backend(settings: OpenAIConfig, metrics: GatewayMetrics) -> BackendPool:
    """OpenAI as a pool of one: ejected only when it cannot be reached (never by 5xx or 429 answers),
    no active probing of a paid API."""
    client = AsyncSdkClient(
        settings.base_url,
        settings.api_key,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
    return BackendPool(OPENAI_BACKEND, [PoolMember(settings.base_url, client)], metrics, outlier=OutlierPolicy())
