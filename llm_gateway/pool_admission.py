"""One admission for a model's whole pool, across every gateway process and replica (Redis).

A model's capacity is `max_sequences` (the catalogue's, per member) times its usable members, and
every gateway worker process of every replica takes its slots from the same count in Redis, in the
weighted fair order and with the claims of fair_queue.py (whose docstring says what they are for):

- **Slots are leases per member.** A request holds a slot as a member of its member's sorted set,
  scored by expiry on Redis's clock (and of the pool's set of all its leases, where lapsed ones are
  found). One Lua script (`POOL_SCRIPT`, atomic) takes and gives them back; it drops lapsed leases
  before counting.
  Admission picks the member with the most free slots among the usable members of the process that
  asks (health checks and ejection stay per process), ties going to its least busy one. A connect
  failure on that member gives the slot back and asks again, with the member left out.
- **Fair order is kept in Redis:** per tenant, its virtual service (slots given / weight; an idle
  tenant starts at the pool's current virtual time, so idling earns no credit), its claim and
  when it last held it, its queue of waiting requests (in arrival order) and its slots in use.
  A request that finds the pool full (or a free slot held by another tenant's claim) joins its
  tenant's queue in Redis. Whoever gives a slot back (or a tick, when a claim ends or a member came
  back) hands every free slot, in the same script, to the head of the queue of the backlogged
  tenant with the least virtual service that may take it, and publishes the grant on the pub/sub
  channel of the process that waits for it: one message per granted request, no thundering herd.
  Each process also asks Redis about its waiting requests every POLL_SECONDS, for a message lost
  while its subscription was down.
- **Bounds when a process dies.** Each process pushes the expiry of the slots it holds and of its
  waiting requests forward every third of `limits.lease_seconds` (concurrency.py's refresh task).
  A process killed with SIGKILL stops doing so: its slots lapse within `lease_seconds` (30 s by
  default) of its death, its waiting requests too (a slot granted to one of them meanwhile lapses at
  the same time, since it is given the waiting request's own expiry). Until then those slots count
  as taken; a request waiting behind them is admitted within POLL_SECONDS of their lapse. A process
  that stalls longer than a lease loses its slots the same way.
- **vLLM's own count corrects drift.** For members of a `vllm` model the health checks also read
  `vllm:num_requests_running` + `vllm:num_requests_waiting` from the member's /metrics; what it
  reports beyond the leases on it (another gateway without Redis, requests whose leases lapsed) is
  taken off its free slots until the next check (`llm_gateway_pool_member_unleased_sequences`).
  The leases are counted just before and just after the scrape and the larger count is used, so
  admissions and releases during the scrape never make the correction too large. Not for `cpu`
  members: the CPU model server does not export those series.
- **Redis unavailable** (an error, or no answer within `socket_timeout_seconds`; then skipped for
  `retry_after_error_seconds`, see limits.py): each process admits from its own FairQueue over the
  whole capacity, minus the shared slots it still holds, logs the switch once, counts each such
  admission in `llm_gateway_pool_admission_fallback_total`, and returns to shared admission on its
  own as soon as Redis answers again. A request waiting in Redis's queue when Redis stops answering
  moves to the local queue for what is left of its `queue_timeout` (the process notices within
  POLL_SECONDS). Every Redis exchange has the limits' deadline, so no request hangs on a dead
  Redis. Consistent with `on_redis_error`: under `allow` the gateway keeps serving, each process
  counting only its own slots (up to N times the pool's capacity over N processes; vLLM's own
  scheduler queues the excess); under `deny` Metering answers 503 before a request reaches a pool.
  Slots taken locally are not in Redis: once it is back they are not counted until they end (the
  vLLM correction above sees them).
- **Cost**: one script call before the backend is called and one after the answer (off the
  caller's path), each a fixed number of Redis commands plus one per member; the script's own work
  grows with the tenants present in the pool (measured from one process, round trips included:
  0.4 ms per admission and release with 1 tenant, 0.6 ms with 50, 1.3 ms with 200 each holding slots).
- Without Redis configured (no `limits`), each process keeps its own FairQueue, as before; a pool
  without `max_sequences` keeps no queue at all.

Keys, under `<limits.key_prefix>:pool:<model>` (P):

    P:m:<member URL>   sorted set: request id -> lease expiry (ms, Redis clock): the slots on the member
    P:leases           sorted set: "<member URL>\\t<tenant>\\t<request id>" -> lease expiry: every slot of
                       the pool, where lapsed ones are found (and taken off their member and tenant)
    P:weight, P:virtual, P:claim, P:claimed_at, P:in_flight, P:waiting
                       hashes: tenant -> its weight, virtual service, claim, when it last held its claim,
                       slots in use, requests waiting (a tenant with nothing to remember is dropped)
    P:q:<tenant>       sorted set: request id -> arrival number: the tenant's waiting requests
    P:waiters          sorted set: "<tenant>\\t<request id>" -> expiry: every waiting request, where lapsed
                       ones are found (and taken out of their queue)
    P:w:<request id>   hash: channel (its process's), member (once granted); expires a lease after its
                       process last refreshed it
    P:state            hash: vnow (the virtual service of the latest grant), seq (arrivals)

The script reads keys it computes (members, queues) rather than declaring them all: one Redis (or one
hash slot) holds a pool's keys, as for the rest of the gateway's counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from llm_gateway.concurrency import ConcurrencyLeases
from llm_gateway.fair_queue import FairQueue, queue_full, queue_timeout
from llm_gateway.limits import Lease, LimiterUnavailable, SharedCounters
from llm_gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often a process asks Redis about its waiting requests (grants whose message was lost)
LISTEN_SECONDS = 5.0  # how long one read of the wake-up channel waits before looking again
ENGINE_SEQUENCES = ("vllm:num_requests_running", "vllm:num_requests_waiting")

# ARGV: 1 the pool's key prefix P, 2 slots per member, 3 share_hold (ms), 4 lease (ms), 5 n members, then n
# pairs (member URL, sequences it runs beyond its leases), then the operation and its arguments:
#   acquire <tenant> <weight> <request id> <channel> <max queued>  -> {1, member} granted, {0, claim end} queued,
#                                                                     {2, -1} the tenant's queue is full
#   release <tenant> <request id> <member>                        -> {1, claim end}
#   leave   <tenant> <request id>                                 -> {0, -1} left the queue; {1, claim end}
#                                                                     granted meanwhile: the slot given back
#   dispatch                                                      -> {0, claim end}
#   count                                                         -> the leases on each member
# "claim end": ms until the oldest claim keeping free slots from waiting requests ends (-1: none); ask
# `dispatch` then. Every operation that frees or adds a slot hands free slots to waiting requests. The
# tenants' state is one hash per field (a fixed number of calls however many tenants), and lapsed leases
# are found in one set scored by expiry: a call costs the same with 1 tenant or 200, plus one per member.
POOL_SCRIPT = r"""
local P = ARGV[1]
local per_member, share_hold, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local op_at = 6 + 2 * n
local op = ARGV[op_at]
local function arg(k) return ARGV[op_at + k] end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local LEASES, WAITERS, STATE = P .. ':leases', P .. ':waiters', P .. ':state'
local FIELDS = {'weight', 'virtual', 'claim', 'claimed_at', 'in_flight', 'waiting'}
local function lease_of(url, name, id) return url .. '\t' .. name .. '\t' .. id end

