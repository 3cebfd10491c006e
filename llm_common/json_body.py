"""Reading a request's JSON body with errors a caller can act on."""

from __future__ import annotations

import json
from flask import Request
from pydantic import BaseModel, ValidationError

from llm_common.errors import ApiError


def read_json_object(request: Request, max_bytes: int) -> dict:
    """Return the body as a dict or raise a 4xx ApiError (content type, size, syntax, shape)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json", code="unsupported_media_type")
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"request body is larger than {max_bytes} bytes", code="request_too_large")
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:
        raise ApiError(413, f"request body is larger than {max_bytes} bytes", code="request_too_large")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None
    if not isinstance(document, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return document


def validate_model(model: type[BaseModel], document: dict) -> BaseModel:
    """Validate `document` into `model`, turning the first problem into a 400 naming the field."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "is required"
        raise ApiError(400, f"{field}: {message}", code="invalid_request") from None
