"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: some backend is usable)."""

from flask import Blueprint, current_app, jsonify

from llm_gateway.services import EMBEDDINGS_BACKEND

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    backends = current_app.extensions["llm_gateway"].router.backends
    states = {name: backend.is_available() for name, backend in backends.items()}
    ready = any(usable for name, usable in states.items() if name != EMBEDDINGS_BACKEND)  # chat can be answered
    return jsonify({"status": "ready" if ready else "unavailable", "backends": states}), 200 if ready else 503