-- A waiting request that leaves before it was granted: out of its queue, nothing else changes.
if op == 'leave' and redis.call('ZREM', P .. ':q:' .. arg(1), arg(2)) == 1 then
  redis.call('DEL', P .. ':w:' .. arg(2))
  redis.call('ZREM', WAITERS, arg(1) .. '\t' .. arg(2))
  if redis.call('HEXISTS', P .. ':weight', arg(1)) == 1
      and redis.call('HINCRBY', P .. ':waiting', arg(1), -1) < 0 then
    redis.call('HSET', P .. ':waiting', arg(1), 0)
  end
  return {0, -1}
end

-- The tenants: weight, virtual service, claim and when it was last held, slots in use, requests waiting.
local tenants = {}
local raw = {}
for _, field in ipairs(FIELDS) do raw[field] = redis.call('HGETALL', P .. ':' .. field) end
for i = 1, #raw.weight, 2 do
  tenants[raw.weight[i]] = {weight = tonumber(raw.weight[i + 1]), virtual = 0, claim = 0, claimed_at = now,
                            in_flight = 0, waiting = 0, changed = false}
end
for f = 2, #FIELDS do
  local values = raw[FIELDS[f]]
  for i = 1, #values, 2 do
    local s = tenants[values[i]]
    if s then s[FIELDS[f]] = tonumber(values[i + 1]) end
  end
