"""The proxy's one way to a completion, for every route that asks the model (`/ask`, `/v1/chat/completions`,
`/v1/responses`): the gateway answers, plain (`Completion`) or streamed (`CountedStream`), and the answer's
backend and usage go to `tenant_proxy_tokens_total` and to the request's log line.

The usage is the gateway's: the tokens it recorded in its ledger and counts in its budgets and metrics
(marked `"estimated": true` when the backend reported none and the gateway counted them itself). Streams
always ask the gateway for it (`stream_options.include_usage`), so their closing usage chunk always comes;
the routes pass that chunk on only to callers who asked for it. The proxy estimates nothing itself: an
answer without usage (from a gateway that sends none) adds no tokens and leaves the log line's tokens empty.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from app.gateway_client import BACKEND_HEADER
from app.prompt import with_tenant_prompt
from app.services import ProxyServices
from llm_common.errors import ApiError
from llm_common.openai_client import ChatStream
from llm_common.sse import DONE
from llm_common.tracing import RequestRecord, current_record
from tenant_spec.models import TENANT_DEFAULT_MODEL

log = logging.getLogger(__name__)


def tenant_payload(
    services: ProxyServices, chat_payload: dict, instructions: str | None = None, model: str | None = None
) -> dict:
    """The upstream payload: the tenant's prompt first, after the guardrails passed everything the caller sent.

    `chat_payload` kept the request contract and holds only the caller's messages; `model` is the one the
    caller named (the gateway checks the tenant may use it; None: the tenant's default).
    """
    config = services.config
    services.guardrails.check(chat_payload["messages"], tools=chat_payload.get("tools"), instructions=instructions)
    return {
        **chat_payload,
        "model": model or TENANT_DEFAULT_MODEL,
        "messages": with_tenant_prompt(config.system_prompt, chat_payload["messages"], instructions),
    }


class Completion:
    """A non-streamed answer: the gateway's JSON as it sent it, parsed, its tokens counted."""

    def __init__(self, services: ProxyServices, payload: dict):
        reply = services.gateway.chat(payload)
        self.content = reply.content
        self.backend = reply.headers.get(BACKEND_HEADER, "")
        try:
            self.body = json.loads(reply.content)
        except ValueError:
            self.body = None
        if not isinstance(self.body, dict):
            raise ApiError(502, "the gateway's answer was not a JSON object", code="bad_gateway_answer")
        usage = self.body.get("usage")
        self.usage = usage if isinstance(usage, dict) else None
        services.metrics.count_usage(self.usage)
        _note(current_record(), self.backend, self.usage)


class CountedStream:
    """An opened gateway stream, read chunk by chunk; its usage is counted once, when it is closed.

    Runs after the request context is gone (a streamed body), so it keeps the request's record.
    """

    def __init__(self, services: ProxyServices, payload: dict):
        self.services = services
        self.record = current_record()
        self.started = time.perf_counter()
        options = payload.get("stream_options") if isinstance(payload.get("stream_options"), dict) else {}
        self.stream: ChatStream = services.gateway.open_chat_stream(
            {**payload, "stream": True, "stream_options": {**options, "include_usage": True}}
        )
        self.backend = self.stream.headers.get(BACKEND_HEADER, "")
        self.usage: dict | None = None  # the gateway's, from its closing usage chunk
        self._counted = False
        _note(self.record, self.backend, None)

    @property
    def request_id(self) -> str | None:
        return self.record.request_id if self.record is not None else None

    def chunks(self) -> Iterator[tuple[str, dict | None]]:
        """(data as sent, parsed chunk or None) for each event before `[DONE]`."""
        first_text = True
        for data in self.stream:
            if data == DONE:
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                chunk = None
            chunk = chunk if isinstance(chunk, dict) else None
            if chunk is not None:
                if isinstance(chunk.get("usage"), dict):
                    self.usage = chunk["usage"]
                if first_text and delta_text(chunk):
                    first_text = False
                    self.services.metrics.time_to_first_token.labels(tenant=self.services.config.tenant).observe(
                        time.perf_counter() - self.started
                    )
            yield data, chunk

    def broke(self, error: BaseException | str) -> None:
        self.services.metrics.count_gateway_error("stream_broken")
        log.warning("[%s] the gateway stream broke: %s", self.request_id, error)

    def close(self) -> None:
        """Close upstream and count the gateway's usage (when it came), once."""
        try:
            self.stream.close()
        finally:
            if not self._counted:
                self._counted = True
                self.services.metrics.count_usage(self.usage)
                _note(self.record, self.backend, self.usage)


def delta_text(chunk: dict) -> str:
    """The answer text a chat-completion chunk adds ("" for none)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""


def _note(record: RequestRecord | None, backend: str, usage: object) -> None:
    """Put the backend and the tokens on the request's log line."""
    if record is not None:
        record.backend = backend or None
        record.count_usage(usage)
