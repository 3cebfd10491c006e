"""Per-tenant rate limits, exact across gunicorn workers and gateway replicas: counters in Redis.

Windows are **fixed** and aligned to the epoch (a minute window is 12:03:00-12:03:59,
an hour window 12:00-12:59). Each check is one Redis call running `ADMIT_SCRIPT`, a Lua
script Redis executes atomically, so two replicas can never both take the last slot:

- `requests_per_minute` and `requests_per_hour` count admitted requests; a request is
  admitted only if every counter stays within its limit, and then all are incremented.
- `tokens_per_minute` counts the tokens of finished requests (added by `FINISH_SCRIPT`);
  a request is admitted while the minute's count is below the limit, so the tokens of
  requests already in flight may carry a tenant past it once, never twice in a row.

The same script also enforces the ceilings `budgets.py` asks for (monthly token and cost
budgets) and takes the request's concurrency lease (`concurrency.py`), so admission is one
round trip; `FINISH_SCRIPT` adds a finished request's tokens and gives the lease back, one
more round trip after the answer.

A fixed window allows up to twice the limit across a window boundary (the end of one
minute and the start of the next); a sliding log would not, at one Redis sorted-set entry
per request. Per-minute limits are about protecting the shared backends, for which the
fixed window is the usual trade-off.

Redis unreachable: `on_redis_error` decides (`allow`, the default, or `deny` with a 503);
either way each request decided without Redis is counted in
`llm_gateway_limiter_unavailable_total` (by metering.py), the failure is logged at most once
every 10 s per worker, and Redis is not tried again for `retry_after_error_seconds`, so an
outage costs one timeout per worker, not one per request.

The client is redis-py's asyncio client: every call is awaited on the gateway worker's event loop,
and the worker connects and loads the scripts before its first request (`SharedCounters.connect`).
The same client, deadline and skip-after-failure serve the model pools' shared admission
(pool_admission.py), which registers its own script here (`register_script`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field

from llm_common.errors import Refusal
from tenant_spec.rate_limits import RateLimits

log = logging.getLogger(__name__)
# What a Redis call may raise when Redis is away: its own errors, the socket's, and our deadline (TimeoutError).
REDIS_FAILURES = (redis.RedisError, OSError, TimeoutError)
MAX_CONNECTIONS = 100  # per gateway worker; a call waits for a free one (within its deadline)

# KEYS: one counter per check, then the tenant's lease set when a concurrency lease is asked for.
# ARGV: the number of checks n; 4 values per check: limit, amount an admitted request adds, TTL in
# seconds, and 1 when the counter must already exist (a budget counter, loaded from the ledger
# first); then, for a lease: the concurrency limit, the lease id and its TTL in milliseconds.
# A check refuses when `current + max(add, 1) > limit`: a request counter must have room for this
# request, a token or cost counter must not be used up yet. Leases are a sorted set scored by
# expiry (Redis's clock): expired ones are dropped, and a new one is added only while fewer than
# the limit remain. Returns 0 when admitted (every `add` applied, the lease added), i when check i
# (1-based) refused, -i when counter i is missing and must be seeded, n + 1 when the lease refused.
ADMIT_SCRIPT = """
local n = tonumber(ARGV[1])
local values = n > 0 and redis.call('MGET', unpack(KEYS, 1, n)) or {}
for i = 1, n do
  local limit, add = tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1])
  local current = values[i]
  if current == false then
    if ARGV[4 * i + 1] == '1' then return -i end
    current = 0
  end
  if tonumber(current) + math.max(add, 1) > limit then return i end
end
local lease_key, now_ms, ttl_ms
if #KEYS > n then
  lease_key, ttl_ms = KEYS[n + 1], tonumber(ARGV[4 * n + 4])
  local now = redis.call('TIME')
  now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', lease_key, '-inf', now_ms)
  if redis.call('ZCARD', lease_key) >= tonumber(ARGV[4 * n + 2]) then return n + 1 end
