"""The tenant LLM proxy: one per tenant, carrying that tenant's system prompt.

Run under gunicorn with the application factory:
    gunicorn -c python:llm_common.gunicorn_conf 'app:build_from_environment()'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from app.blueprints import ask, chat_page, documents, embeddings, health, models, openai_compat, responses
from app.config import ProxyConfig, load_proxy_config
from app.cross_site import refuse_cross_site_requests
from app.end_user_keys import require_end_user_keys
from app.errors import register_error_handlers
from app.gateway_client import GatewayClient
from app.guardrails import GuardrailCheck
from app.knowledge.retrieval import KnowledgeBase
from app.knowledge.store import KnowledgeStore
from app.metrics import ProxyMetrics, metrics_blueprint
from app.openapi import openapi_blueprint, proxy_openapi
from app.request_metrics import counted_routes, instrument_requests
from app.services import ProxyServices
from app.tracing import install_request_tracing
from llm_common.logging_setup import configure_logging
from llm_common.metrics_registry import MetricsRegistry
from llm_common.request_metrics import create_series


def create_app(config: ProxyConfig) -> Flask:
    app = Flask(__name__)
    registry = MetricsRegistry(config.metrics_multiprocess_dir)
    metrics = ProxyMetrics(registry, config.tenant)
    gateway = GatewayClient(
        config.gateway_url,
        config.gateway_key,
        connect_timeout=config.connect_timeout_seconds,
        read_timeout=config.read_timeout_seconds,
        on_failure=metrics.count_gateway_error,
    )
    app.extensions["tenant_proxy"] = ProxyServices(
        config=config,
        metrics=metrics,
        gateway=gateway,
        guardrails=GuardrailCheck(config.guardrails),
        knowledge=_knowledge_base(config, gateway),
    )
    install_request_tracing(app, "proxy", lambda: config.tenant)
    register_error_handlers(app, on_refusal=lambda refusal: metrics.count_refusal(refusal.reason))
    instrument_requests(
        app,
        requests=metrics.requests,
        duration=metrics.request_duration,
        in_flight=metrics.in_flight,
        tenant_label=lambda: config.tenant,
    )
    # After the metrics hooks, so refused requests are counted.
    refuse_cross_site_requests(app)
    require_end_user_keys(app, config.end_user_key_sha256, config.admin_key_sha256)
    app.register_blueprint(ask.blueprint)
    app.register_blueprint(openai_compat.blueprint)
    app.register_blueprint(responses.blueprint)
    app.register_blueprint(embeddings.blueprint)
    app.register_blueprint(models.blueprint)
    app.register_blueprint(documents.blueprint)
    app.register_blueprint(chat_page.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics_blueprint(registry))
    app.register_blueprint(openapi_blueprint(proxy_openapi(config.tenant, bool(config.end_user_key_sha256))))
    create_series(metrics.requests, metrics.request_duration, counted_routes(app), config.tenant)
    return app


def _knowledge_base(config: ProxyConfig, gateway: GatewayClient) -> KnowledgeBase | None:
    if config.knowledge_dir is None:
        return None
    return KnowledgeBase(
        KnowledgeStore(Path(config.knowledge_dir)),
        gateway.embed,
        top_k=config.knowledge_top_k,
        min_score=config.knowledge_min_score,
        chunk_words=config.chunk_words,
        overlap_words=config.chunk_overlap_words,
        max_chunks=config.max_chunks_per_document,
    )


def build_from_environment(environ: Mapping[str, str] | None = None) -> Flask:
    """Entry point for gunicorn: load and validate the config once, then build the app."""
    configure_logging()
    return create_app(load_proxy_config(os.environ if environ is None else environ))
