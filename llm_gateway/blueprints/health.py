"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: some backend is usable and,
with tenant discovery, the tenant routes have been read at least once)."""

from flask import Blueprint, current_app, jsonify

from llm_gateway.services import EMBEDDINGS_BACKEND

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    services = current_app.extensions["llm_gateway"]
    states = {name: backend.is_available() for name, backend in services.router.backends.items()}
    tenants_synced = services.discovery is None or services.discovery.synced
    chat_ready = any(usable for name, usable in states.items() if name != EMBEDDINGS_BACKEND)
    ready = chat_ready and tenants_synced
    body = {"status": "ready" if ready else "unavailable", "backends": states, "tenants_synced": tenants_synced}
    return jsonify(body), 200 if ready else 503
