"""The shared, OpenAI-compatible LLM gateway: one per platform, in the `monitoring` namespace.

Run under gunicorn with the application factory:
    gunicorn -c python:llm_common.gunicorn_conf 'llm_gateway:build_from_environment()'
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

from flask import Flask, g, request
from werkzeug.exceptions import NotFound

from llm_common.errors import Refusal, register_error_handlers
from llm_common.logging_setup import configure_logging
from llm_common.metrics_registry import MetricsRegistry, metrics_blueprint
from llm_common.openapi import openapi_blueprint
from llm_common.request_metrics import counted_routes, create_series, instrument_requests
from llm_common.tracing import install_request_tracing
from llm_gateway.auth import TenantDirectory
from llm_gateway.blueprints import chat, health
from llm_gateway.config import GatewayConfig, TenantRoute, load_gateway_config
from llm_gateway.metering import Metering
from llm_gateway.metrics import UNAUTHENTICATED, GatewayMetrics
from llm_gateway.openapi import gateway_openapi
from llm_gateway.pricing import PriceTable
from llm_gateway.routing import Router
from llm_gateway.services import GatewayServices, build_backends, embedding_route, pool_discoveries
from llm_gateway.tenant_discovery import TenantDiscovery

log = logging.getLogger(__name__)


def create_app(config: GatewayConfig) -> Flask:
    app = Flask(__name__)
    registry = MetricsRegistry(config.metrics_multiprocess_dir)
    prices = PriceTable(config.prices)
    metrics = GatewayMetrics(registry, prices)
    backends = build_backends(config, metrics)
    router = Router(backends, metrics, embedding_route(config.embeddings, backends))
    _warn_about_unpriced_models(config.tenants, router, prices)
    tenants = TenantDirectory(config.tenants)
    discovery = None
    if config.tenant_discovery is not None:
        discovery = TenantDiscovery(config.tenant_discovery, tenants, config.tenants,
                                    on_refresh=lambda known: _publish_tenants(app, metrics, router, known))
    services = GatewayServices(config=config, metrics=metrics, tenants=tenants, router=router,
                               metering=Metering(config, metrics, prices=prices), discovery=discovery)
    app.extensions["llm_gateway"] = services
    install_request_tracing(app, "gateway", _tenant_name)
    if config.metrics_port is not None:
        _serve_metrics_only_on(app, config.metrics_port)
    register_error_handlers(app, on_refusal=lambda refusal: _count_refusal(metrics, refusal))
    instrument_requests(app, requests=metrics.requests, duration=metrics.request_duration,
                        in_flight=metrics.in_flight, tenant_label=_tenant_label)
    app.register_blueprint(chat.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics_blueprint(registry))
    app.register_blueprint(openapi_blueprint(gateway_openapi()))
    _publish_tenants(app, metrics, router, config.tenants)
    for pool_discovery in pool_discoveries(config, backends):
        pool_discovery.start()
    for backend in backends.values():
        backend.start_health_checks()
    if discovery is not None:
        discovery.start()
    return app


def _tenant_name() -> str | None:
    tenant = g.get("tenant")
    return tenant.name if tenant is not None else None


def _tenant_label() -> str:
    return _tenant_name() or UNAUTHENTICATED


def _serve_metrics_only_on(app: Flask, port: int) -> None:
    """`/metrics` (every tenant's numbers) only on the metrics port, and nothing else there: on a cluster a
    NetworkPolicy lets only Prometheus reach that port, while tenants reach the API port."""

    @app.before_request
    def _metrics_port_only() -> None:
        on_metrics_port = request.environ.get("SERVER_PORT") == str(port)
        if (request.path == "/metrics") != on_metrics_port:
            raise NotFound()


def _count_refusal(metrics: GatewayMetrics, refusal: Refusal) -> None:
    metrics.refusals.labels(tenant=_tenant_label(), reason=refusal.reason).inc()


def _publish_tenants(app: Flask, metrics: GatewayMetrics, router: Router, tenants: list[TenantRoute]) -> None:
    """Budgets and zero series of the tenants the gateway knows (at start, and as discovery finds them)."""
    routes = counted_routes(app)
    for tenant in tenants:
        metrics.publish_tenant(tenant, {name: router.model_for(tenant, name) for name in router.configured_for(tenant)})
        create_series(metrics.requests, metrics.request_duration, routes, tenant.name)


def _warn_about_unpriced_models(tenants: list[TenantRoute], router: Router, prices: PriceTable) -> None:
    for tenant in tenants:
        for backend in router.configured_for(tenant):
            model = router.model_for(tenant, backend)
            if not prices.has(model):
                log.warning("no price for model %s (tenant %s, backend %s): its cost is not counted; "
                            "add it to the gateway config's 'prices'", model, tenant.name, backend)


def build_from_environment(environ: Mapping[str, str] | None = None) -> Flask:
    """Entry point for gunicorn: load and validate the config once, then build the app."""
    configure_logging()
    return create_app(load_gateway_config(os.environ if environ is None else environ))
