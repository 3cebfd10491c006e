"""The gateway's long-lived objects, built once per worker by create_app; `start` and `aclose`
run on the worker's event loop (the app's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_gateway.auth import TenantDirectory
from llm_gateway.backends import AiohttpClient, AsyncSdkClient, BackendPool, PoolMember
from llm_gateway.backends.outlier import OutlierPolicy
from llm_gateway.completions import Completions
from llm_gateway.config import EmbeddingsConfig, GatewayConfig, OpenAIConfig, PoolConfig
from llm_gateway.metering import Metering
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.routing import EmbeddingRoute, Router

EMBEDDINGS_BACKEND = "embeddings"  # the backend name of the embedding servers' pool

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


def build_backends(config: GatewayConfig, metrics: GatewayMetrics) -> dict[str, BackendPool]:
    backends: dict[str, BackendPool] = {}
    if config.pool is not None:
        backends["vllm"] = _pool("vllm", config.pool, metrics)
    if config.openai is not None:
        backends["openai"] = _openai_backend(config.openai, metrics)
    if config.embeddings is not None and config.embeddings.backend == "pool":
        backends[EMBEDDINGS_BACKEND] = _pool(EMBEDDINGS_BACKEND, config.embeddings.pool, metrics)
    return backends


def embedding_route(embeddings: EmbeddingsConfig | None, backends: dict[str, BackendPool]) -> EmbeddingRoute | None:
    """The configured embedding model on its backend (None: embeddings follow tenant routing)."""
    if embeddings is None:
        return None
    backend = backends[EMBEDDINGS_BACKEND if embeddings.backend == "pool" else "openai"]
    return EmbeddingRoute(backend, embeddings.model, embeddings.dimensions)


def _pool(name: str, pool: PoolConfig, metrics: GatewayMetrics) -> BackendPool:
    """A pool of the configured endpoints (with `discovery`: none until pool_discoveries() finds them)."""
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
        capacity_per_member=pool.capacity_per_member,
        max_queued_per_tenant=pool.max_queued_per_tenant,
        queue_timeout=pool.queue_timeout_seconds,
        share_hold=pool.share_hold_seconds,
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

    pools = {"vllm": config.pool, EMBEDDINGS_BACKEND: config.embeddings.pool if config.embeddings else None}
    return [
        PoolDiscovery(pool.discovery, backends[name], lambda url, pool=pool: pool_member(pool, url))
        for name, pool in pools.items()
        if pool is not None and pool.discovery is not None and name in backends
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
    return BackendPool("openai", [PoolMember(settings.base_url, client)], metrics, outlier=OutlierPolicy())
