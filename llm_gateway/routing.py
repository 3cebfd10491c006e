"""Routing strategy: which backends a tenant may use, in which order, and failover between them.

`auto` prefers the self-hosted vLLM pool and falls back to OpenAI; a backend
that is not configured, or has no usable member right now, is skipped. A
backend that fails before sending any byte hands the request to the next one.

What a backend says about a request is the caller's, never the backend's health:
a 4xx goes back to the caller (in the caller's terms; the backend's own text
only to the log), and a 429 holds back only that tenant from that backend
(`backoff.py`) while the backend keeps serving everyone else.

Requests to the vLLM pool carry the tenant's `cache_salt` (prefix_cache.py).

Embeddings go to the platform's one embedding model when the config names one
(`EmbeddingRoute`), whatever the tenant's chat backend; otherwise they follow
the tenant's chat routing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from llm_common.errors import ApiError
from llm_gateway.backends import AsyncChatStream, BackendPool, UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.backoff import TenantBackoff
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.prefix_cache import CacheSalts
from tenant_spec.route import TenantRoute

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
    def __init__(
        self,
        backends: dict[str, BackendPool],
        metrics: GatewayMetrics,
        embedding: EmbeddingRoute | None = None,
        backoff: TenantBackoff | None = None,
        cache_salts: CacheSalts | None = None,
    ):
        self.backends = backends
        self.embedding = embedding
        self.backoff = backoff or TenantBackoff()
        self.cache_salts = cache_salts or CacheSalts(None)
        self._metrics = metrics

    def configured_for(self, tenant: TenantRoute) -> list[str]:
        """The names of the backends this gateway has for the tenant, in preference order."""
        return [name for name in PREFERENCE_ORDER[tenant.backend] if name in self.backends]

    def candidates(self, tenant: TenantRoute) -> list[BackendPool]:
        """Configured backends in preference order, currently usable ones first."""
        configured = [self.backends[name] for name in self.configured_for(tenant)]
        if not configured:
            raise ApiError(
                503,
                f"backend '{tenant.backend}' of tenant '{tenant.name}' is not configured on this gateway",
                code="backend_not_configured",
            )
        return sorted(configured, key=lambda backend: not backend.is_available())

    @staticmethod
    def model_for(tenant: TenantRoute, backend: str) -> str:
        """The tenant's configured model on `backend` (by name)."""
        return tenant.openai_model if backend == "openai" else tenant.model

    def _tenant_attempts(
        self, tenant: TenantRoute, payload: dict, salted: bool = True
    ) -> list[tuple[BackendPool, dict]]:
        """(backend, what it is sent) in preference order; completions carry the vLLM cache salt."""
        attempts = [
            (backend, {**payload, "model": self.model_for(tenant, backend.name)}) for backend in self.candidates(tenant)
        ]
        if salted:
            attempts = [
                (backend, self.cache_salts.salted(tenant, backend.name, upstream)) for backend, upstream in attempts
            ]
        return attempts

    async def _with_failover(
        self,
        tenant: TenantRoute,
        attempts: list[tuple[BackendPool, dict]],
        call: Callable[[BackendPool, dict], Awaitable[T]],
    ) -> tuple[str, T]:
        failures: list[tuple[str, UpstreamUnavailable]] = []
        waits: list[float] = []
        for backend, upstream_payload in attempts:
            wait = self.backoff.remaining(tenant.name, backend.name)
            if wait:
                waits.append(wait)
                continue
            try:
                return backend.name, await call(backend, upstream_payload)
            except UpstreamUnavailable as error:
                log.warning("tenant %s: backend %s failed: %s", tenant.name, backend.name, error)
                failures.append((backend.name, error))
            except UpstreamRejected as error:
                if not error.throttled:
                    raise _rejected(tenant, backend.name, error) from None
                waits.append(self.backoff.back_off(tenant.name, backend.name, error.retry_after))
                self._metrics.upstream_errors.labels(backend=backend.name, reason="throttled").inc()
                log.warning(
                    "tenant %s: backend %s asked it to slow down (429, Retry-After %s): %s",
                    tenant.name,
                    backend.name,
                    error.retry_after,
                    error,
                )
        if waits:
            raise _throttled(min(waits))
        raise _exhausted(failures)

    async def chat(
        self, tenant: TenantRoute, payload: dict, request_id: str | None = None
    ) -> tuple[str, UpstreamReply]:
        return await self._with_failover(
            tenant, self._tenant_attempts(tenant, payload), lambda backend, p: backend.chat(p, request_id, tenant)
        )

    async def open_chat_stream(
        self, tenant: TenantRoute, payload: dict, request_id: str | None = None
    ) -> tuple[str, AsyncChatStream]:
        return await self._with_failover(
            tenant,
            self._tenant_attempts(tenant, payload),
            lambda backend, p: backend.open_chat_stream(p, request_id, tenant),
        )

    def embedding_model_for(self, tenant: TenantRoute, backend: str) -> str:
        """The model that produced a tenant's embeddings on `backend` (for metrics and cost)."""
        return self.embedding.model if self.embedding is not None else self.model_for(tenant, backend)

    async def embeddings(
        self, tenant: TenantRoute, payload: dict, request_id: str | None = None
    ) -> tuple[str, UpstreamReply]:
        if self.embedding is None:
            attempts = self._tenant_attempts(tenant, payload, salted=False)
        else:
            attempts = [(self.embedding.backend, self.embedding.upstream_payload(payload))]
        return await self._with_failover(tenant, attempts, lambda backend, p: backend.embeddings(p, request_id, tenant))


# What a backend's 4xx means for the caller: the status we answer and what we say. The backend's own
# message stays in the log (it may name internal hosts, files or other details).
_PLATFORM_SIDE = (
    "the {backend} backend refused the platform's request (HTTP {status}): the tenant's model or "
    "the platform's credentials for that backend look misconfigured; tell the platform operator "
    "this request id"
)
_REJECTIONS = {
    401: (502, _PLATFORM_SIDE),
    403: (502, _PLATFORM_SIDE),
    404: (502, _PLATFORM_SIDE),
    407: (502, _PLATFORM_SIDE),
    408: (504, "the {backend} backend timed out reading this request (HTTP 408); retry"),
    413: (413, "the {backend} backend refused this request as too large (HTTP 413); send less"),
}
_CALLERS_REQUEST = (
    "the {backend} backend refused this request (HTTP {status}), e.g. a prompt longer than the "
    "model's context window or a value the model does not support; change the request"
)


def _rejected(tenant: TenantRoute, backend: str, error: UpstreamRejected) -> ApiError:
    log.warning("tenant %s: backend %s rejected the request: %s", tenant.name, backend, error)
    status, message = _REJECTIONS.get(error.status, (error.status, _CALLERS_REQUEST))
    return ApiError(status, message.format(backend=backend, status=error.status), code="backend_rejected_request")


def _throttled(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"the model backend asked this tenant to slow down; retry in {seconds} s",
        code="backend_rate_limited",
        headers={"Retry-After": str(seconds)},
    )


def _exhausted(failures: list[tuple[str, UpstreamUnavailable]]) -> ApiError:
    """502 when a backend answered with an error, 503 when none could be reached (details: the log)."""
    names = " and the ".join(dict.fromkeys(name for name, _ in failures)) or "model"
    if any(failure.status for _, failure in failures):
        return ApiError(
            502,
            f"the {names} backend failed to answer; retry, and if it persists tell the platform "
            "operator this request id",
            code="upstream_error",
        )
    return ApiError(503, f"the {names} backend is not available right now; retry shortly", code="backend_unavailable")