end
local vnow = tonumber(redis.call('HGET', STATE, 'vnow')) or 0

-- Leases that lapsed (their process stopped refreshing them): off their member and their tenant.
local lapsed = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
for _, lease in ipairs(lapsed) do
  local url, name, id = string.match(lease, '^([^\t]*)\t([^\t]*)\t(.*)$')
  redis.call('ZREM', P .. ':m:' .. url, id)
  local s = tenants[name]
  if s and s.in_flight > 0 then s.in_flight, s.changed = s.in_flight - 1, true end
end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', LEASES, '-inf', now) end
-- Waiting requests that lapsed (their process died): out of their queue.
lapsed = redis.call('ZRANGEBYSCORE', WAITERS, '-inf', now)
for _, waiter in ipairs(lapsed) do
  local name, id = string.match(waiter, '^([^\t]*)\t(.*)$')
  local s = tenants[name]
  if redis.call('ZREM', P .. ':q:' .. name, id) == 1 and s and s.waiting > 0 then
    s.waiting, s.changed = s.waiting - 1, true
  end
end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', WAITERS, '-inf', now) end

-- A slot given back (by a release, or by a waiting request that leaves after it was granted).
if op == 'release' or op == 'leave' then
  local name, id = arg(1), arg(2)
  local waiter = P .. ':w:' .. id
  local member = arg(3)
  if op == 'leave' then member = redis.call('HGET', waiter, 'member') end
  redis.call('DEL', waiter)
  if member then
    redis.call('ZREM', P .. ':m:' .. member, id)
    local s = tenants[name]
    if redis.call('ZREM', LEASES, lease_of(member, name, id)) == 1 and s then
      if s.in_flight == s.claim then s.claimed_at = now end  -- it held its whole claim until now
      s.in_flight, s.changed = math.max(0, s.in_flight - 1), true
    end
  end
end

