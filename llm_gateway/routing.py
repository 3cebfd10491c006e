"""Routing by model: which catalogue model answers a request, on which backend, and failover.

A request names a model (a catalogue name or alias; none, or `tenant-default`: the tenant's default).
The alias is resolved first, then the tenant's entitlement is checked, so no alias reaches a model the
tenant may not use:

    unknown model              404 model_not_found
    not in the tenant's list   403 model_not_allowed
    disabled                   503 model_disabled (Retry-After), unless the tenant's fallback answers

A self-hosted model (vllm, cpu) is served by its own pool, named after it; OpenAI models by the
`openai` pool. The tenant's fallback model (spec `models.fallback`) answers when the asked model's pool
has no usable member or fails before sending any byte. What a backend says about a request is the
caller's, never the backend's health: a 4xx goes back to the caller (in the caller's terms; the
backend's own text only to the log), and a 429 holds back only that tenant from that backend
(`backoff.py`) while the backend keeps serving everyone else.

Requests to self-hosted chat models carry the tenant's `cache_salt` (prefix_cache.py). Embeddings
always go to the catalogue's one embedding model, whatever model the caller named.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from llm_common.catalogue import CatalogueModel, ModelCatalogue
from llm_common.errors import ApiError
from llm_gateway.backends import AsyncChatStream, BackendPool, UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.backoff import TenantBackoff
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.prefix_cache import CacheSalts
from tenant_spec.models import TENANT_DEFAULT_MODEL
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)
T = TypeVar("T")
DISABLED_RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True)
class Attempt:
    """One way to answer: a catalogue model on its backend, with what that backend is sent."""

    model: str
    backend: BackendPool
    payload: dict


class Router:
    def __init__(
        self,
        catalogue: ModelCatalogue,
        backends: dict[str, BackendPool],
        metrics: GatewayMetrics,
        backoff: TenantBackoff | None = None,
        cache_salts: CacheSalts | None = None,
    ):
        self.catalogue = catalogue
        self.backends = backends
        self.backoff = backoff or TenantBackoff()
        self.cache_salts = cache_salts or CacheSalts(None)
        self._metrics = metrics

    # --- which model ---------------------------------------------------------------------------

    def allowed_models(self, tenant: TenantRoute) -> list[str]:
        """The catalogue names of the chat models the tenant may use, in its spec's order."""
        names = self.catalogue.entitled(tenant.models.allowed)
        return [name for name in names if self.catalogue.models[name].kind == "chat"]

    def choose(self, tenant: TenantRoute, asked: str | None) -> str:
        """The catalogue model that answers `asked` for the tenant, or the refusal that says why not (naming
        the model as the caller called it)."""
        called = asked if asked and asked != TENANT_DEFAULT_MODEL else tenant.models.default_model
        name = self.catalogue.resolve(called)
        if name is None:
            raise ApiError(
                404,
                f"the model '{called}' does not exist; GET /v1/models lists the models this tenant may use",
                code="model_not_found",
            )
        if self.catalogue.models[name].kind != "chat":  # the embedding model, which every tenant uses
            raise ApiError(
                400, f"'{called}' is an embedding model: send it to /v1/embeddings", code="model_not_supported"
            )
        if name not in self.allowed_models(tenant):
            raise ApiError(
                403,
                f"this tenant may not use the model '{called}'; GET /v1/models lists the models it may use",
                code="model_not_allowed",
            )
        if not self.catalogue.models[name].enabled and self._fallback(tenant, name) is None:
            raise ApiError(
                503,
                f"the model '{called}' is disabled on this platform; retry later or ask for another model",
                code="model_disabled",
                headers={"Retry-After": str(DISABLED_RETRY_AFTER_SECONDS)},
            )
        return name

    def _fallback(self, tenant: TenantRoute, primary: str) -> str | None:
        fallback = tenant.models.fallback and self.catalogue.resolve(tenant.models.fallback)
        if not fallback or fallback == primary or fallback not in self.allowed_models(tenant):
            return None
        return fallback if self.catalogue.models[fallback].enabled else None

    def attempts(self, tenant: TenantRoute, model: str, payload: dict) -> list[Attempt]:
        """The chosen model (unless disabled), then the tenant's fallback: each on its backend, usable ones
        first (`choose` made sure one of them is enabled)."""
        models = [model] if self.catalogue.models[model].enabled else []
        fallback = self._fallback(tenant, model)
        if fallback is not None:
            models.append(fallback)
        attempts = [self._attempt(tenant, name, payload) for name in models]
        return sorted(attempts, key=lambda attempt: not attempt.backend.is_available())

    def _attempt(self, tenant: TenantRoute, name: str, payload: dict) -> Attempt:
        entry = self.catalogue.models[name]
        upstream = {**payload, "model": served_name(name, entry)}
        if entry.self_hosted:
            upstream = self.cache_salts.salted(tenant, upstream)
        return Attempt(name, self.backend_of(name), upstream)

    def backend_of(self, name: str) -> BackendPool:
        """The pool serving a catalogue model."""
        backend = self.backends.get(self.catalogue.backend(name))
        if backend is None:  # the config's checks keep this from happening for enabled models
            raise ApiError(503, f"the model '{name}' has no backend on this gateway", code="backend_not_configured")
        return backend

    # --- calls ---------------------------------------------------------------------------------

    async def _with_failover(
        self, tenant: TenantRoute, attempts: list[Attempt], call: Callable[[Attempt], Awaitable[T]]
    ) -> tuple[Attempt, T]:
        failures: list[tuple[str, UpstreamUnavailable]] = []
        waits: list[float] = []
        for attempt in attempts:
            backend = attempt.backend.name
            wait = self.backoff.remaining(tenant.name, backend)
            if wait:
                waits.append(wait)
                continue
            try:
                return attempt, await call(attempt)
            except UpstreamUnavailable as error:
                log.warning("tenant %s: backend %s failed: %s", tenant.name, backend, error)
                failures.append((backend, error))
            except UpstreamRejected as error:
                if not error.throttled:
                    raise _rejected(tenant, backend, error) from None
                waits.append(self.backoff.back_off(tenant.name, backend, error.retry_after))
                self._metrics.upstream_errors.labels(backend=backend, reason="throttled").inc()
                log.warning(
                    "tenant %s: backend %s asked it to slow down (429, Retry-After %s): %s",
                    tenant.name,
                    backend,
                    error.retry_after,
                    error,
                )
        if waits:
            raise _throttled(min(waits))
        raise _exhausted(failures)

    async def chat(
        self, tenant: TenantRoute, model: str, payload: dict, request_id: str | None = None
    ) -> tuple[Attempt, UpstreamReply]:
        return await self._with_failover(
            tenant,
            self.attempts(tenant, model, payload),
            lambda attempt: attempt.backend.chat(attempt.payload, request_id, tenant),
        )

    async def open_chat_stream(
        self, tenant: TenantRoute, model: str, payload: dict, request_id: str | None = None
    ) -> tuple[Attempt, AsyncChatStream]:
        return await self._with_failover(
            tenant,
            self.attempts(tenant, model, payload),
            lambda attempt: attempt.backend.open_chat_stream(attempt.payload, request_id, tenant),
        )

    def embedding_model(self) -> str:
        """The catalogue's embedding model (every tenant's documents are embedded with it)."""
        name = self.catalogue.embedding_model
        if name is None:
            raise ApiError(404, "this platform serves no embedding model", code="model_not_found")
        return name

    async def embeddings(
        self, tenant: TenantRoute, payload: dict, request_id: str | None = None
    ) -> tuple[Attempt, UpstreamReply]:
        name = self.embedding_model()
        entry = self.catalogue.models[name]
        if not entry.enabled:
            raise ApiError(
                503,
                f"the embedding model '{name}' is disabled on this platform; retry later",
                code="model_disabled",
                headers={"Retry-After": str(DISABLED_RETRY_AFTER_SECONDS)},
            )
        upstream = {**payload, "model": served_name(name, entry)}  # callers cannot pick another vector space
        if entry.dimensions is not None:
            upstream["dimensions"] = entry.dimensions
        attempt = Attempt(name, self.backend_of(name), upstream)
        return await self._with_failover(
            tenant, [attempt], lambda attempt: attempt.backend.embeddings(attempt.payload, request_id, tenant)
        )


def served_name(name: str, entry: CatalogueModel) -> str:
    """The name the model's engine knows it by."""
    return entry.served_name or name


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
