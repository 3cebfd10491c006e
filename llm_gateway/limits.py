"""Per-tenant rate limits, exact across gunicorn workers and gateway replicas: counters in Redis.

Windows are **fixed** and aligned to the epoch (a minute window is 12:03:00-12:03:59,
an hour window 12:00-12:59). Each check is one Redis call running `ADMIT_SCRIPT`, a Lua
script Redis executes atomically, so two replicas can never both take the last slot:

- `requests_per_minute` and `requests_per_hour` count admitted requests; a request is
  admitted only if every counter stays within its limit, and then all are incremented.
- `tokens_per_minute` counts the tokens of finished requests (added by `record_tokens`);
  a request is admitted while the minute's count is below the limit, so the tokens of
  requests already in flight may carry a tenant past it once, never twice in a row.

The same script also enforces the ceilings `budgets.py` asks for (monthly token and cost
budgets), so admission is one round trip.

A fixed window allows up to twice the limit across a window boundary (the end of one
minute and the start of the next); a sliding log would not, at one Redis sorted-set entry
per request. Per-minute limits are about protecting the shared backends, for which the
fixed window is the usual trade-off.

Redis unreachable: `on_redis_error` decides (`allow`, the default, or `deny` with a 503);
either way the event is counted in `llm_gateway_limiter_errors_total` and logged, at most
once every 10 s per worker, and Redis is not tried again for `retry_after_error_seconds`,
so an outage costs one timeout per worker, not one per request.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field

from llm_common.errors import Refusal

log = logging.getLogger(__name__)

# KEYS: one counter per check. ARGV: 4 values per check: limit, amount an admitted request
# adds, TTL in seconds, and 1 when the counter must already exist (a budget counter, loaded
# from the ledger first). A check refuses when `current + max(add, 1) > limit`: a request
# counter must have room for this request, a token or cost counter must not be used up yet.
# Returns 0 when admitted (and every `add` applied), i when check i (1-based) refused, or -i
# when counter i is missing and must be seeded.
ADMIT_SCRIPT = """
local values = redis.call('MGET', unpack(KEYS))
for i = 1, #KEYS do
  local limit, add = tonumber(ARGV[4 * i - 3]), tonumber(ARGV[4 * i - 2])
  local current = values[i]
  if current == false then
    if ARGV[4 * i] == '1' then return -i end
    current = 0
  end
  if tonumber(current) + math.max(add, 1) > limit then return i end
end
for i = 1, #KEYS do
  local add = tonumber(ARGV[4 * i - 2])
  if add > 0 and redis.call('INCRBY', KEYS[i], add) == add then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4 * i - 1]))
  end
end
return 0
"""


class RateLimits(BaseModel):
    """A tenant's limits (the spec's `rate_limits`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    requests_per_minute: int = Field(60, ge=1)
    requests_per_hour: int = Field(1000, ge=1)
    tokens_per_minute: int = Field(20000, ge=1)


class LimitsConfig(BaseModel):
    """Where the shared counters live and what to do when that store is down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field(min_length=1, description="e.g. redis://127.0.0.1:6380/0")
    on_redis_error: Literal["allow", "deny"] = Field(
        "allow", description="allow (fail open, the default) or deny (503) while Redis cannot be reached")
    socket_timeout_seconds: float = Field(0.25, gt=0)
    retry_after_error_seconds: float = Field(2.0, ge=0, description="How long to skip Redis after it failed.")
    key_prefix: str = "llm-tenants"


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


class SharedCounters:
    """The Redis side: one atomic admission call, one pipelined increment after a request."""

    def __init__(self, settings: LimitsConfig, on_error: Callable[[str], None] = lambda reason: None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.socket_timeout_seconds,
                                          socket_connect_timeout=settings.socket_timeout_seconds)
        self._script = self.redis.register_script(ADMIT_SCRIPT)
        self._on_error = on_error
        self._clock = clock
        self._skip_until = 0.0
        self._last_log = -math.inf
        self._lock = threading.Lock()

    def key(self, *parts: object) -> str:
        return ":".join([self.settings.key_prefix, *(str(part) for part in parts)])

    def admit(self, checks: list[Check]) -> Check | None:
        """Increment every check's counter if all fit; else return the first check that refused."""
        if not checks:
            return None
        args: list[int] = []
        for check in checks:
            args += [check.limit, check.add, check.ttl, int(check.must_exist)]
        result = int(self._call(lambda: self._script(keys=[c.key for c in checks], args=args)))
        if result < 0:
            raise CounterMissing(checks[-result - 1])
        return checks[result - 1] if result else None

    def add(self, amounts: list[tuple[str, int, int]]) -> list[int]:
        """INCRBY each (key, amount, ttl) in one round trip; returns the new values."""
        def run() -> list[int]:
            pipe = self.redis.pipeline(transaction=False)
            for key, amount, ttl in amounts:
                pipe.incrby(key, amount)
                pipe.expire(key, ttl, nx=True)
            return pipe.execute()[::2]
        return self._call(run)

    def seed(self, key: str, value: int, ttl: int) -> None:
        """Set a counter unless another worker already did (SET NX)."""
        self._call(lambda: self.redis.set(key, value, ex=ttl, nx=True))

    def _call(self, action: Callable):
        if self._clock() < self._skip_until:
            raise LimiterUnavailable("skipped: Redis failed moments ago")
        try:
            return action()
        except redis.RedisError as error:
            self._skip_until = self._clock() + self.settings.retry_after_error_seconds
            self._on_error(type(error).__name__)
            self._log(error)
            raise LimiterUnavailable(str(error)) from None

    def _log(self, error: Exception) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last_log < 10:
                return
            self._last_log = now
        log.error("Redis at %s failed (%s): limits and budgets are %s until it answers",
                  _without_password(self.settings.redis_url), error,
                  "NOT enforced (on_redis_error=allow)" if self.settings.on_redis_error == "allow"
                  else "refusing every request (on_redis_error=deny)")

    def close(self) -> None:
        self.redis.close()


def window(seconds: int, now: float) -> tuple[int, int]:
    """(index of the fixed window holding `now`, whole seconds until it ends, at least 1)."""
    index = int(now // seconds)
    return index, max(1, math.ceil((index + 1) * seconds - now))


def rate_limit_checks(counters: SharedCounters, tenant: str, limits: RateLimits, now: float) -> list[Check]:
    """The three rate limit checks of one request, in the order they are reported."""
    minute, minute_left = window(60, now)
    hour, hour_left = window(3600, now)
    return [
        Check(counters.key("rl", tenant, "rpm", minute), limits.requests_per_minute, 1, 120,
              "rate_limit_requests_per_minute",
              f"rate limit of {limits.requests_per_minute} requests per minute reached; retry in {minute_left} s",
              minute_left),
        Check(counters.key("rl", tenant, "rph", hour), limits.requests_per_hour, 1, 7200,
              "rate_limit_requests_per_hour",
              f"rate limit of {limits.requests_per_hour} requests per hour reached; retry in {hour_left} s",
              hour_left),
        Check(tokens_key(counters, tenant, now), limits.tokens_per_minute, 0, 120,
              "rate_limit_tokens_per_minute",
              f"rate limit of {limits.tokens_per_minute} tokens per minute reached; retry in {minute_left} s",
              minute_left),
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