end
for i = 1, n do
  local add = tonumber(ARGV[4 * i - 1])
  if add > 0 and redis.call('INCRBY', KEYS[i], add) == add then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4 * i]))
  end
end
if lease_key then
  redis.call('ZADD', lease_key, now_ms + ttl_ms, ARGV[4 * n + 3])
  redis.call('PEXPIRE', lease_key, ttl_ms)
end
return 0
"""
# After a request: KEYS are counters (then a lease set), ARGV the number of counters n, 3 values per
# counter (amount, TTL in seconds, 1 when it must already exist), then the lease id. A counter that
# must exist and does not is left missing (-1 in the reply) for the caller to reseed from the ledger:
# adding one request's tokens to nothing would restart a month's total from that request.
FINISH_SCRIPT = """
local n = tonumber(ARGV[1])
local totals = {}
for i = 1, n do
  local amount, ttl = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  if ARGV[3 * i + 1] == '1' and redis.call('EXISTS', KEYS[i]) == 0 then
    totals[i] = -1
  else
    totals[i] = redis.call('INCRBY', KEYS[i], amount)
    redis.call('EXPIRE', KEYS[i], ttl, 'NX')
  end
end
if #KEYS > n then redis.call('ZREM', KEYS[n + 1], ARGV[3 * n + 2]) end
return totals
"""
# Raise a counter to at least ARGV[1] (with TTL ARGV[2]); returns its value. Seeding never lowers a
# counter, so two workers reseeding at once cannot undo each other's additions.
SEED_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local value = tonumber(ARGV[1])
if current < value then
  redis.call('SET', KEYS[1], value, 'EX', tonumber(ARGV[2]))
  return value
end
return current
"""


class LimitsConfig(BaseModel):
    """Where the shared counters live and what to do when that store is down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field(min_length=1, description="e.g. redis://127.0.0.1:6380/0")
    on_redis_error: Literal["allow", "deny"] = Field(
        "allow", description="allow (fail open, the default) or deny (503) while Redis cannot be reached"
    )
    socket_timeout_seconds: float = Field(
        0.25,
        gt=0,
        description="How long connecting, and each call (sent and answered), may take before Redis "
        "counts as unavailable.",
    )
    retry_after_error_seconds: float = Field(2.0, ge=0, description="How long to skip Redis after it failed.")
    key_prefix: str = "llm-tenants"
    lease_seconds: float = Field(
        30.0,
        ge=1,
        description="Concurrency leases, and a model pool's slots and waiting requests (pool_admission.py), "
        "expire this long after their gateway process stopped refreshing them (it died).",
    )


@dataclass(frozen=True)
class Check:
    """One counter a request must fit under (see ADMIT_SCRIPT).

    `add` is what an admitted request adds (0 for counters filled after the answer: tokens,
    cost); `ttl` how long the key lives; `must_exist` makes a missing key an error
    (CounterMissing) instead of 0; `reason`, `message` and `retry_after` (seconds until the
    request may succeed) make the refusal.
    """

    key: str
    limit: int
    add: int
    ttl: int
    reason: str
    message: str
    retry_after: int
    error_type: str | None = None
    must_exist: bool = False


class CounterMissing(Exception):
    """A check's counter is absent from Redis and must be seeded before admission."""

    def __init__(self, check: Check):
        super().__init__(check.key)
        self.check = check


class LimiterUnavailable(Exception):
    """Redis could not be asked (or was skipped after a recent failure)."""


@dataclass(frozen=True)
class Lease:
    """One request's slot in its tenant's concurrency limit (a member of the lease set `key`). A refresh
    pushes the expiry of the whole set too, unless `expire_key` is False (a model pool's sets: pool_admission.py)."""

    key: str
    id: str
    limit: int
    expire_key: bool = True


@dataclass(frozen=True)
class Amount:
    """What a finished request adds to one counter; `must_exist`: reseed rather than create it."""

    key: str
    value: int
    ttl: int
    must_exist: bool = False


