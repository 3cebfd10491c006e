"""Tenant controls around each request, chat and embeddings alike: admission (rate limits,
budgets and the concurrency lease, one Redis call) before the backend is called, and metering
after it answers (the ledger row, the token and cost counters in Redis, the lease given back,
the remaining-budget metric).

    meter = await metering.admit(tenant, model, estimated_prompt_tokens, request_id)  # a 429 Refusal, or a Meter
    ... call the backend (meter.call) ...
    record = await meter.finish(backend, model, usage)  # the ledger row, before the answer's last byte
    ... answer with answered_usage(record, ...)         # the caller gets the usage that was recorded
    await meter.settle()                                # Redis totals and the lease, once the answer is sent

completions.py drives these steps for every request; all of them are awaited on the worker's
event loop (Redis through its asyncio client, the ledger on its own threads).

The ledger row is the record and is written before the answer completes (durability); the
Redis totals are derived from it (reloaded from the ledger when missing, never recreated from
one request's tokens) and are updated right after the answer is sent, which keeps their round
trip off the caller's latency. A request that reached a backend is charged at least its
prompt's (estimated) tokens, however it ended: a stream the caller closed before its first
chunk included.

With no `limits` in the gateway config nothing is enforced; with no `ledger` nothing is
recorded: each part works without the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from llm_common.errors import ApiError, Refusal
from llm_common.tracing import new_request_id
from llm_common.usage import estimate_text_tokens, is_usage_only, token_counts
from llm_gateway import budgets, concurrency, limits
from llm_gateway.budgets import Budget
from llm_gateway.concurrency import ConcurrencyLeases
from llm_gateway.config import GatewayConfig
from llm_gateway.ledger import DuplicateRecord, UsageRecord, open_ledger
from llm_gateway.ledger.asynchronous import AsyncLedger
from llm_gateway.limits import Amount, CounterMissing, Lease, LimiterUnavailable, SharedCounters
from llm_gateway.metrics import GatewayMetrics
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_BACKEND = "none"  # the ledger's backend of a request no backend answered


def budget_of(tenant: TenantRoute) -> Budget:
    return Budget(tokens=tenant.monthly_token_budget, usd=tenant.monthly_budget_usd)


def answered_usage(record: UsageRecord, reported: object, *, completion_tokens: bool = True) -> dict:
    """The `usage` the caller gets: the numbers the gateway recorded (its ledger row, budgets and token
    metrics), inside the backend's usage object when the backend reported one (its other fields, such as
    token details, kept), marked `"estimated": true` when the gateway counted the tokens itself.
    `completion_tokens=False` for embeddings, whose usage has none unless the backend sent them."""
    counts = {"prompt_tokens": record.prompt_tokens}
    if completion_tokens or (isinstance(reported, dict) and "completion_tokens" in reported):
        counts["completion_tokens"] = record.completion_tokens
    counts["total_tokens"] = record.total_tokens
    if record.usage_estimated:
        return {**counts, "estimated": True}
    return {**reported, **counts} if isinstance(reported, dict) else counts


class Metering:
    """Built once per gateway worker: the shared counters (Redis), the leases, the ledger and the catalogue's
    prices."""

    def __init__(
        self,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.metrics = metrics
        self.catalogue = config.catalogue
        self.deny_without_redis = config.limits is not None and config.limits.on_redis_error == "deny"
        self.counters = SharedCounters(config.limits) if config.limits is not None else None
        # Opened in the background: a gateway starting before its database waits for it (see /readyz).
        self.leases = ConcurrencyLeases(self.counters) if self.counters is not None else None
        self.ledger: AsyncLedger | None = None
        if config.ledger is not None:
            self.ledger = AsyncLedger(open_ledger(config.ledger.url, background=True))
        self._clock = clock

    async def admit(
        self, tenant: TenantRoute, model: str, estimated_prompt_tokens: int, request_id: str | None = None
    ) -> Meter:
        """Admit one request of `tenant` for a catalogue `model` or raise a Refusal (429, or 503 without Redis
        when set to deny)."""
        lease = None
        if self.counters is not None:
            lease = await self._admit(tenant, self._clock(), self.leases.lease_for(tenant))
        return Meter(
            self, tenant, model, estimated_prompt_tokens, request_id=request_id or new_request_id(), lease=lease
        )

    def cost_usd(self, model: str, tokens: dict[str, int]) -> float:
        """The estimated cost of `tokens` ({"prompt": n, "completion": m}) at the catalogue's prices."""
        entry = self.catalogue.models.get(model)
        return entry.price_of(tokens.get("prompt", 0), tokens.get("completion", 0)) if entry else 0.0

    async def _admit(self, tenant: TenantRoute, now: float, lease: Lease | None) -> Lease | None:
        """Run the admission call; returns the lease when one was taken."""
        month = budgets.month_of(datetime.fromtimestamp(now, UTC))
        checks = (
            limits.rate_limit_checks(self.counters, tenant.name, tenant.rate_limits, now)
            if tenant.rate_limits is not None
            else []
        )
        checks += budgets.budget_checks(self.counters, tenant.name, budget_of(tenant), month)
        try:
            for _ in range(3):  # a missing budget counter is seeded, then admission is asked again
                try:
                    refused = await self.counters.admit(checks, lease)
                    break
                except CounterMissing:
                    await budgets.seed_from_ledger(self.counters, self.ledger, tenant.name, month)
            else:
                refused, lease = None, None
        except LimiterUnavailable:
            decision = "denied" if self.deny_without_redis else "allowed"
            self.metrics.limiter_unavailable.labels(tenant=tenant.name, decision=decision).inc()
            if self.deny_without_redis:
                raise Refusal(
                    503,
                    "rate limits cannot be checked right now (their store is unreachable); retry soon",
                    reason="limiter_unavailable",
                    headers={"Retry-After": "5"},
                ) from None
            return None
        if refused is None:
            if lease is not None:
                self.leases.held(lease)
            return lease
        if isinstance(refused, Lease):
            raise concurrency.refusal(refused)
        raise limits.refusal(refused)

    async def record(self, tenant: TenantRoute, record: UsageRecord) -> None:
        """Write the ledger row; returns once it is committed. A request id already in the ledger (a caller
        may send any well-formed X-Request-Id) is recorded under a suffixed id rather than lost."""
        if self.ledger is None:
            return
        try:
            try:
                await self.ledger.record(record)
            except DuplicateRecord:
                await self.ledger.record(record.with_request_id(f"{record.request_id}.{new_request_id()[:8]}"))
        except Exception:  # the answer is already produced: keep serving, but loudly
            self.metrics.ledger_errors.labels(tenant=tenant.name).inc()
            log.exception("usage record %s of tenant %s could not be written", record.request_id, tenant.name)

    async def settle(self, tenant: TenantRoute, record: UsageRecord | None, lease: Lease | None) -> None:
        """After the answer: add the request's tokens and cost to the shared counters (tokens per minute,
        budgets) and give its lease back, in one round trip."""
        if self.counters is None:
            return
        if lease is not None:
            self.leases.released(lease)
        amounts = self._amounts(tenant, record) if record is not None and record.total_tokens else []
        if not amounts and lease is None:
            return
        try:
            totals = await self.counters.finish(amounts, release=lease)
            if len(totals) == 3:  # the tenant has a budget: tokens per minute, month's tokens, month's cost
                await self._publish_remaining(tenant, totals[1], totals[2])
        except LimiterUnavailable:
            return  # counted and logged by SharedCounters; the ledger has the record

    def _amounts(self, tenant: TenantRoute, record: UsageRecord) -> list[Amount]:
        now = self._clock()
        amounts = [Amount(limits.tokens_key(self.counters, tenant.name, now), record.total_tokens, 120)]
        if budget_of(tenant).enabled:
            month = budgets.month_of(datetime.fromtimestamp(now, UTC))
            amounts += [
                Amount(
                    budgets.tokens_key(self.counters, tenant.name, month),
                    record.total_tokens,
                    budgets.MONTH_TTL_SECONDS,
                    must_exist=True,
                ),
                Amount(
                    budgets.cost_key(self.counters, tenant.name, month),
                    round(record.cost_usd * budgets.NANO),
                    budgets.MONTH_TTL_SECONDS,
                    must_exist=True,
                ),
            ]
        return amounts

    async def _publish_remaining(self, tenant: TenantRoute, tokens: int | None, nano_usd: int | None) -> None:
        """Export what is left of the budget; a month's counter that was missing (Redis lost it) is
        reloaded from the ledger, which already holds this request."""
        if tokens is None or nano_usd is None:
            month = budgets.month_of(datetime.fromtimestamp(self._clock(), UTC))
            try:
                tokens, nano_usd = await budgets.seed_from_ledger(self.counters, self.ledger, tenant.name, month)
            except LimiterUnavailable:
                return
            except Exception:  # the ledger is unreachable: the next admission reseeds
                log.exception("reloading the month's totals of tenant %s from the ledger failed", tenant.name)
                return
        for kind, value in budgets.remaining(budget_of(tenant), tokens, nano_usd).items():
            self.metrics.budget_remaining.labels(tenant=tenant.name, kind=kind).set(value)

    async def start(self) -> None:
        """Connect to Redis before the first request (see SharedCounters.connect)."""
        if self.counters is not None:
            await self.counters.connect()

    async def aclose(self) -> None:
        if self.leases is not None:
            await self.leases.aclose()
        if self.counters is not None:
            await self.counters.aclose()
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.close)


