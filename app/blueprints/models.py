"""`GET /v1/models` and `GET /v1/models/<id>` on a tenant URL: the models this tenant may use (by name or
alias), with their catalogue entries.

Chat front ends (Open WebUI, LibreChat, IDE plugins) call it first to fill their model picker. The
list is the gateway's for the tenant's key, checked and rebuilt from known fields (a malformed
answer is a 502, never passed on).
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify
from pydantic import ValidationError

from app.services import current_services
from llm_common.errors import ApiError
from llm_common.schemas import ModelList

blueprint = Blueprint("models", __name__)


@blueprint.get("/v1/models")
def list_models():
    return jsonify(_tenant_models().model_dump())


@blueprint.get("/v1/models/<path:model>")
def retrieve_model(model: str):
    for card in _tenant_models().data:
        if card.called(model):
            return jsonify(card.model_dump())
    raise ApiError(
        404,
        f"model '{model}' is not available to this tenant; GET /v1/models lists the ones that are",
        code="model_not_found",
    )


def _tenant_models() -> ModelList:
    reply = current_services().gateway.models()
    try:
        return ModelList.model_validate(json.loads(reply.content))
    except (ValueError, ValidationError):
        raise ApiError(502, "the gateway's model list was malformed", code="bad_gateway_answer") from None
