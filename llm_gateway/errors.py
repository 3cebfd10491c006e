"""The gateway's exception handlers: our errors (`ApiError`) and Starlette's (404, 405, ...) answered
with the OpenAI-shaped body of llm_common/errors.py. An unexpected exception is answered by the
request observation (observation.py), which also logs it."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from llm_common.errors import ApiError, Refusal, error_body, error_type_of


def exception_handlers(on_refusal: Callable[[Refusal], None] | None = None) -> dict:
    """Starlette's `exception_handlers`; `on_refusal` is called for each Refusal (to count it)."""

    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        if on_refusal is not None and isinstance(error, Refusal):
            on_refusal(error)
        return JSONResponse(error.body(), error.status, headers=error.headers)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return JSONResponse(
            error_body(error_type_of(error.status_code), error.detail), error.status_code, headers=error.headers
        )

    return {ApiError: api_error, HTTPException: http_error}