class SharedCounters:
    """The Redis side: one atomic admission call before a request, one call after it."""

    def __init__(self, settings: LimitsConfig, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        # The call's deadline is one asyncio.timeout in `_call`, not redis-py's socket_timeout: on Python 3.11
        # that wraps every send in asyncio.wait_for, a task per write (0.1 ms of the gateway hop at c=1).
        # A blocking pool: with every connection busy (a burst of requests: each call holds one), a call
        # waits for one within its deadline, where redis-py's default pool raises at once ("Too many
        # connections"), which would count as Redis down and skip it for every request for a while.
        self.redis = redis.asyncio.Redis.from_pool(
            redis.asyncio.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=MAX_CONNECTIONS,
                timeout=None,
                socket_timeout=None,
                socket_connect_timeout=settings.socket_timeout_seconds,
            )
        )
        self._scripts = [ADMIT_SCRIPT, FINISH_SCRIPT, SEED_SCRIPT]  # loaded by connect()
        self._admit_script = self.redis.register_script(ADMIT_SCRIPT)
        self._finish_script = self.redis.register_script(FINISH_SCRIPT)
        self._seed_script = self.redis.register_script(SEED_SCRIPT)
        self._clock = clock
        self._skip_until = 0.0
        self._last_log = -math.inf

    async def connect(self) -> None:
        """Open a connection and load the scripts, before the worker takes requests (its lifespan).

        Otherwise a worker's first admissions would each connect, authenticate, find the script missing
        and load it inside their own deadline: several times the work of a call, enough on a busy machine
        to overrun it and fail open. Best effort: a Redis that is not there yet is logged and tried again
        by the first request.
        """
        try:
            async with asyncio.timeout(2 * self.settings.socket_timeout_seconds):  # connecting, then the call
                pipe = self.redis.pipeline(transaction=False)
                for script in self._scripts:
                    pipe.script_load(script)
                await pipe.execute()
        except REDIS_FAILURES as error:
            log.warning(
                "Redis at %s does not answer yet (%s): the first request tries again",
                _without_password(self.settings.redis_url),
                error or type(error).__name__,
            )

    def register_script(self, text: str):
        """A Lua script of another part of the gateway (pool_admission.py), loaded with ours by connect()."""
        self._scripts.append(text)
        return self.redis.register_script(text)

    def key(self, *parts: object) -> str:
        return ":".join([self.settings.key_prefix, *(str(part) for part in parts)])

    async def admit(self, checks: list[Check], lease: Lease | None = None) -> Check | Lease | None:
        """Apply every check's increment and take the lease if all fit; else return what refused
        (the first check that did, or the lease)."""
        if not checks and lease is None:
            return None
        keys = [check.key for check in checks]
        args: list[object] = [len(checks)]
        for check in checks:
            args += [check.limit, check.add, check.ttl, int(check.must_exist)]
        if lease is not None:
            keys.append(lease.key)
            args += [lease.limit, lease.id, round(self.settings.lease_seconds * 1000)]
        result = int(await self._call(lambda: self._admit_script(keys=keys, args=args)))
        if result < 0:
            raise CounterMissing(checks[-result - 1])
        if result == len(checks) + 1:
            return lease
        return checks[result - 1] if result else None

    async def finish(self, amounts: list[Amount], release: Lease | None = None) -> list[int | None]:
        """Add each amount (one round trip) and give the lease back; returns the new totals, None for a
        counter that must exist and was missing (reseed it from the ledger)."""
        if not amounts and release is None:
            return []
        keys = [amount.key for amount in amounts]
        args: list[object] = [len(amounts)]
        for amount in amounts:
            args += [amount.value, amount.ttl, int(amount.must_exist)]
        if release is not None:
            keys.append(release.key)
            args.append(release.id)
        totals = await self._call(lambda: self._finish_script(keys=keys, args=args))
        return [None if total < 0 else int(total) for total in totals]

    async def seed(self, key: str, value: int, ttl: int) -> int:
        """Raise a counter to at least `value` (never lower it); returns its value."""
        return int(await self._call(lambda: self._seed_script(keys=[key], args=[value, ttl])))

    async def refresh_leases(self, leases: list[Lease], keys: list[str] = ()) -> None:
        """Push the expiry of leases still held, and of `keys` (whole keys kept alive, such as a pool's
        waiting requests), by `lease_seconds` (one round trip)."""
        if not leases and not keys:
            return
        ttl_ms = round(self.settings.lease_seconds * 1000)

        async def run() -> None:
            now_seconds, micros = await self.redis.time()
            expiry = now_seconds * 1000 + micros // 1000 + ttl_ms
            pipe = self.redis.pipeline(transaction=False)
            for lease in leases:
                pipe.zadd(lease.key, {lease.id: expiry}, xx=True)
                if lease.expire_key:
                    pipe.pexpire(lease.key, ttl_ms)
            for key in keys:
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

        await self._call(run)

    async def call(self, action: Callable[[], Awaitable]):
        """Run one Redis exchange under the same deadline and failure handling as the limits' own calls:
        LimiterUnavailable when Redis fails, times out, or failed moments ago."""
        return await self._call(action)

    async def _call(self, action: Callable[[], Awaitable]):
        if self._clock() < self._skip_until:
            raise LimiterUnavailable("skipped: Redis failed moments ago")
        try:
            async with asyncio.timeout(self.settings.socket_timeout_seconds):
                return await action()
        except REDIS_FAILURES as error:
            self._skip_until = self._clock() + self.settings.retry_after_error_seconds
            self._log(error)
            raise LimiterUnavailable(str(error)) from None

    def _log(self, error: Exception) -> None:
        now = self._clock()
        if now - self._last_log < 10:
            return
        self._last_log = now
        log.error(
            "Redis at %s failed (%s): limits and budgets are %s until it answers",
            _without_password(self.settings.redis_url),
            error,
            "NOT enforced (on_redis_error=allow)"
            if self.settings.on_redis_error == "allow"
            else "refusing every request (on_redis_error=deny)",
        )

    async def aclose(self) -> None:
        await self.redis.aclose()


