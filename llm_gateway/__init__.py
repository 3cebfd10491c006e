"""The shared, OpenAI-compatible LLM gateway: one per platform, in the `monitoring` namespace.

An ASGI app (Starlette) on uvicorn's event loop (uvloop, httptools) in gunicorn's uvicorn
workers, so one worker holds thousands of streamed answers at once; every I/O on the request
path is awaited (Redis, the ledger, the backends). Run under gunicorn with the application factory:
    gunicorn -c python:llm_gateway.gunicorn_conf 'llm_gateway:build_from_environment()'
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware

from llm_common.errors import Refusal
from llm_common.logging_setup import configure_logging
from llm_common.metrics_registry import MetricsRegistry
from llm_common.request_metrics import create_series
from llm_gateway.auth import TenantDirectory
from llm_gateway.completions import Completions
from llm_gateway.config import GatewayConfig, load_gateway_config
from llm_gateway.errors import exception_handlers
from llm_gateway.metering import Metering
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.observation import RequestObservation, current_tenant
from llm_gateway.openapi import gateway_openapi
from llm_gateway.prefix_cache import CacheSalts
from llm_gateway.routes.openai_api import ROUTES as OPENAI_ROUTES
from llm_gateway.routes.operations import operation_routes
from llm_gateway.routing import Router
from llm_gateway.services import GatewayServices, build_backends, pool_discoveries
from llm_gateway.tenant_discovery import TenantDiscovery
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)
COUNTED_ROUTES = sorted(route.path for route in OPENAI_ROUTES)


def create_app(config: GatewayConfig) -> Starlette:
    registry = MetricsRegistry(config.metrics_multiprocess_dir)
    metrics = GatewayMetrics(registry)
    metering = Metering(config, metrics)  # its Redis counters and lease refresh also serve the pools' admission
    backends = build_backends(config, metrics, metering.counters, metering.leases)
    router = Router(config.catalogue, backends, metrics, cache_salts=CacheSalts(config.cache_salt_secret))
    tenants = TenantDirectory(config.tenants)
    discovery = None
    if config.tenant_discovery is not None:
        discovery = TenantDiscovery(
            config.tenant_discovery,
            tenants,
            config.tenants,
            on_refresh=lambda known: _publish_tenants(metrics, router, known),
        )
    services = GatewayServices(
        config=config,
        metrics=metrics,
        tenants=tenants,
        router=router,
        metering=metering,
        completions=Completions(metering, router, metrics),
        discovery=discovery,
        pool_discoveries=tuple(pool_discoveries(config, backends)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await services.start()
        try:
            yield
        finally:
            await services.aclose()

    routes = [*OPENAI_ROUTES, *operation_routes(registry, gateway_openapi())]
    observation = Middleware(
        RequestObservation,
        service="gateway",
        routes={route.path for route in routes},
        requests=metrics.requests,
        duration=metrics.request_duration,
        in_flight=metrics.in_flight,
        metrics_port=config.metrics_port,
    )
    app = Starlette(
        routes=routes,
        middleware=[observation],
        lifespan=lifespan,
        exception_handlers=exception_handlers(on_refusal=lambda refusal: _count_refusal(metrics, refusal)),
    )
    app.state.services = services
    _publish_tenants(metrics, router, config.tenants)
    return app


def _count_refusal(metrics: GatewayMetrics, refusal: Refusal) -> None:
    metrics.refusals.labels(tenant=current_tenant(), reason=refusal.reason).inc()


def _publish_tenants(metrics: GatewayMetrics, router: Router, tenants: list[TenantRoute]) -> None:
    """Budgets and zero series of the tenants the gateway knows (at start, and as discovery finds them)."""
    for tenant in tenants:
        metrics.publish_tenant(
            tenant, {model: router.catalogue.backend(model) for model in router.allowed_models(tenant)}
        )
        create_series(metrics.requests, metrics.request_duration, COUNTED_ROUTES, tenant.name)


def build_from_environment(environ: Mapping[str, str] | None = None) -> Starlette:
    """Entry point for gunicorn: load and validate the config once, then build the app."""
    configure_logging()
    return create_app(load_gateway_config(os.environ if environ is None else environ))
