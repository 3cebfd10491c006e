"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the gateway can authenticate
and record requests: with tenant discovery, the tenant routes have been read at least once, and the
usage ledger, when configured, is connected).

Readiness does not depend on a backend: every tenant proxy calls this gateway, so a gateway that
left its Service whenever vLLM restarted would cut every tenant off, even those routed to OpenAI.
A request that finds no usable backend gets a clear 503 instead; `backends` shows their state."""

from flask import Blueprint, current_app, jsonify


blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    services = current_app.extensions["llm_gateway"]
    states = {name: backend.is_available() for name, backend in services.router.backends.items()}
    tenants_synced = services.discovery is None or services.discovery.synced
    ledger = services.metering.ledger
    ledger_ready = ledger is None or ledger.is_ready()
    ready = tenants_synced and ledger_ready
    body = {"status": "ready" if ready else "unavailable", "backends": states, "tenants_synced": tenants_synced,
            "ledger_connected": ledger_ready}
    return jsonify(body), 200 if ready else 503
