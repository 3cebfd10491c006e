"""Tenant controls around each request: admission (rate limits and budgets, one Redis call)
before the backend is called, and metering after it answers (the ledger row, the token and
cost counters in Redis, the remaining-budget metric).

    meter = services.metering.admit(tenant, payload)   # raises a 429 Refusal
    ... call the backend ...
    meter.finish(backend, model, usage)                # the ledger row, before the answer's last byte
    meter.update_counters()                            # Redis totals, once the answer is sent

The ledger row is the record and is written before the answer completes (durability); the
Redis totals are derived from it (reloaded from the ledger when missing) and are updated
right after the answer is sent, which keeps their round trip off the caller's latency.

With no `limits` in the gateway config nothing is enforced; with no `ledger` nothing is
recorded: each part works without the other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, TypeVar

from llm_common.errors import ApiError, Refusal
from llm_common.usage import estimate_prompt_tokens, estimate_text_tokens, token_counts
from llm_gateway import budgets, limits
from llm_gateway.budgets import Budget
from llm_gateway.config import GatewayConfig, TenantRoute
from llm_gateway.ledger import Ledger, UsageRecord, open_ledger
from llm_gateway.limits import CounterMissing, LimiterUnavailable, SharedCounters
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.pricing import PriceTable

log = logging.getLogger(__name__)
T = TypeVar("T")
REQUEST_ID_HEADER = "X-Request-Id"


def budget_of(tenant: TenantRoute) -> Budget:
    return Budget(tokens=tenant.monthly_token_budget, usd=tenant.monthly_budget_usd)


class Metering:
    """Built once per gateway worker: the shared counters (Redis), the ledger and the prices."""

    def __init__(self, config: GatewayConfig, metrics: GatewayMetrics, *, prices: PriceTable | None = None,
                 clock: Callable[[], float] = time.time):
        self.metrics = metrics
        self.prices = prices or PriceTable(config.prices)
        self.deny_without_redis = config.limits is not None and config.limits.on_redis_error == "deny"
        self.counters = SharedCounters(config.limits) if config.limits is not None else None
        # Opened in the background: a gateway starting before its database waits for it (see /readyz).
        self.ledger: Ledger | None = open_ledger(config.ledger.url, background=True) if config.ledger is not None else None
        self._clock = clock

    def admit(self, tenant: TenantRoute, payload: dict) -> "Meter":
        """Admit one request of `tenant` or raise a Refusal (429, or 503 without Redis when set to deny)."""
        if self.counters is not None:
            self._admit(tenant, self._clock())
        return Meter(self, tenant, estimate_prompt_tokens(payload.get("messages")))

    def _admit(self, tenant: TenantRoute, now: float) -> None:
        month = budgets.month_of(datetime.fromtimestamp(now, timezone.utc))
        checks = limits.rate_limit_checks(self.counters, tenant.name, tenant.rate_limits, now) \
            if tenant.rate_limits is not None else []
        checks += budgets.budget_checks(self.counters, tenant.name, budget_of(tenant), month)
        try:
            for _ in range(3):  # a missing budget counter is seeded, then admission is asked again
                try:
                    refused = self.counters.admit(checks)
                    break
                except CounterMissing:
                    budgets.seed_from_ledger(self.counters, self.ledger, tenant.name, month)
            else:
                refused = None
        except LimiterUnavailable:
            decision = "denied" if self.deny_without_redis else "allowed"
            self.metrics.limiter_unavailable.labels(tenant=tenant.name, decision=decision).inc()
            if self.deny_without_redis:
                raise Refusal(503, "rate limits cannot be checked right now (their store is unreachable); retry soon",
                              reason="limiter_unavailable", headers={"Retry-After": "5"}) from None
            return
        if refused is not None:
            raise limits.refusal(refused)

    def record(self, tenant: TenantRoute, record: UsageRecord) -> None:
        """Write the ledger row; returns once it is committed."""
        if self.ledger is None:
            return
        try:
            self.ledger.record(record)
        except Exception:  # the answer is already produced: keep serving, but loudly
            self.metrics.ledger_errors.labels(tenant=tenant.name).inc()
            log.exception("usage record %s of tenant %s could not be written", record.request_id, tenant.name)

    def add_to_counters(self, tenant: TenantRoute, record: UsageRecord) -> None:
        """Add a finished request's tokens and cost to the shared counters (tokens per minute, budgets)."""
        if self.counters is None or not record.total_tokens:
            return
        now = self._clock()
        month = budgets.month_of(datetime.fromtimestamp(now, timezone.utc))
        budget = budget_of(tenant)
        amounts = [(limits.tokens_key(self.counters, tenant.name, now), record.total_tokens, 120)]
        if budget.enabled:
            amounts += [(budgets.tokens_key(self.counters, tenant.name, month), record.total_tokens,
                         budgets.MONTH_TTL_SECONDS),
                        (budgets.cost_key(self.counters, tenant.name, month), round(record.cost_usd * budgets.NANO),
                         budgets.MONTH_TTL_SECONDS)]
        try:
            totals = self.counters.add(amounts)
        except LimiterUnavailable:
            return  # counted and logged by SharedCounters; the ledger has the record
        if budget.enabled:
            for kind, value in budgets.remaining(budget, totals[1], totals[2]).items():
                self.metrics.budget_remaining.labels(tenant=tenant.name, kind=kind).set(value)

    def close(self) -> None:
        if self.counters is not None:
            self.counters.close()
        if self.ledger is not None:
            self.ledger.close()


