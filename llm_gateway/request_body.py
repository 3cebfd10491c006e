"""Reading a Starlette request's body: never more than the limit, then checked (llm_common/json_body.py)."""

from __future__ import annotations

from starlette.requests import Request

from llm_common.json_body import body_too_large, check_media_type, parse_json_object


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or a 413 as soon as more than `max_bytes` arrived (Content-Length or not)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise body_too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(max_bytes)
    return b"".join(chunks)


async def read_json_object(request: Request, max_bytes: int) -> dict:
    """Return the body as a dict or raise a 4xx ApiError (content type, size, syntax, shape, depth, Unicode)."""
    check_media_type(request.headers.get("content-type", "").partition(";")[0])
    return parse_json_object(await read_body(request, max_bytes))
