"""Reading a Flask request's body: never more than the limit, then checked (llm_common/json_body.py)."""

from __future__ import annotations

from flask import Request

from llm_common.json_body import body_too_large, check_media_type, parse_json_object

READ_CHUNK_BYTES = 64 * 1024


def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or a 413 as soon as more than `max_bytes` arrived (Content-Length or not)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise body_too_large(max_bytes)
    chunks, size = [], 0
    stream = request.stream
    while True:
        chunk = stream.read(min(READ_CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(max_bytes)
    return b"".join(chunks)


def read_json_object(request: Request, max_bytes: int) -> dict:
    """Return the body as a dict or raise a 4xx ApiError (content type, size, syntax, shape, depth, Unicode)."""
    check_media_type(request.mimetype)
    return parse_json_object(read_body(request, max_bytes))
