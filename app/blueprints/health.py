"""`/healthz`: the proxy process answers (it does not call the gateway, so a gateway outage
does not restart every tenant's pods)."""

from flask import Blueprint, jsonify

from app.services import current_services

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok", "tenant": current_services().config.tenant})
