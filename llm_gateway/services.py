"""The gateway's long-lived objects, built once per worker by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_gateway.auth import TenantDirectory
from llm_gateway.backends import BackendPool, HttpxClient, PoolMember, SdkClient
from llm_gateway.config import GatewayConfig, OpenAIConfig, PoolConfig
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.routing import Router

if TYPE_CHECKING:
    from llm_gateway.tenant_discovery import TenantDiscovery


@dataclass(frozen=True)
class GatewayServices:
    config: GatewayConfig
    metrics: GatewayMetrics
    tenants: TenantDirectory
    router: Router
    discovery: "TenantDiscovery | None" = None


def build_backends(config: GatewayConfig, metrics: GatewayMetrics) -> dict[str, BackendPool]:
    backends: dict[str, BackendPool] = {}
    if config.pool is not None:
        backends["vllm"] = _vllm_pool(config.pool, metrics)
    if config.openai is not None:
        backends["openai"] = _openai_backend(config.openai, metrics)
    return backends


def _vllm_pool(pool: PoolConfig, metrics: GatewayMetrics) -> BackendPool:
    members = [
        PoolMember(url, HttpxClient(url + "/v1", pool.api_key, connect_timeout=pool.connect_timeout_seconds,
                                    read_timeout=pool.read_timeout_seconds))
        for url in pool.endpoints
    ]
    return BackendPool("vllm", members, metrics, eject_cooldown=pool.eject_cooldown_seconds,
                       health_path=pool.health_path, health_interval=pool.health_interval_seconds,
                       unhealthy_threshold=pool.unhealthy_threshold)


def _openai_backend(settings: OpenAIConfig, metrics: GatewayMetrics) -> BackendPool:
    """OpenAI as a pool of one: passive ejection after a failure, no active probing of a paid API."""
    client = SdkClient(settings.base_url, settings.api_key, connect_timeout=settings.connect_timeout_seconds,
                       read_timeout=settings.read_timeout_seconds)
    return BackendPool("openai", [PoolMember(settings.base_url, client)], metrics, eject_cooldown=10.0)
