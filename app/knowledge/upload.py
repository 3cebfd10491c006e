"""Reading a `POST /documents` body: a title and UTF-8 text, or a 4xx that says what is wrong.

Accepted: `application/json` `{"title", "text"}`, or the document itself as
`text/plain` / `text/markdown` with the title in the `title` query parameter
(what `tenantctl ingest` sends). The size is checked before the body is read.
"""

from __future__ import annotations

from flask import Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from app.request_body import read_json_object
from llm_common.errors import ApiError
from llm_common.json_body import validate_model

RAW_TYPES = ("text/plain", "text/markdown")
MAX_TITLE_CHARACTERS = 200


class DocumentUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StrictStr = Field(max_length=MAX_TITLE_CHARACTERS)
    text: StrictStr

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


def read_document(request: Request, max_bytes: int) -> DocumentUpload:
    if request.mimetype == "application/json":
        # JSON escapes can make the body a little larger than the text it carries.
        upload = validate_model(DocumentUpload, read_json_object(request, max_bytes + 64 * 1024))
        if len(upload.text.encode("utf-8")) > max_bytes:
            raise _too_large(max_bytes)
    elif request.mimetype in RAW_TYPES:
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise ApiError(415, f"charset '{charset}' is not supported: send UTF-8 text", code="unsupported_charset")
        upload = validate_model(
            DocumentUpload, {"title": request.args.get("title", ""), "text": _decode(_read_limited(request, max_bytes))}
        )
    else:
        raise ApiError(
            415, "Content-Type must be application/json, text/plain or text/markdown", code="unsupported_media_type"
        )
    if not upload.text.strip():
        raise ApiError(400, "document: is empty", code="empty_document")
    if "\x00" in upload.text:
        raise ApiError(
            400, "document: contains NUL characters; send text or markdown, not a binary file", code="binary_document"
        )
    return upload


def _read_limited(request: Request, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    return raw


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ApiError(
            400,
            f"document: is not UTF-8 text (invalid byte 0x{raw[error.start]:02x} at offset {error.start})",
            code="invalid_encoding",
        ) from None


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"document is larger than {max_bytes} bytes", code="document_too_large")
