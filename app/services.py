"""The proxy's long-lived objects, built once per worker by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.config import ProxyConfig
from app.gateway_client import GatewayClient
from app.guardrails import GuardrailCheck
from app.knowledge.retrieval import KnowledgeBase
from app.metrics import ProxyMetrics


@dataclass(frozen=True)
class ProxyServices:
    config: ProxyConfig
    metrics: ProxyMetrics
    gateway: GatewayClient
    guardrails: GuardrailCheck
    knowledge: KnowledgeBase | None = None  # None when the tenant has no knowledge directory


def current_services() -> ProxyServices:
    return current_app.extensions["tenant_proxy"]
