"""OpenAI-compatible routes: chat completions (plain and streamed), embeddings, models.

Thin: each route authenticates the caller, reads the body and checks it against the request
contract (llm_common/request_contract.py), then hands the request to the completion service
(completions.py), which admits, routes, records and settles it.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llm_common.json_body import contract_error, read_json_object_async
from llm_common.request_contract import ChatPolicy, ContractViolation, apply_chat_contract, apply_embedding_contract
from llm_common.sse import STREAM_HEADERS, STREAM_MEDIA_TYPE
from llm_common.tracing import current_record
from llm_gateway.completions import JsonAnswer
from llm_gateway.config import TenantRoute
from llm_gateway.observation import tenant_identified
from llm_gateway.services import GatewayServices

BACKEND_HEADER = "X-LLM-Backend"


def _services(request: Request) -> GatewayServices:
    return request.app.state.services


def _authenticated_tenant(request: Request) -> TenantRoute:
    tenant = _services(request).tenants.authenticate(request)
    tenant_identified(tenant.name)
    return tenant


async def chat_completions(request: Request) -> Response:
    services = _services(request)
    tenant = _authenticated_tenant(request)
    body = await read_json_object_async(request, services.config.max_body_bytes)
    policy = ChatPolicy(tenant.max_tokens, frozenset(tenant.allowed_request_extensions), caller_sends_system=True)
    try:
        chat = apply_chat_contract(body, policy)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    record = current_record()
    if chat.stream:
        answer = await services.completions.stream(tenant, chat.payload, record.request_id, record)
        return RelayResponse(answer.events, answer.close, headers={**STREAM_HEADERS, BACKEND_HEADER: answer.backend})
    answer = await services.completions.chat(tenant, chat.payload, record.request_id, record)
    return _json(answer)


async def embeddings(request: Request) -> Response:
    services = _services(request)
    tenant = _authenticated_tenant(request)
    body = await read_json_object_async(request, services.config.max_body_bytes)
    try:
        payload = apply_embedding_contract(body)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    record = current_record()
    return _json(await services.completions.embeddings(tenant, payload, record.request_id, record))


async def models(request: Request) -> Response:
    """The models this tenant can reach through the configured backends."""
    router = _services(request).router
    tenant = _authenticated_tenant(request)
    names = {router.model_for(tenant, backend.name): backend.name for backend in router.candidates(tenant)}
    return JSONResponse({"object": "list", "data": [
        {"id": name, "object": "model", "owned_by": backend, "created": 0} for name, backend in names.items()
    ]})


def _json(answer: JsonAnswer) -> Response:
    """The backend's JSON as it came; the request is settled once it is sent (or the caller left)."""
    return SettledResponse(answer.content, answer.settle, headers={BACKEND_HEADER: answer.backend})


class _ThenFinish:
    """A response that runs `finish()` once it is over, however it ends: its last byte sent, the caller gone
    (before the first byte, too), or the request cancelled (shielded, so the work is not cut short)."""

    async def finish(self) -> None:
        raise NotImplementedError

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            with anyio.CancelScope(shield=True):
                await self.finish()


class SettledResponse(_ThenFinish, Response):
    """A JSON answer; finishing settles the request."""

    media_type = "application/json"

    def __init__(self, content: bytes, settle, headers: dict[str, str]):
        super().__init__(content, headers=headers)
        self.finish = settle


class RelayResponse(_ThenFinish, StreamingResponse):
    """A relayed stream; finishing closes the relay (upstream stream, record, settlement)."""

    def __init__(self, events, close, headers: dict[str, str]):
        super().__init__(events, media_type=STREAM_MEDIA_TYPE, headers=headers)
        self._close = close

    async def finish(self) -> None:
        await self.body_iterator.aclose()
        await self._close()


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
]