@dataclass
class Meter:
    """One admitted request, until it is recorded (exactly once)."""

    metering: Metering
    tenant: TenantRoute
    estimated_prompt_tokens: int
    request_id: str = field(default_factory=lambda: "req-" + uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)
    stream: bool = False
    include_usage_requested: bool = False
    _content_chunks: int = 0
    _usage: dict | None = None
    _finished: bool = False
    _record: UsageRecord | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, backend: str, model: str, usage: object, status: str = "ok",
               completion_text: str | None = None) -> None:
        """Record the request. Without a usage from the backend, the tokens are estimated."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        tokens = dict(token_counts(usage))
        estimated = not tokens and (status == "ok" or self._content_chunks > 0)
        if estimated:
            completion = self._content_chunks if self.stream else estimate_text_tokens(completion_text or "")
            tokens = {"prompt": self.estimated_prompt_tokens, "completion": completion}
        cost = self.metering.prices.cost_usd(model, tokens) or 0.0
        # Prometheus counts what the ledger records: streams without a backend usage count too.
        self.metering.metrics.count_tokens(self.tenant.name, backend, model, tokens)
        self._record = UsageRecord(
            request_id=self.request_id, tenant=self.tenant.name, model=model, backend=backend,
            prompt_tokens=tokens.get("prompt", 0), completion_tokens=tokens.get("completion", 0), cost_usd=cost,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3), status=status, stream=self.stream,
            usage_estimated=estimated)
        self.metering.record(self.tenant, self._record)

    def update_counters(self) -> None:
        """Once the answer is sent: add the recorded tokens and cost to the shared counters (once)."""
        with self._lock:
            record, self._record = self._record, None
        if record is not None:
            self.metering.add_to_counters(self.tenant, record)

    def call(self, action: Callable[[], T]) -> T:
        """Run the backend call; a failure (no backend answered) is recorded, then raised."""
        try:
            return action()
        except ApiError:
            self.finish("none", self.tenant.model, None, status="upstream_error")
            raise

    def finish_completion(self, backend: str, model: str, content: bytes) -> None:
        """Record a non-streamed answer from its JSON body (usage, or the text to estimate from)."""
        try:
            completion = json.loads(content)
        except ValueError:
            completion = None
        completion = completion if isinstance(completion, dict) else {}
        self.finish(backend, model, completion.get("usage"), completion_text=_message_text(completion))

    # --- streams -------------------------------------------------------------------------------

    def stream_payload(self, payload: dict) -> dict:
        """Ask the backend for usage in the stream's final chunk (OpenAI's `stream_options`)."""
        self.stream = True
        options = payload.get("stream_options")
        options = options if isinstance(options, dict) else {}
        self.include_usage_requested = options.get("include_usage") is True
        return {**payload, "stream_options": {**options, "include_usage": True}}

    def observe_chunk(self, data: str) -> str | None:
        """Count one SSE data payload of the answer; returns it, or None to drop it (a usage-only
        chunk the caller did not ask for)."""
        try:
            chunk = json.loads(data)
        except ValueError:
            return data
        if not isinstance(chunk, dict):
            return data
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and delta.get("content"):
                self._content_chunks += 1
        elif self._usage is chunk.get("usage") and not self.include_usage_requested:
            return None
        return data

    def finish_stream(self, backend: str, model: str, status: str) -> None:
        self.finish(backend, model, self._usage, status)


def _message_text(completion: dict) -> str:
    try:
        return str(completion["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""
