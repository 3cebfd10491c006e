"""Reading a request's body with errors a caller can act on, and never more than the limit.

Bad bytes are the caller's problem, answered with a 4xx, never a 500:
- the body is read in chunks and reading stops as soon as it passes the limit (413), also for
  chunked bodies that announce no Content-Length;
- invalid UTF-8 and invalid JSON (NaN and Infinity included, which Python's parser would take)
  are a 400;
- JSON nested deeper than `MAX_DEPTH` is a 400 (Python's parser would raise RecursionError
  at about a thousand levels, and everything downstream would walk it too);
- lone UTF-16 surrogates (`"\\ud800"`, valid JSON but not valid Unicode) are a 400 naming the
  field, before any code tries to encode them.
"""

from __future__ import annotations

import json
import re

from flask import Request
from pydantic import BaseModel, ValidationError

from llm_common.errors import ApiError, Refusal
from tenant_spec.problems import problems
from llm_common.request_contract import ContractViolation, PrivilegedMessage

MAX_DEPTH = 64
READ_CHUNK_BYTES = 64 * 1024
# A \uD800-\uDFFF escape; valid pairs are combined by the parser, so only then can a lone one remain.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or a 413 as soon as more than `max_bytes` arrived (Content-Length or not)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    stream = request.stream
    while True:
        chunk = stream.read(min(READ_CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
    return b"".join(chunks)


async def read_body_async(request, max_bytes: int) -> bytes:
    """`read_body` for a Starlette request (the gateway): the body, or a 413 as soon as it is too large."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
    return b"".join(chunks)


async def read_json_object_async(request, max_bytes: int) -> dict:
    """`read_json_object` for a Starlette request."""
    mimetype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json", code="unsupported_media_type")
    return parse_json_object(await read_body_async(request, max_bytes))


def read_json_object(request: Request, max_bytes: int) -> dict:
    """Return the body as a dict or raise a 4xx ApiError (content type, size, syntax, shape, depth, Unicode)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json", code="unsupported_media_type")
    return parse_json_object(read_body(request, max_bytes))


def parse_json_object(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259); json.loads would guess UTF-16/32 too
    except UnicodeDecodeError as error:
        raise ApiError(400, f"request body is not valid UTF-8 (at byte {error.start})",
                       code="invalid_encoding") from None
    try:
        document = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None
    if not isinstance(document, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    lone_surrogates_possible = bool(_SURROGATE_ESCAPE.search(raw))
    if lone_surrogates_possible or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # else nothing to find
        check_json_value(document, lone_surrogates_possible=lone_surrogates_possible)
    return document


def check_json_value(document: object, *, lone_surrogates_possible: bool = True) -> None:
    """400 if `document` nests deeper than MAX_DEPTH or (when possible) holds a lone surrogate."""
    stack: list[tuple[object, str, int]] = [(document, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if lone_surrogates_possible and isinstance(value, str) and _SURROGATE.search(value):
                raise _invalid_unicode(where or "body")
            continue
        if depth >= MAX_DEPTH:
            raise ApiError(400, f"request body is nested more than {MAX_DEPTH} levels deep", code="too_deeply_nested")
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            if lone_surrogates_possible and isinstance(key, str) and _SURROGATE.search(key):
                raise _invalid_unicode(f"{where or 'body'} (a key)")
            stack.append((item, path, depth + 1))


def validate_model(model: type[BaseModel], document: dict) -> BaseModel:
    """Validate `document` into `model`, turning the first problem into a 400 naming the field."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ApiError(400, problems(error, whole="body")[0], code="invalid_request") from None


def _not_json(constant: str) -> None:
    """NaN and Infinity: Python's parser takes them, JSON (and every backend) does not."""
    raise ValueError(f"{constant} is not JSON")


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"request body is larger than {max_bytes} bytes", code="request_too_large")


def _invalid_unicode(where: str) -> ApiError:
    return ApiError(400, f"{where}: contains invalid Unicode (a lone UTF-16 surrogate)", code="invalid_unicode")


def contract_error(violation: ContractViolation) -> ApiError:
    """The 400 for a request that breaks the request contract (a Refusal when a caller tried to send
    the system prompt's role, so it is counted with the other refusals)."""
    if isinstance(violation, PrivilegedMessage) and violation.code == "system_prompt_locked":
        return Refusal(400, str(violation), reason=violation.code)
    return ApiError(400, str(violation), code=violation.code)
