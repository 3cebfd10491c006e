"""OpenAI-shaped JSON errors: `{"error": {"type", "message", "code", "request_id"}}`.

Both services raise `ApiError` for anything the caller should see and install handlers that answer
every error with this body (app/errors.py in the Flask proxy, llm_gateway/errors.py in the ASGI
gateway), so no request ever ends in an HTML page or a traceback. Messages speak in the caller's
terms; what only an operator needs (backend URLs, backend messages, tracebacks) goes to the log
under the request id the error carries.
"""

from __future__ import annotations

from llm_common.tracing import current_record

_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


def error_type_of(status: int) -> str:
    """The error `type` of an HTTP status."""
    return _TYPES_BY_STATUS.get(status, "api_error")


class ApiError(Exception):
    """An error answered to the caller with `status` and an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.error_type = error_type or error_type_of(status)
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.error_type, self.message, self.code)


class Refusal(ApiError):
    """A request the platform declines by policy (a guardrail, a size or rate limit, a budget).

    Unlike other errors, refusals are counted by `reason`, a short fixed string from
    our code (it is also the error's `code`), so the label's values stay bounded.
    """

    def __init__(self, status: int, message: str, *, reason: str, headers: dict[str, str] | None = None):
        super().__init__(status, message, code=reason, headers=headers)
        self.reason = reason


def error_body(error_type: str, message: str, code: str | None = None, request_id: str | None = None) -> dict:
    """The error object; inside a request it carries the request's id (and notes its code for the log)."""
    record = current_record()
    if record is not None:
        request_id = request_id or record.request_id
        record.error_code = code or error_type
    error = {"type": error_type, "message": message, "code": code}
    if request_id is not None:
        error["request_id"] = request_id
    return {"error": error}


def internal_error_body() -> dict:
    return error_body("api_error", "internal error; the service log has the details under this request id")
