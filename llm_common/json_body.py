"""A request's JSON body checked, with errors a caller can act on.

Bad bytes are the caller's problem, answered with a 4xx, never a 500:
- only `application/json` is read (415), and never more than the limit: the services' readers
  (app/request_body.py, llm_gateway/request_body.py) stop as soon as a body passes it (413), also
  for chunked bodies that announce no Content-Length;
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

from pydantic import BaseModel, ValidationError

from llm_common.errors import ApiError, Refusal
from llm_common.request_contract import ContractViolation, PrivilegedMessage
from tenant_spec.problems import problems

MAX_DEPTH = 64
# A \uD800-\uDFFF escape; valid pairs are combined by the parser, so only then can a lone one remain.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_media_type(mimetype: str) -> None:
    """A 415 unless the body is declared `application/json` (`mimetype` without parameters)."""
    if mimetype.strip().lower() != "application/json":
        raise ApiError(415, "Content-Type must be application/json", code="unsupported_media_type")


def body_too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"request body is larger than {max_bytes} bytes", code="request_too_large")


def parse_json_object(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259); json.loads would guess UTF-16/32 too
    except UnicodeDecodeError as error:
        raise ApiError(
            400, f"request body is not valid UTF-8 (at byte {error.start})", code="invalid_encoding"
        ) from None
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


def _invalid_unicode(where: str) -> ApiError:
    return ApiError(400, f"{where}: contains invalid Unicode (a lone UTF-16 surrogate)", code="invalid_unicode")


def contract_error(violation: ContractViolation) -> ApiError:
    """The 400 for a request that breaks the request contract (a Refusal when a caller tried to send
    the system prompt's role, so it is counted with the other refusals)."""
    if isinstance(violation, PrivilegedMessage) and violation.code == "system_prompt_locked":
        return Refusal(400, str(violation), reason=violation.code)
    return ApiError(400, str(violation), code=violation.code)
