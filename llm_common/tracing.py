"""Every request traceable, in both services: a request id, and one JSON log line per request.

- **Request id.** A caller's `X-Request-Id` is kept when it is well-formed — a UUID, the form
  backends accept (llama.cpp's server answers 400 to any other) — otherwise a random UUID is
  made. It is sent upstream (proxy -> gateway -> backend), returned in the `X-Request-Id`
  header of every answer and in the body of every error, and it is the id of the request's
  row in the usage ledger.
- **One log line per request** (logger `llm_tenants.requests`, JSON on one line): time,
  service, request id, method, route, status, tenant, backend, latency, tokens and the error
  code when there was one. Never prompt text or keys. Written when the answer is complete
  (a stream: after its last byte). Health probes and scrapes are not logged.
- Other log lines carry the request id of the request they were written for (`[<id>]`),
  so the details kept out of caller-facing errors (backend URLs and messages) can be found
  by the id the caller was given.

Each service makes a request's `RequestRecord` current while it serves it (`use_record`): the
proxy in its Flask hooks (app/tracing.py), the gateway in its ASGI middleware
(llm_gateway/observation.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

REQUEST_ID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
REQUEST_LOGGER = "llm_tenants.requests"
UNLOGGED_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})

request_log = logging.getLogger(REQUEST_LOGGER)
# The record of the request being served (set by the service's request hooks).
_current_record: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def new_request_id() -> str:
    return str(uuid.uuid4())


def accepted_request_id(value: str | None) -> str:
    """The caller's id when it is well-formed, else a new one."""
    if value and REQUEST_ID_PATTERN.match(value):
        return value
    return new_request_id()


@dataclass
class RequestRecord:
    """What the request's log line says; filled in while the request (or its stream) runs."""

    service: str
    request_id: str
    method: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    tenant: str | None = None
    status: int | None = None
    backend: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_code: str | None = None
    _written: bool = False

    def count_usage(self, usage: object) -> None:
        """Take the prompt and completion tokens of an OpenAI `usage` object (anything else: ignored)."""
        if isinstance(usage, dict):
            for kind in ("prompt", "completion"):
                count = usage.get(f"{kind}_tokens")
                if isinstance(count, int) and not isinstance(count, bool):
                    setattr(self, f"{kind}_tokens", count)

    def write(self) -> None:
        """Log the line (once)."""
        if self._written:
            return
        self._written = True
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "tenant": self.tenant,
            "backend": self.backend,
            "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "error_code": self.error_code,
        }
        request_log.info(json.dumps(line, separators=(",", ":")))


def use_record(record: RequestRecord | None) -> None:
    """Make `record` the current request's, in the context serving it (None: no request is served)."""
    _current_record.set(record)


def current_record() -> RequestRecord | None:
    return _current_record.get()


def current_request_id() -> str | None:
    record = current_record()
    return record.request_id if record is not None else None


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record: the current request's, or '-' outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True
