"""The proxy's request tracing as Flask hooks (what it is: llm_common/tracing.py): each request gets
an id and a `RequestRecord`, current while the request is served; the answer carries the id, and
the record is logged once the answer's last byte is sent."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, request

from llm_common.openai_client import REQUEST_ID_HEADER
from llm_common.tracing import UNLOGGED_ROUTES, RequestRecord, accepted_request_id, current_record, use_record


def install_request_tracing(app: Flask, service: str, tenant_label: Callable[[], str | None]) -> None:
    """Give every request an id and a RequestRecord; answer with the id; log the record at the end."""

    @app.before_request
    def _start() -> None:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        use_record(
            RequestRecord(service, accepted_request_id(request.headers.get(REQUEST_ID_HEADER)), request.method, route)
        )

    @app.after_request
    def _finish(response):
        record = current_record()
        if record is None:
            return response
        response.headers[REQUEST_ID_HEADER] = record.request_id
        record.status = response.status_code
        record.tenant = tenant_label()
        if record.route not in UNLOGGED_ROUTES:
            response.call_on_close(record.write)
        return response

    @app.teardown_request
    def _end(_error: BaseException | None) -> None:
        use_record(None)  # a streamed answer's body is sent after this: its code keeps the record it needs
