"""The proxy's error handlers: every error, ours (`ApiError`), Flask's (404, 405, ...) or unexpected,
is answered with the OpenAI-shaped body of llm_common/errors.py."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from llm_common.errors import ApiError, Refusal, error_body, error_type_of, internal_error_body

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask, on_refusal: Callable[[Refusal], None] | None = None) -> None:
    """OpenAI-shaped JSON for every error; `on_refusal` is called for each Refusal (to count it)."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        if on_refusal is not None and isinstance(error, Refusal):
            on_refusal(error)
        return jsonify(error.body()), error.status, error.headers

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        return jsonify(error_body(error_type_of(status), error.description or error.name)), status

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error")
        return jsonify(internal_error_body()), 500