@dataclass
class Meter:
    """One admitted request, until it is recorded and settled (each exactly once)."""

    metering: Metering
    tenant: TenantRoute
    model: str  # the catalogue model asked for (a fallback that answers is recorded under its own name)
    estimated_prompt_tokens: int
    request_id: str
    lease: Lease | None = None
    started: float = field(default_factory=time.perf_counter)
    stream: bool = False
    include_usage_requested: bool = False
    _content_chunks: int = 0
    _usage: dict | None = None
    _first_chunk: dict | None = None
    _usage_chunk: dict | None = None
    finished: bool = False
    _settled: bool = False
    _record: UsageRecord | None = None

    async def finish(
        self, backend: str, model: str, usage: object, status: str = "ok", completion_text: str | None = None
    ) -> UsageRecord | None:
        """Record the request (once; a second call returns the first record). Without a usage from the
        backend the tokens are estimated: the prompt always (the backend read it), the completion from
        what was produced. Returns the record."""
        if self.finished:
            return self._record
        self.finished = True
        tokens = dict(token_counts(usage))
        estimated = not tokens and backend != NO_BACKEND
        if estimated:
            completion = self._content_chunks if self.stream else estimate_text_tokens(completion_text or "")
            tokens = {"prompt": self.estimated_prompt_tokens, "completion": completion}
        cost = self.metering.cost_usd(model, tokens)
        # Prometheus counts what the ledger records: streams without a backend usage count too.
        self.metering.metrics.count_tokens(self.tenant.name, backend, model, tokens, cost)
        self._record = UsageRecord(
            request_id=self.request_id,
            tenant=self.tenant.name,
            model=model,
            backend=backend,
            prompt_tokens=tokens.get("prompt", 0),
            completion_tokens=tokens.get("completion", 0),
            cost_usd=cost,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
            status=status,
            stream=self.stream,
            usage_estimated=estimated,
        )
        await self.metering.record(self.tenant, self._record)
        return self._record

    async def settle(self) -> None:
        """Once the answer is sent (or the request failed): counters and lease, once."""
        if self._settled:
            return
        self._settled = True
        await self.metering.settle(self.tenant, self._record, self.lease)

    async def call(self, action: Awaitable[T]) -> T:
        """Await the backend call; a failure (no backend answered) is recorded, then raised."""
        try:
            return await action
        except ApiError:
            await self.finish(NO_BACKEND, self.model, None, status="upstream_error")
            raise

    async def finish_json(self, backend: str, model: str, answer: dict) -> UsageRecord | None:
        """Record a non-streamed answer from its JSON body (usage, or the text to estimate from)."""
        return await self.finish(backend, model, answer.get("usage"), completion_text=_message_text(answer))

    # --- streams -------------------------------------------------------------------------------

    def stream_payload(self, payload: dict) -> dict:
        """Ask the backend for usage in the stream's final chunk (OpenAI's `stream_options`)."""
        self.stream = True
        options = payload.get("stream_options")
        options = options if isinstance(options, dict) else {}
        self.include_usage_requested = options.get("include_usage") is True
        return {**payload, "stream_options": {**options, "include_usage": True}}

    def observe_chunk(self, data: str) -> str | None:
        """Count one SSE data payload of the answer; returns it, or None to hold it back: the backend's
        closing usage chunk, which `usage_chunk` replaces with the usage that was recorded."""
        try:
            chunk = json.loads(data)
        except ValueError:
            return data
        if not isinstance(chunk, dict):
            return data
        if self._first_chunk is None:
            self._first_chunk = chunk
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        if is_usage_only(chunk):
            self._usage_chunk = chunk
            return None
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and delta.get("content"):
                self._content_chunks += 1
        return data

    async def finish_stream(self, backend: str, model: str, status: str) -> UsageRecord | None:
        return await self.finish(backend, model, self._usage, status)

    def usage_chunk(self, record: UsageRecord) -> dict:
        """The stream's closing usage chunk as OpenAI sends it (`choices` empty), carrying the recorded usage:
        the backend's own closing chunk with its usage replaced, or one made like it when it sent none."""
        usage = answered_usage(record, self._usage)
        if self._usage_chunk is not None:
            return {**self._usage_chunk, "usage": usage}
        frame = self._first_chunk or {}
        return {
            "id": frame.get("id", ""),
            "object": "chat.completion.chunk",
            "created": frame.get("created", 0),
            "model": frame.get("model", ""),
            "choices": [],
            "usage": usage,
        }


def _message_text(completion: dict) -> str:
    try:
        return str(completion["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""