local function save()
  local sets, gone = {}, {}
  for _, field in ipairs(FIELDS) do sets[field] = {} end
  for name, s in pairs(tenants) do
    if s.in_flight == 0 and s.waiting == 0 and s.claim == 0 and s.virtual <= vnow then
      gone[#gone + 1] = name  -- nothing to remember: idle tenants start at vnow anyway
    elseif s.changed then
      for _, field in ipairs(FIELDS) do
        local values = sets[field]
        values[#values + 1], values[#values + 2] = name, s[field]
      end
    end
  end
  for _, field in ipairs(FIELDS) do
    if #sets[field] > 0 then redis.call('HSET', P .. ':' .. field, unpack(sets[field])) end
    if #gone > 0 then redis.call('HDEL', P .. ':' .. field, unpack(gone)) end
  end
  redis.call('HSET', STATE, 'vnow', vnow)
end

-- Free slots on the members the caller may use.
local urls, free, leased = {}, {}, {}
local free_total, capacity = 0, 0
for i = 1, n do
  local url, unleased = ARGV[4 + 2 * i], tonumber(ARGV[5 + 2 * i])
  leased[i] = redis.call('ZCARD', P .. ':m:' .. url)
  local usable = math.max(0, per_member - unleased)
  urls[i], free[i] = url, math.max(0, usable - leased[i])
  free_total, capacity = free_total + free[i], capacity + usable
end
if op == 'count' then
  save()
  return leased
end

-- Slots each tenant claims but does not use, capped at its share; claims that are over end first.
local function claimed()
  local present = 0
  for _, s in pairs(tenants) do
    if (share_hold <= 0 or now - s.claimed_at > share_hold) and s.claim ~= s.in_flight then
      s.claim, s.claimed_at, s.changed = s.in_flight, now, true
    end
    if s.in_flight > 0 or s.waiting > 0 or s.claim > 0 then present = present + s.weight end
  end
  local kept, total = {}, 0
  for name, s in pairs(tenants) do
    if s.claim > s.in_flight then
      local keep = math.min(s.claim, math.floor(capacity * s.weight / present)) - s.in_flight
      if keep > 0 then kept[name], total = keep, total + keep end
    end
  end
  return kept, total
end
local function free_for(name, kept, total)  -- a free slot no other tenant's claim keeps
  return free_total - (total - (kept[name] or 0)) >= 1
end

local function grant(name, id, expiry)
  local best = nil
  for i = 1, n do
    if free[i] > 0 and (best == nil or free[i] > free[best]) then best = i end
  end
  local s = tenants[name]
  redis.call('ZADD', P .. ':m:' .. urls[best], expiry, id)
  redis.call('ZADD', LEASES, expiry, lease_of(urls[best], name, id))
  free[best], free_total = free[best] - 1, free_total - 1
  s.in_flight = s.in_flight + 1
  if s.in_flight >= s.claim then s.claim, s.claimed_at = s.in_flight, now end
  s.virtual = math.max(s.virtual, vnow)
  vnow = s.virtual
  s.virtual = s.virtual + 1 / s.weight
  s.changed = true
  return urls[best]
end

local claim_end, granted = -1, {}
local function dispatch()
  while free_total >= 1 do
    local kept, total = claimed()
    local best = nil
    for name, s in pairs(tenants) do
      if s.waiting > 0 and free_for(name, kept, total) and (best == nil or s.virtual < tenants[best].virtual
          or (s.virtual == tenants[best].virtual and name < best)) then
        best = name
      end
    end
    if best == nil then
      for name in pairs(kept) do
        local ends = tenants[name].claimed_at + share_hold - now
        if claim_end < 0 or ends < claim_end then claim_end = math.max(0, ends) end
      end
      return
    end
    local s, queue = tenants[best], P .. ':q:' .. best
    local id = redis.call('ZRANGE', queue, 0, 0)[1]
    if id == nil then
      s.waiting, s.changed = 0, true  -- a count that outlived its queue
    else
      redis.call('ZREM', queue, id)
      redis.call('ZREM', WAITERS, best .. '\t' .. id)
      s.waiting, s.changed = s.waiting - 1, true
      local waiter = P .. ':w:' .. id
      local ttl = redis.call('PTTL', waiter)
      if ttl > 0 then  -- else its process died: skip it
        local member = grant(best, id, now + ttl)
        redis.call('HSET', waiter, 'member', member)
        redis.call('PUBLISH', redis.call('HGET', waiter, 'channel'), id .. ' ' .. member)
        granted[id] = member
      end
    end
  end
end

if op == 'acquire' then
  local name, weight, id, channel, max_queued = arg(1), tonumber(arg(2)), arg(3), arg(4), tonumber(arg(5))
  local s = tenants[name]
  if s == nil then
    s = {weight = weight, virtual = 0, claim = 0, claimed_at = now, in_flight = 0, waiting = 0, changed = true}
    tenants[name] = s
  elseif s.weight ~= weight then
    s.weight, s.changed = weight, true
  end
  local kept, total = claimed()
  if s.waiting == 0 and free_for(name, kept, total) then
    local anyone = false
    for _, other in pairs(tenants) do
      if other.waiting > 0 then anyone = true end
    end
    if not anyone or (kept[name] or 0) > 0 then  -- nobody waits, or the slot is one this tenant claims
      local member = grant(name, id, now + lease_ms)
      save()
      return {1, member}
    end
  end
  local queue = P .. ':q:' .. name
  if s.waiting >= max_queued then  -- requests of processes that died are not waiting: drop them first
    for _, other in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
      if redis.call('EXISTS', P .. ':w:' .. other) == 0 then
        redis.call('ZREM', queue, other)
        redis.call('ZREM', WAITERS, name .. '\t' .. other)
      end
    end
    s.waiting, s.changed = redis.call('ZCARD', queue), true
    if s.waiting >= max_queued then
      save()
      return {2, -1}
    end
  end
  if s.waiting == 0 then s.virtual = math.max(s.virtual, vnow) end  -- no credit for idle time
  redis.call('ZADD', queue, redis.call('HINCRBY', STATE, 'seq', 1), id)
  redis.call('ZADD', WAITERS, now + lease_ms, name .. '\t' .. id)
  local waiter = P .. ':w:' .. id
  redis.call('HSET', waiter, 'channel', channel)
  redis.call('PEXPIRE', waiter, lease_ms)
  s.waiting, s.changed = s.waiting + 1, true
  dispatch()  -- a free slot may be held by claims: given in fair order once they end
  save()
  if granted[id] then return {1, granted[id]} end
  return {0, claim_end}
end
dispatch()
save()
if op == 'dispatch' then return {0, claim_end} end
return {1, claim_end}
"""
GRANTED, QUEUED, FULL = 1, 0, 2

MemberView = list[tuple[str, int]]  # (URL, sequences it runs beyond its leases) of usable members, preferred first


class WaiterLost(Exception):
    """Redis no longer knows a waiting request (it restarted, or this process stalled past a lease)."""


@dataclass
class Slot:
    """A slot a request holds until `release()` (idempotent): on `member` (shared admission), or one of
    this process's own queue (`member` None: any usable member may serve it)."""

    member: str | None
    _give_back: Callable[[], None]
    _released: bool = field(default=False, init=False)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._give_back()


class AdmissionHub:
    """The process's side of shared admission, for all its pools: the pub/sub channel grants arrive on,
    the requests it has waiting, the poll for lost grants, and background Redis calls. One per worker."""

    def __init__(self, counters: SharedCounters, leases: ConcurrencyLeases):
        self.counters = counters
        self.leases = leases
        self.script = counters.register_script(POOL_SCRIPT)
        self._token: str | None = None
        self._sequence = 0
        self._waiting: dict[str, tuple[str, asyncio.Future]] = {}  # request id -> (its waiter key, future)
        self._queued: set[str] = set()  # those Redis answered "queued" for: polled
        self._leaving: dict[str, Callable[[], Awaitable[None]]] = {}  # gave up waiting; Redis not told yet
        self._tasks: set[asyncio.Task] = set()
        self._listener: asyncio.Task | None = None
        self._poller: asyncio.Task | None = None
        self._work: asyncio.Event | None = None
        self._users = 0
        self._pools: list[SharedSlots] = []

    @property
    def token(self) -> str:
        """This process's name in Redis (made in the worker, after gunicorn forked it)."""
        if self._token is None:
            self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        return self._token

    @property
    def channel(self) -> str:
        return self.counters.key("pool-wake", self.token)

    def new_id(self) -> str:
        self._sequence += 1
        return f"{self.token}.{self._sequence}"

    async def run(self, args: list) -> list:
        """One POOL_SCRIPT call (LimiterUnavailable when Redis cannot be asked)."""
        return await self.counters.call(lambda: self.script(args=args))

    # --- lifecycle ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """A pool starts using the hub (on the worker's event loop): listen and poll."""
        self._users += 1
        self._start()

    def _start(self) -> None:
        if self._listener is None:
            loop = asyncio.get_running_loop()
            self._work = asyncio.Event()
            self._listener = loop.create_task(self._listen(), name="pool-admission-listener")
            self._poller = loop.create_task(self._poll(), name="pool-admission-poller")

    async def detach(self) -> None:
        """A pool closes; the last one stops the tasks."""
        self._users -= 1
        if self._users > 0:
            return
        for task in (self._listener, self._poller, *self._tasks):
            if task is not None:
                task.cancel()
        for task in (self._listener, self._poller, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listener = self._poller = None
        self._tasks.clear()

    def spawn(self, work: Coroutine) -> None:
        """Run `work` in the background (a release from a stream's on_close, a leave after a cancellation)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def drain(self) -> None:
        """Wait for the background calls started so far (releases, leaves, dispatches)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pool admission: background call failed", exc_info=task.exception())

    # --- waiting requests -------------------------------------------------------------------------

    def expect(self, request: str, waiter_key: str) -> asyncio.Future:
        """Register a request that may have to wait, before asking Redis: its grant's message may come
        before the script's answer."""
        self._start()
        future = asyncio.get_running_loop().create_future()
        self._waiting[request] = (waiter_key, future)
        return future

    def waits(self, request: str) -> None:
        """Redis queued a registered request: poll for it."""
        self._queued.add(request)
        self._work.set()

    def forget(self, request: str) -> None:
        self._waiting.pop(request, None)
        self._queued.discard(request)

    def add_pool(self, slots: SharedSlots) -> None:
        self._pools.append(slots)

    def leave_later(self, request: str, leave: Callable[[], Awaitable[None]]) -> None:
        """Redis could not be told that a request stopped waiting: tell it on a later poll (until its
        waiting entry has expired)."""
        self._leaving[request] = leave
        self._work.set()

    def _granted(self, data: bytes) -> None:
        request, _, member = data.decode().partition(" ")
        entry = self._waiting.get(request)
        if entry is not None and not entry[1].done():
            entry[1].set_result(member)

    async def _listen(self) -> None:
        """Grants for this process's waiting requests, from its channel; resubscribes after a failure."""
        delay = 0.1
        while True:
            pubsub = self.counters.redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(4 * self.counters.settings.socket_timeout_seconds):
                    await pubsub.subscribe(self.channel)
                delay = 0.1
                self._work.set()  # a grant published while not subscribed is found by the next poll
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self._granted(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away or the connection broken: the poll covers the gap
                log.debug("pool admission: wake-up channel lost (%s); resubscribing", error)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)

    async def _poll(self) -> None:
        """Every POLL_SECONDS while requests wait: grants whose message was lost, waiting entries Redis lost,
        leaves Redis was not told of. Redis unavailable: every waiting request moves to its local queue."""
        while True:
            await self._work.wait()
            await asyncio.sleep(POLL_SECONDS)
            if not self._queued and not self._leaving:
                self._work.clear()
                continue
            try:
                await self._poll_once()
            except LimiterUnavailable as error:
                for request in list(self._queued):
                    future = self._waiting[request][1]
                    if not future.done():
                        future.set_exception(LimiterUnavailable(str(error)))
            except Exception:  # keep polling: waiting requests depend on it when a message is lost
                log.exception("pool admission: polling Redis failed")

    async def _poll_once(self) -> None:
        waiting = [(request, self._waiting[request]) for request in self._queued]
        if waiting:

            async def ask() -> list:
                pipe = self.counters.redis.pipeline(transaction=False)
                for _, (waiter_key, _) in waiting:
                    pipe.hmget(waiter_key, "member", "channel")
                return await pipe.execute()

            for (request, (_, future)), (member, channel) in zip(waiting, await self.counters.call(ask), strict=True):
                if future.done() or request not in self._queued:
                    continue
                if member is not None:
                    future.set_result(member.decode())
                elif channel is None:
                    future.set_exception(WaiterLost(request))
        for request, leave in list(self._leaving.items()):
            await leave()  # LimiterUnavailable: try again on the next poll
            self._leaving.pop(request, None)
        for slots in self._pools:
            if slots.has_waiting():  # slots that lapsed (a process died) are free: nobody gave them back
                await slots.dispatch()


class SharedSlots:
    """One pool's slots in Redis (POOL_SCRIPT), from this process."""

    def __init__(
        self,
        hub: AdmissionHub,
        pool: str,
        per_member: int,
        members: Callable[[], MemberView],
        metrics: GatewayMetrics,
        *,
        max_queued_per_tenant: int,
        queue_timeout: float,
        share_hold: float,
    ):
        self.hub = hub
        self.pool = pool
        self.per_member = per_member
        self.members = members
        self.metrics = metrics
        self.max_queued_per_tenant = max_queued_per_tenant
        self.queue_timeout = queue_timeout
        self.share_hold = share_hold
        self.prefix = hub.counters.key("pool", pool)
        self.held = 0  # slots this process holds
        self._waiting: dict[str, int] = {}  # tenant -> requests of this process waiting
        self._dispatch_timer: asyncio.TimerHandle | None = None
        self._dispatch_at = 0.0
        hub.add_pool(self)

    def key(self, *parts: str) -> str:
        return ":".join([self.prefix, *parts])

    def waiting(self, tenant: str) -> int:
        """Requests of `tenant` waiting in this process."""
        return self._waiting.get(tenant, 0)

    def has_waiting(self) -> bool:
        return any(self._waiting.values())

    async def _run(self, members: MemberView, op: str, *rest: object) -> list:
        args: list[object] = [
            self.prefix,
            self.per_member,
            round(self.share_hold * 1000, 3),
            round(self.hub.counters.settings.lease_seconds * 1000),
            len(members),
        ]
        for url, unleased in members:
            args += [url, unleased]
        return await self.hub.run([*args, op, *rest])

    # --- taking a slot -----------------------------------------------------------------------------

    async def acquire(self, tenant: str, weight: float, members: MemberView, timeout: float) -> tuple[str, str]:
        """A slot for `tenant` on one of `members`: (request id, member URL), waiting in fair order at most
        `timeout` s. Refusal 429/503 as the local queue's; LimiterUnavailable when Redis cannot be asked."""
        deadline = time.monotonic() + timeout
        while True:
            request = self.hub.new_id()
            waiter = self.key("w", request)
            future = self.hub.expect(request, waiter)
            try:
                kind, value = await self._run(
                    members, "acquire", tenant, weight, request, self.hub.channel, self.max_queued_per_tenant
                )
            except BaseException:
                self.hub.forget(request)
                raise  # had Redis queued or granted it after all, the entry lapses within a lease
            if kind != QUEUED:
                self.hub.forget(request)
                if kind == FULL:
                    raise queue_full(self.max_queued_per_tenant)
                return request, self._hold(tenant, request, value.decode())
            self._dispatch_after(value)
            try:
                member = await self._wait(tenant, request, waiter, future, deadline - time.monotonic())
            except WaiterLost:
                await self._leave(tenant, request)  # whatever is left of it
                continue  # Redis forgot it: ask again
            return request, self._hold(tenant, request, member)

    async def _wait(self, tenant: str, request: str, waiter: str, future: asyncio.Future, timeout: float) -> str:
        entry = Lease(self.key("waiters"), f"{tenant}\t{request}", 0, expire_key=False)
        self.hub.leases.keep_alive(waiter)
        self.hub.leases.held(entry)
        self.hub.waits(request)
        self._count_waiting(tenant, +1)
        queued = time.perf_counter()
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, timeout))
        except TimeoutError:
            await self._leave(tenant, request)
            raise queue_timeout(self.queue_timeout) from None
        except LimiterUnavailable:
            self.hub.leave_later(request, lambda: self._leave_now(tenant, request))
            raise
        except WaiterLost:
            raise
        except BaseException:  # cancelled: the caller left
            self.hub.spawn(self._leave(tenant, request))
            raise
        finally:
            self.hub.forget(request)
            self.hub.leases.let_go(waiter)
            self.hub.leases.released(entry)
            self._count_waiting(tenant, -1)
            self.metrics.queue_wait.labels(tenant=tenant, backend=self.pool).observe(time.perf_counter() - queued)

    async def _leave(self, tenant: str, request: str) -> None:
        try:
            await self._leave_now(tenant, request)
        except LimiterUnavailable:
            self.hub.leave_later(request, lambda: self._leave_now(tenant, request))

    async def _leave_now(self, tenant: str, request: str) -> None:
        """Out of the queue, or, if it was granted meanwhile, its slot given back (one call)."""
        _, claim_end = await self._run(self.members(), "leave", tenant, request)
        self._dispatch_after(claim_end)

    def _hold(self, tenant: str, request: str, member: str) -> str:
        self.held += 1
        for lease in self._leases(tenant, request, member):
            self.hub.leases.held(lease)
        return member

    def _leases(self, tenant: str, request: str, member: str) -> tuple[Lease, Lease]:
        """A slot's two entries (refreshed together); their keys never expire as a whole (the script removes
        lapsed entries, and must see them to take them off their tenant's count)."""
        return (
            Lease(self.key("m", member), request, 0, expire_key=False),
            Lease(self.key("leases"), f"{member}\t{tenant}\t{request}", 0, expire_key=False),
        )

    # --- giving it back ----------------------------------------------------------------------------

    def release(self, tenant: str, request: str, member: str) -> None:
        """Give the slot back (in the background: called from a stream's on_close too); the fairest waiting
        requests get the free slots in the same call."""
        self.held -= 1
        for lease in self._leases(tenant, request, member):
            self.hub.leases.released(lease)
        self.hub.spawn(self._release(tenant, request, member))

    async def _release(self, tenant: str, request: str, member: str) -> None:
        try:
            _, claim_end = await self._run(self.members(), "release", tenant, request, member)
        except LimiterUnavailable:
            return  # no longer refreshed: it lapses within a lease
        self._dispatch_after(claim_end)

    async def dispatch(self) -> None:
        """Hand free slots to waiting requests (a member came back, or a claim ended)."""
        try:
            _, claim_end = await self._run(self.members(), "dispatch")
        except LimiterUnavailable:
            return
        self._dispatch_after(claim_end)

    def _dispatch_after(self, claim_end_ms: int) -> None:
        """Ask for a dispatch when a claim that keeps free slots from waiting requests ends."""
        if claim_end_ms < 0:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + claim_end_ms / 1000 + 0.002
        if self._dispatch_timer is not None and self._dispatch_at <= when:
            return
        if self._dispatch_timer is not None:
            self._dispatch_timer.cancel()
        self._dispatch_at = when
        self._dispatch_timer = loop.call_at(when, self._claim_ended)

    def _claim_ended(self) -> None:
        self._dispatch_timer = None
        self.hub.spawn(self.dispatch())

    async def member_leases(self, urls: list[str]) -> list[int]:
        """The live leases on each member (LimiterUnavailable without Redis)."""
        return [int(count) for count in await self._run([(url, 0) for url in urls], "count")]

    def _count_waiting(self, tenant: str, delta: int) -> None:
        self._waiting[tenant] = self._waiting.get(tenant, 0) + delta
        self.metrics.queue_depth.labels(tenant=tenant, backend=self.pool).set(self._waiting[tenant])


class PoolAdmission:
    """A pool's admission: shared by every process (SharedSlots) when the gateway has Redis, this process's
    FairQueue without Redis, or while Redis cannot be asked (over the whole capacity, minus the shared slots
    this process still holds)."""

    def __init__(
        self,
        pool: str,
        per_member: int,
        members: Callable[[frozenset[str]], MemberView],
        metrics: GatewayMetrics,
        *,
        max_queued_per_tenant: int,
        queue_timeout: float,
        share_hold: float,
        hub: AdmissionHub | None = None,
    ):
        self.pool = pool
        self.per_member = per_member
        self._members = members
        self.metrics = metrics
        self.queue_timeout = queue_timeout
        self.hub = hub
        self.local = FairQueue(
            pool,
            self._local_capacity,
            metrics,
            max_queued_per_tenant=max_queued_per_tenant,
            queue_timeout=queue_timeout,
            share_hold=share_hold,
        )
        self.shared: SharedSlots | None = None
        if hub is not None:
            self.shared = SharedSlots(
                hub,
                pool,
                per_member,
                lambda: members(frozenset()),
                metrics,
                max_queued_per_tenant=max_queued_per_tenant,
                queue_timeout=queue_timeout,
                share_hold=share_hold,
            )
            metrics.admission_fallback.labels(backend=pool)  # the series exists at zero
        self._falling_back = False

    def capacity(self) -> int:
        """Sequences the usable members run at once (as this process sees them)."""
        return self.per_member * len(self._members(frozenset()))

    def _local_capacity(self) -> int:
        return max(0, self.capacity() - (self.shared.held if self.shared is not None else 0))

    async def acquire(self, tenant: str, weight: float, exclude: frozenset[str] = frozenset()) -> Slot:
        """A slot for `tenant`, on a member not in `exclude` (shared admission); Refusal 429/503."""
        began = time.monotonic()
        if self.shared is not None:
            try:
                request, member = await self.shared.acquire(tenant, weight, self._members(exclude), self.queue_timeout)
            except LimiterUnavailable as error:
                self._fall_back(error)
            else:
                self._shared_again()
                return Slot(member, lambda: self._release_shared(tenant, request, member))
        remaining = self.queue_timeout - (time.monotonic() - began)
        await self.local.acquire(tenant, weight, timeout=max(0.0, remaining))
        if self.shared is not None:
            self.metrics.admission_fallback.labels(backend=self.pool).inc()
        return Slot(None, lambda: self.local.release(tenant))

    def _release_shared(self, tenant: str, request: str, member: str) -> None:
        self.shared.release(tenant, request, member)
        self.local.dispatch()  # requests queued locally while Redis was away may take the room it leaves

    def dispatch(self) -> None:
        """Look again for free slots (the health checks' tick: a member may have come back)."""
        self.local.dispatch()
        if self.shared is not None and self.shared.has_waiting():
            self.hub.spawn(self.shared.dispatch())

    def start(self) -> None:
        if self.hub is not None:
            self.hub.attach()

    async def aclose(self) -> None:
        if self.hub is not None:
            await self.hub.detach()

    def _fall_back(self, error: Exception) -> None:
        if not self._falling_back:
            self._falling_back = True
            log.warning(
                "%s: Redis cannot be asked (%s): this process admits from its own queue over the whole pool "
                "(%d slots) until Redis answers again",
                self.pool,
                error or type(error).__name__,
                self.capacity(),
            )

    def _shared_again(self) -> None:
        if self._falling_back:
            self._falling_back = False
            log.warning("%s: Redis answers again: admission is shared by every gateway process", self.pool)


def engine_sequences(metrics_text: str) -> int | None:
    """vLLM's running + waiting sequences from its /metrics text (None: it exports neither)."""
    total, found = 0.0, False
    for line in metrics_text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in ENGINE_SEQUENCES:
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
            found = True
    return round(total) if found else None
