"""OpenAI-compatible routes: chat completions (plain and streamed), the Responses API (translated to a chat
completion by llm_common/responses.py, as the tenant proxy does), embeddings, models.

Thin: each route authenticates the caller, reads the body and checks it against the request
contract (llm_common/request_contract.py), then hands the request to the completion service
(completions.py), which admits, routes, records and settles it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llm_common.errors import ApiError
from llm_common.json_body import contract_error
from llm_common.request_contract import ChatPolicy, ContractViolation, apply_chat_contract, apply_embedding_contract
from llm_common.responses import (
    MalformedCompletion,
    ResponseEventStream,
    ResponseFrame,
    apply_responses_contract,
    response_from_completion,
)
from llm_common.schemas import ModelCard, ModelList
from llm_common.sse import DONE, STREAM_HEADERS, STREAM_MEDIA_TYPE, encode_named_event
from llm_common.tracing import current_record
from llm_gateway.completions import JsonAnswer
from llm_gateway.observation import tenant_identified
from llm_gateway.request_body import read_json_object
from llm_gateway.routing import Router
from llm_gateway.services import GatewayServices
from tenant_spec.route import TenantRoute

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
    body = await read_json_object(request, services.config.max_body_bytes)
    policy = ChatPolicy(tenant.max_tokens, frozenset(tenant.allowed_request_extensions), caller_sends_system=True)
    try:
        chat = apply_chat_contract(body, policy)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    record = current_record()
    if chat.stream:
        answer = await services.completions.stream(tenant, chat.model, chat.payload, record.request_id, record)
        return RelayResponse(answer.events, answer.close, headers={**STREAM_HEADERS, BACKEND_HEADER: answer.backend})
    answer = await services.completions.chat(tenant, chat.model, chat.payload, record.request_id, record)
    return _json(answer)


async def responses(request: Request) -> Response:
    """`POST /v1/responses`: the Responses API's text subset as one chat completion of the same service."""
    services = _services(request)
    tenant = _authenticated_tenant(request)
    body = await read_json_object(request, services.config.max_body_bytes)
    policy = ChatPolicy(tenant.max_tokens, frozenset(tenant.allowed_request_extensions), caller_sends_system=True)
    try:
        translated = apply_responses_contract(body, policy, system_input=True)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    record, frame, payload = current_record(), ResponseFrame(translated.echo), translated.chat.payload
    model = translated.chat.model
    if translated.chat.stream:
        answer = await services.completions.stream(tenant, model, payload, record.request_id, record)
        events = _response_events(answer.events, ResponseEventStream(frame))
        return RelayResponse(events, answer.close, headers={**STREAM_HEADERS, BACKEND_HEADER: answer.backend})
    answer = await services.completions.chat(tenant, model, payload, record.request_id, record)
    try:
        content = json.dumps(response_from_completion(json.loads(answer.content), frame)).encode()
    except (MalformedCompletion, ValueError):
        with anyio.CancelScope(shield=True):
            await answer.settle()
        raise ApiError(502, "the backend's answer had no message", code="bad_backend_answer") from None
    return SettledResponse(content, answer.settle, headers={BACKEND_HEADER: answer.backend})


async def _response_events(relayed: AsyncIterator[bytes], events: ResponseEventStream) -> AsyncIterator[bytes]:
    """The relayed chat chunks (`data:` events) as the Responses API's named events; `response.completed`
    carries the recorded usage (the translated request asks for the relay's closing usage chunk)."""

    def sent(batch: Iterable[dict]) -> bytes:
        return b"".join(encode_named_event(event) for event in batch)

    usage = None
    yield sent(events.opening())
    async for event in relayed:
        for line in event.decode().splitlines():
            data = line.removeprefix("data: ") if line.startswith("data: ") else None
            if data is None or data == DONE:
                continue
            chunk = json.loads(data)
            if "error" in chunk:  # the backend broke off: the relay said so in-band
                yield sent(events.failed("server_error", "the backend stream broke off before the answer was complete"))
                return
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            yield sent(events.chunk(chunk))
    yield sent(events.completed(usage))


async def embeddings(request: Request) -> Response:
    services = _services(request)
    tenant = _authenticated_tenant(request)
    body = await read_json_object(request, services.config.max_body_bytes)
    try:
        payload = apply_embedding_contract(body)
    except ContractViolation as violation:
        raise contract_error(violation) from None
    record = current_record()
    return _json(await services.completions.embeddings(tenant, payload, record.request_id, record))


async def models(request: Request) -> Response:
    """The models this tenant may use (and the platform's embedding model), with their catalogue entries."""
    router = _services(request).router
    tenant = _authenticated_tenant(request)
    return JSONResponse(ModelList(object="list", data=model_cards(router, tenant)).model_dump())


async def model(request: Request) -> Response:
    """One model this tenant may use, by name or alias (404 otherwise, as for a model that does not exist)."""
    router = _services(request).router
    tenant = _authenticated_tenant(request)
    called = request.path_params["model"]
    card = next((card for card in model_cards(router, tenant) if card.called(called)), None)
    if card is None:
        raise ApiError(
            404,
            f"the model '{called}' is not available to this tenant; GET /v1/models lists the ones that are",
            code="model_not_found",
        )
    return JSONResponse(card.model_dump())


def model_cards(router: Router, tenant: TenantRoute) -> list[ModelCard]:
    """The tenant's chat models in its spec's order, then the platform's embedding model."""
    names = router.allowed_models(tenant)
    if router.catalogue.embedding_model is not None:
        names.append(router.catalogue.embedding_model)
    default = router.catalogue.resolve(tenant.models.default_model)
    return [
        ModelCard(
            id=name,
            owned_by=entry.owner,
            kind=entry.kind,
            aliases=entry.aliases,
            context_length=entry.context_length,
            enabled=entry.enabled,
            default=name == default,
        )
        for name, entry in ((name, router.catalogue.models[name]) for name in names)
    ]


def _json(answer: JsonAnswer) -> Response:
    """The JSON answer (the backend's, with the recorded usage); the request is settled once it is sent (or the
    caller left)."""
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
    Route("/v1/responses", responses, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/models/{model:path}", model, methods=["GET"]),
]
