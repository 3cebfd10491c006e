"""`POST /v1/embeddings` on a tenant URL, through the gateway with the tenant's key.

The request contract's embeddings rules (text input only, the platform's model and dimensions), the
tenant's guardrails on every input text, then the gateway, which admits, meters and records the call
like every other; the proxy counts its prompt tokens in `tenant_proxy_tokens_total`.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from app.gateway_client import BACKEND_HEADER
from app.request_body import read_json_object
from app.services import current_services
from llm_common.json_body import contract_error
from llm_common.request_contract import ContractViolation, apply_embedding_contract
from llm_common.tracing import current_record

blueprint = Blueprint("embeddings", __name__)


@blueprint.post("/v1/embeddings")
def embeddings():
    services = current_services()
    body = read_json_object(request, services.config.max_body_bytes)
    try:
        payload = apply_embedding_contract(body)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    texts = [payload["input"]] if isinstance(payload["input"], str) else payload["input"]
    services.guardrails.check([{"role": "user", "content": text} for text in texts])
    reply = services.gateway.embeddings(payload)
    usage = _usage_of(reply.content)
    services.metrics.count_usage(usage)
    record = current_record()
    if record is not None:
        record.backend = reply.headers.get(BACKEND_HEADER) or None
        record.count_usage(usage)
    return Response(
        reply.content, mimetype="application/json", headers={"X-LLM-Backend": reply.headers.get(BACKEND_HEADER, "")}
    )


def _usage_of(content: bytes) -> dict | None:
    try:
        usage = json.loads(content).get("usage")
    except (ValueError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None
