"""Liveness (`/healthz`: the process answers), readiness (`/readyz`), `/metrics` and `/openapi.json`.

Readiness means the gateway can authenticate and record requests: with tenant discovery, the
tenant routes have been read at least once, and the usage ledger, when configured, is connected.
It does not depend on a backend: every tenant proxy calls this gateway, so a gateway that left its
Service whenever vLLM restarted would cut every tenant off, even those routed to OpenAI. A request
that finds no usable backend gets a clear 503 instead; `backends` shows their state."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llm_common.metrics_registry import MetricsRegistry


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    states = {name: backend.is_available() for name, backend in services.router.backends.items()}
    tenants_synced = services.discovery is None or services.discovery.synced
    ledger = services.metering.ledger
    ledger_ready = ledger is None or ledger.is_ready()
    ready = tenants_synced and ledger_ready
    body = {
        "status": "ready" if ready else "unavailable",
        "backends": states,
        "tenants_synced": tenants_synced,
        "ledger_connected": ledger_ready,
    }
    return JSONResponse(body, 200 if ready else 503)


def operation_routes(registry: MetricsRegistry, openapi_document: dict) -> list[Route]:
    async def metrics(request: Request) -> Response:
        return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
