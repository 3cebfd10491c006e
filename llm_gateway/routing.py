"""Routing strategy: which backends a tenant may use, in which order, and failover between them.

`auto` prefers the self-hosted vLLM pool and falls back to OpenAI; a backend
that is not configured, or has no usable member right now, is skipped. A
backend that fails before sending any byte hands the request to the next one.

Embeddings go to the platform's one embedding model when the config names one
(`EmbeddingRoute`), whatever the tenant's chat backend; otherwise they follow
the tenant's chat routing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, TypeVar

from llm_common.errors import ApiError
from llm_gateway.backends import BackendPool, ChatStream, UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.config import TenantRoute
from llm_gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFERENCE_ORDER = {"vllm": ("vllm",), "openai": ("openai",), "auto": ("vllm", "openai")}


@dataclass(frozen=True)
class EmbeddingRoute:
    """The platform's embedding model: which backend serves it, and under which name."""

    backend: BackendPool
    model: str
    dimensions: int | None = None

    def upstream_payload(self, payload: dict) -> dict:
        """The caller's request with our model (and dimensions): callers cannot pick another space."""
        upstream = {**payload, "model": self.model}
        if self.dimensions is not None:
            upstream["dimensions"] = self.dimensions
        return upstream


class Router:
    def __init__(self, backends: dict[str, BackendPool], metrics: GatewayMetrics,
                 embedding: EmbeddingRoute | None = None):
        self.backends = backends
        self.embedding = embedding
        self._metrics = metrics

    def configured_for(self, tenant: TenantRoute) -> list[str]:
        """The names of the backends this gateway has for the tenant, in preference order."""
        return [name for name in PREFERENCE_ORDER[tenant.backend] if name in self.backends]

    def candidates(self, tenant: TenantRoute) -> list[BackendPool]:
        """Configured backends in preference order, currently usable ones first."""
        configured = [self.backends[name] for name in self.configured_for(tenant)]
        if not configured:
            raise ApiError(503, f"backend '{tenant.backend}' of tenant '{tenant.name}' is not configured "
                                "on this gateway", code="backend_not_configured")
        return sorted(configured, key=lambda backend: not backend.is_available())

    @staticmethod
    def model_for(tenant: TenantRoute, backend: str) -> str:
        """The tenant's configured model on `backend` (by name)."""
        return tenant.openai_model if backend == "openai" else tenant.model

    def _tenant_attempts(self, tenant: TenantRoute, payload: dict) -> list[tuple[BackendPool, dict]]:
        return [(backend, {**payload, "model": self.model_for(tenant, backend.name)})
                for backend in self.candidates(tenant)]

    def _with_failover(self, tenant: TenantRoute, attempts: list[tuple[BackendPool, dict]],
                       call: Callable[[BackendPool, dict], T]) -> tuple[str, T]:
        failures: list[UpstreamUnavailable] = []
        for backend, upstream_payload in attempts:
            try:
                return backend.name, call(backend, upstream_payload)
            except UpstreamUnavailable as error:
                log.warning("tenant %s: backend %s failed: %s", tenant.name, backend.name, error)
                failures.append(error)
            except UpstreamRejected as error:
                raise ApiError(error.status, f"{backend.name}: {error.message}", code="upstream_rejected") from None
        raise _exhausted(failures)

    def chat(self, tenant: TenantRoute, payload: dict) -> tuple[str, UpstreamReply]:
        return self._with_failover(tenant, self._tenant_attempts(tenant, payload),
                                   lambda backend, p: backend.chat(p))

    def open_chat_stream(self, tenant: TenantRoute, payload: dict) -> tuple[str, ChatStream]:
        return self._with_failover(tenant, self._tenant_attempts(tenant, payload),
                                   lambda backend, p: backend.open_chat_stream(p))

    def embedding_model_for(self, tenant: TenantRoute, backend: str) -> str:
        """The model that produced a tenant's embeddings on `backend` (for metrics and cost)."""
        return self.embedding.model if self.embedding is not None else self.model_for(tenant, backend)

    def embeddings(self, tenant: TenantRoute, payload: dict) -> tuple[str, UpstreamReply]:
        if self.embedding is None:
            attempts = self._tenant_attempts(tenant, payload)
        else:
            attempts = [(self.embedding.backend, self.embedding.upstream_payload(payload))]
        return self._with_failover(tenant, attempts, lambda backend, p: backend.embeddings(p))


def _exhausted(failures: list[UpstreamUnavailable]) -> ApiError:
    """502 when a backend answered with an error, 503 when none could be reached at all."""
    detail = "; ".join(str(failure) for failure in failures)
    if any(failure.status for failure in failures):
        return ApiError(502, f"every backend failed: {detail}", code="upstream_error")
    return ApiError(503, f"no backend available: {detail}", code="backend_unavailable")