def window(seconds: int, now: float) -> tuple[int, int]:
    """(index of the fixed window holding `now`, whole seconds until it ends, at least 1)."""
    index = int(now // seconds)
    return index, max(1, math.ceil((index + 1) * seconds - now))


def rate_limit_checks(counters: SharedCounters, tenant: str, limits: RateLimits, now: float) -> list[Check]:
    """The three rate limit checks of one request, in the order they are reported."""
    minute, minute_left = window(60, now)
    hour, hour_left = window(3600, now)
    return [
        Check(
            counters.key("rl", tenant, "rpm", minute),
            limits.requests_per_minute,
            1,
            120,
            "rate_limit_requests_per_minute",
            f"rate limit of {limits.requests_per_minute} requests per minute reached; retry in {minute_left} s",
            minute_left,
        ),
        Check(
            counters.key("rl", tenant, "rph", hour),
            limits.requests_per_hour,
            1,
            7200,
            "rate_limit_requests_per_hour",
            f"rate limit of {limits.requests_per_hour} requests per hour reached; retry in {hour_left} s",
            hour_left,
        ),
        Check(
            tokens_key(counters, tenant, now),
            limits.tokens_per_minute,
            0,
            120,
            "rate_limit_tokens_per_minute",
            f"rate limit of {limits.tokens_per_minute} tokens per minute reached; retry in {minute_left} s",
            minute_left,
        ),
    ]


def tokens_key(counters: SharedCounters, tenant: str, now: float) -> str:
    return counters.key("rl", tenant, "tpm", window(60, now)[0])


def refusal(check: Check) -> Refusal:
    refused = Refusal(429, check.message, reason=check.reason, headers={"Retry-After": str(check.retry_after)})
    if check.error_type:
        refused.error_type = check.error_type
    return refused


def _without_password(url: str) -> str:
    """A Redis URL fit for a log: `redis://:secret@host` -> `redis://:***@host`."""
    return re.sub(r"(//[^/@]*:)[^/@]*@", r"\1***@", url)
