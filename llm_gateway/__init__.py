"""The shared, OpenAI-compatible LLM gateway: one per platform, in the `monitoring` namespace.

Run under gunicorn with the application factory:
    gunicorn -c python:llm_common.gunicorn_conf 'llm_gateway:build_from_environment()'
"""

from __future__ import annotations

import os
from typing import Mapping

from flask import Flask, g

from llm_common.errors import register_error_handlers
from llm_common.logging_setup import configure_logging
from llm_common.metrics_registry import MetricsRegistry, metrics_blueprint
from llm_common.request_metrics import instrument_requests
from llm_gateway.auth import TenantDirectory
from llm_gateway.blueprints import chat, health
from llm_gateway.config import GatewayConfig, load_gateway_config
from llm_gateway.metrics import UNAUTHENTICATED, GatewayMetrics
from llm_gateway.routing import Router
from llm_gateway.services import GatewayServices, build_backends, embedding_route
from llm_gateway.tenant_discovery import TenantDiscovery


def create_app(config: GatewayConfig) -> Flask:
    app = Flask(__name__)
    registry = MetricsRegistry(config.metrics_multiprocess_dir)
    metrics = GatewayMetrics(registry)
    backends = build_backends(config, metrics)
    tenants = TenantDirectory(config.tenants)
    discovery = None
    if config.tenant_discovery is not None:
        discovery = TenantDiscovery(config.tenant_discovery, tenants, config.tenants)
    router = Router(backends, metrics, embedding_route(config.embeddings, backends))
    services = GatewayServices(config=config, metrics=metrics, tenants=tenants, router=router, discovery=discovery)
    app.extensions["llm_gateway"] = services
    register_error_handlers(app)
    instrument_requests(app, requests=metrics.requests, duration=metrics.request_duration,
                        in_flight=metrics.in_flight, tenant_label=_tenant_label)
    app.register_blueprint(chat.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics_blueprint(registry))
    for backend in backends.values():
        backend.start_health_checks()
    if discovery is not None:
        discovery.start()
    return app


def _tenant_label() -> str:
    tenant = g.get("tenant")
    return tenant.name if tenant is not None else UNAUTHENTICATED


def build_from_environment(environ: Mapping[str, str] | None = None) -> Flask:
    """Entry point for gunicorn: load and validate the config once, then build the app."""
    configure_logging()
    return create_app(load_gateway_config(os.environ if environ is None else environ))
