"""OpenAPI 3.1 documents, built from the same pydantic models the routes validate with, so the
document cannot drift from what is enforced (each service serves its own at `/openapi.json`:
app/openapi.py, llm_gateway/openapi.py).

Each service lists its operations (`Operation`); request bodies and JSON responses are
pydantic models, streamed answers `text/event-stream`, and every error the OpenAI-shaped
`ErrorResponse` (llm_common/errors.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from llm_common.schemas import ErrorResponse

REF_TEMPLATE = "#/components/schemas/{model}"
PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # `/v1/models/{model}`: a path parameter
# One server-sent event: `data: <JSON chunk>` (and a last `data: [DONE]`), or for the Responses API
# `event: <type>` and `data: <JSON event>`.
SSE_EVENT = {
    "type": "object",
    "description": "One server-sent event; `data` is a JSON chunk, or `[DONE]` at the end",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}
ERROR_STATUSES = {
    400: "Invalid request (the message names the field)",
    401: "Missing or unknown API key",
    403: "The tenant may not use the model asked for (model_not_allowed)",
    404: "No such model (model_not_found), or none this tenant may use",
    413: "Body or question too large",
    415: "Content-Type is not application/json",
    429: "Rate limit, monthly budget or concurrency limit reached, or the backend asked to slow down (see Retry-After)",
    502: "The backend failed",
    503: "No backend available, or the model is disabled (model_disabled; see Retry-After)",
    504: "The backend timed out",
}


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    response: type[BaseModel] | None = None  # the 200 JSON body
    request: type[BaseModel] | None = None
    streams: bool = False  # 200 may also be text/event-stream (when the body asks for `stream`)
    errors: tuple[int, ...] = (400, 401, 413, 415, 429, 502, 503, 504)
    authenticated: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)


def openapi_document(
    title: str, version: str, description: str, operations: list[Operation], bearer_auth: bool
) -> dict:
    models = {op.request for op in operations if op.request} | {op.response for op in operations if op.response}
    models.add(ErrorResponse)
    ordered = sorted(models, key=lambda model: model.__name__)
    refs, definitions = models_json_schema([(model, "validation") for model in ordered], ref_template=REF_TEMPLATE)
    ref = {model: refs[(model, "validation")] for model in ordered}
    paths: dict[str, dict] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, ref, bearer_auth)
    document = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {})},
    }
    if bearer_auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document


def _operation(op: Operation, ref: dict, bearer_auth: bool) -> dict:
    ok: dict = {"description": "OK", "content": {}}
    if op.response is not None:
        ok["content"]["application/json"] = {"schema": ref[op.response]}
    if op.streams:
        ok["content"]["text/event-stream"] = {"schema": SSE_EVENT}
    responses = {"200": ok}
    error = {"application/json": {"schema": ref[ErrorResponse]}}
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_STATUSES[status], "content": error}
    responses["default"] = {"description": "Any other error, OpenAI-shaped", "content": error}
    operation: dict = {"summary": op.summary, "operationId": _operation_id(op), "responses": responses}
    if op.tags:
        operation["tags"] = list(op.tags)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in PATH_PARAMETER.findall(op.path)
    ]
    if parameters:
        operation["parameters"] = parameters
    if op.request is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[op.request]}}}
    operation["security"] = [{"bearer": []}] if bearer_auth and op.authenticated else []
    return operation


def _operation_id(op: Operation) -> str:
    path = PATH_PARAMETER.sub(r"\1", op.path)
    return op.method.lower() + "_" + path.strip("/").replace("/", "_").replace(".", "_")
