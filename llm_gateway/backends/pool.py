"""A pool of OpenAI-compatible members with least-outstanding-requests routing.

- Active health checks (optional): a task on the worker's event loop GETs each member's
  health path every interval; a member failing `unhealthy_threshold` checks in a row is
  skipped until one passes again.
  Without health checks (OpenAI) the task only republishes each member's
  state, so `llm_gateway_pool_member_up` returns to 1 when an ejection ends.
- Passive ejection (outlier detection, `outlier.py`): only on evidence of ill health
  (connect failures, consecutive 5xx/timeouts); a 4xx never marks a member.
- A request that could not reach a member (connect failure) is retried on the next
  member; one that reached a member and failed there is not, so a request that
  crashes a server cannot go on to crash the others.
- Capacity (optional, `capacity_per_member`: the catalogue's max_sequences): a pool whose usable
  members are all full queues requests per tenant and hands freed slots out in weighted fair order;
  a slot is held until the answer is read (a stream: until it closes). With Redis (an AdmissionHub)
  the slots are counted per member for every gateway process and replica at once, and the request
  goes to the member its slot is on (pool_admission.py); without Redis each process counts its own
  (fair_queue.py). For a `vllm` engine the health checks also read each member's own count of
  sequences, to take what runs there unleased off its free slots.
- Outstanding counts (least-outstanding routing) are per gateway worker process.
- Members may change while serving (`set_member_urls`, from pool_discovery.py's thread): members
  that stay keep their counts and ejections; a removed member's client is closed on the event
  loop once its last stream has ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from llm_common.openai_client import UpstreamRejected, UpstreamReply, UpstreamUnavailable
from llm_gateway.backends.clients import AsyncChatStream, AsyncOpenAICompatibleClient
from llm_gateway.backends.outlier import OutlierDetector, OutlierPolicy
from llm_gateway.limits import LimiterUnavailable
from llm_gateway.metrics import GatewayMetrics
from llm_gateway.pool_admission import AdmissionHub, MemberView, PoolAdmission, Slot, engine_sequences
from tenant_spec.route import TenantRoute

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class PoolMember:
    url: str
    client: AsyncOpenAICompatibleClient
    outstanding: int = 0
    failed_checks: int = 0
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    unhealthy_threshold: int = 1
    unleased: int = 0  # sequences the member's engine reports beyond the slots leased on it (vllm)

    @property
    def healthy(self) -> bool:
        """Optimistic until health checks fail `unhealthy_threshold` times in a row."""
        return self.failed_checks < self.unhealthy_threshold

    def usable(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until


def _queue_name(tenant: TenantRoute | None) -> str:
    """The tenant whose fair-queue slot a call takes ("" for calls on no tenant's behalf)."""
    return tenant.name if tenant else ""


class BackendPool:
    """One backend ('vllm' or 'openai') made of one or more members."""

    def __init__(
        self,
        name: str,
        members: list[PoolMember],
        metrics: GatewayMetrics,
        *,
        outlier: OutlierPolicy = OutlierPolicy(),
        health_path: str | None = None,
        health_interval: float = 5.0,
        unhealthy_threshold: int = 2,
        clock: Callable[[], float] = time.monotonic,
        capacity_per_member: int | None = None,
        max_queued_per_tenant: int = 100,
        queue_timeout: float = 30.0,
        share_hold: float = 1.0,
        engine: str | None = None,
        admission_hub: AdmissionHub | None = None,
    ):
        self.name = name
        self.members = members
        self._metrics = metrics
        self._outliers = OutlierDetector(outlier)
        self._health_path = health_path
        self._health_interval = health_interval
        self._clock = clock
        self._unhealthy_threshold = unhealthy_threshold
        self._lock = threading.Lock()  # pool discovery changes members from its thread
        self._health_task: asyncio.Task | None = None
        self._retired: list[PoolMember] = []  # removed members whose streams still run
        self.engine = engine
        self.admission: PoolAdmission | None = None
        if capacity_per_member is not None:
            self.admission = PoolAdmission(
                name,
                capacity_per_member,
                self._admission_view,
                metrics,
                max_queued_per_tenant=max_queued_per_tenant,
                queue_timeout=queue_timeout,
                share_hold=share_hold,
                hub=admission_hub,
            )
        metrics.publish_backend(name)
        for member in members:
            member.unhealthy_threshold = unhealthy_threshold
            self._publish_member(member)

    # --- routing -------------------------------------------------------------

    def is_available(self) -> bool:
        now = self._clock()
        return any(member.usable(now) for member in self.members)

    def _members_to_try(self, exclude: frozenset[str] = frozenset()) -> list[PoolMember]:
        """Usable members, least outstanding first (ties keep configuration order)."""
        now = self._clock()
        with self._lock:
            usable = (m for m in self.members if m.usable(now) and m.url not in exclude)
            return sorted(usable, key=lambda m: m.outstanding)

    def _admission_view(self, exclude: frozenset[str]) -> MemberView:
        """What shared admission may pick from: the usable members (least outstanding first) and the
        sequences each runs beyond its leases."""
        return [(member.url, member.unleased) for member in self._members_to_try(exclude)]

    def _member(self, url: str) -> PoolMember | None:
        with self._lock:
            return next((member for member in self.members if member.url == url), None)

    async def _call(
        self,
        attempt: Callable[[PoolMember], Awaitable[T]],
        tenant: TenantRoute | None,
        *,
        keep_outstanding: bool = False,
    ) -> T:
        """Run `attempt` on the best member (with a capacity: once a slot is free, in fair order, on the
        member of the slot). With `keep_outstanding` the member's count and the slot stay taken until the
        result's `on_close`."""
        if not self.is_available():
            raise UpstreamUnavailable(f"{self.name}: no healthy member", reason="no_healthy_member")
        if self.admission is None:
            return await self._call_members(attempt, self._members_to_try(), [], keep_outstanding=keep_outstanding)
        tenant_name, weight = _queue_name(tenant), tenant.weight if tenant else 1.0
        tried: list[PoolMember] = []
        excluded: set[str] = set()
        last_error: UpstreamUnavailable | None = None
        for _ in range(len(self.members) + 2):  # each round leaves out one more member
            if not self._members_to_try(frozenset(excluded)):
                break
            slot = await self.admission.acquire(tenant_name, weight, frozenset(excluded))
            candidates = self._slot_members(slot, excluded)
            if not candidates:  # granted on a member this process no longer has (or already tried)
                slot.release()
                excluded.add(slot.member)
                continue
            try:
                result = await self._call_members(attempt, candidates, tried, keep_outstanding=keep_outstanding)
            except UpstreamUnavailable as error:
                slot.release()
                if slot.member is None or error.reason != "connect":
                    raise
                excluded.add(slot.member)  # never reached it: its slot back, and another member's
                last_error = error
                continue
            except BaseException:
                slot.release()
                raise
            if keep_outstanding:
                result.on_close.append(slot.release)
            else:
                slot.release()
            return result
        if last_error is not None:
            raise last_error
        raise UpstreamUnavailable(f"{self.name}: no healthy member", reason="no_healthy_member")

    def _slot_members(self, slot: Slot, excluded: set[str]) -> list[PoolMember]:
        """The members a slot may be used on: its own (shared admission), else any usable one."""
        if slot.member is None:
            return self._members_to_try(frozenset(excluded))
        member = self._member(slot.member)
        return [member] if member is not None and slot.member not in excluded else []

    async def _call_members(
        self,
        attempt: Callable[[PoolMember], Awaitable[T]],
        candidates: list[PoolMember],
        tried: list[PoolMember],
        *,
        keep_outstanding: bool,
    ) -> T:
        """Try `candidates` in order (the next one only after a connect failure); `tried` collects them."""
        if not candidates:
            raise UpstreamUnavailable(f"{self.name}: no healthy member", reason="no_healthy_member")
        last_error: UpstreamUnavailable | None = None
        for member in candidates:
            tried.append(member)
            self._adjust_outstanding(member, +1)
            started = self._clock()
            try:
                result = await attempt(member)
            except UpstreamUnavailable as error:
                self._adjust_outstanding(member, -1)
                self._failed(member, error)
                last_error = error
                if error.reason == "connect":
                    continue  # never reached the member: the next one may serve it
                break
            except UpstreamRejected:
                self._adjust_outstanding(member, -1)
                self._answered(member)
                raise
            except BaseException:
                self._adjust_outstanding(member, -1)
                raise
            self._answered(member)
            self._metrics.member_latency.labels(backend=self.name, member=member.url).observe(self._clock() - started)
            if not keep_outstanding:
                self._adjust_outstanding(member, -1)
            return result
        assert last_error is not None
        raise UpstreamUnavailable(
            f"{self.name}: all {len(tried)} member(s) failed; last: {last_error}",
            reason=last_error.reason,
            status=last_error.status,
        )

    async def chat(
        self, payload: dict, request_id: str | None = None, tenant: TenantRoute | None = None
    ) -> UpstreamReply:
        return await self._call(lambda member: member.client.chat(payload, request_id), tenant)

    async def embeddings(
        self, payload: dict, request_id: str | None = None, tenant: TenantRoute | None = None
    ) -> UpstreamReply:
        return await self._call(lambda member: member.client.embeddings(payload, request_id), tenant)

    async def open_chat_stream(
        self, payload: dict, request_id: str | None = None, tenant: TenantRoute | None = None
    ) -> AsyncChatStream:
        """Open a stream on the least busy member; it stays 'outstanding' (and holds its slot) until it closes."""

        async def attempt(member: PoolMember) -> AsyncChatStream:
            stream = await member.client.open_chat_stream(payload, request_id)
            stream.on_close.append(lambda: self._adjust_outstanding(member, -1))
            return stream

        return await self._call(attempt, tenant, keep_outstanding=True)

    def set_member_urls(self, urls: list[str], make_member: Callable[[str], PoolMember]) -> None:
        """Make the members exactly `urls` (new ones from `make_member`); returns at once."""
        wanted = set(urls)
        with self._lock:
            current = {member.url: member for member in self.members}
            members = [current.get(url) or make_member(url) for url in urls]
            for member in members:
                member.unhealthy_threshold = self._unhealthy_threshold
            self.members = members
        for url in wanted - current.keys():
            log.info("%s: member %s added", self.name, url)
        for url, member in current.items():
            if url not in wanted:
                log.info("%s: member %s removed", self.name, url)
                self._metrics.member_up.labels(backend=self.name, member=url).set(0)
                with self._lock:
                    self._retired.append(member)
        for member in members:
            self._publish_member(member)

    # --- bookkeeping ---------------------------------------------------------

    def _adjust_outstanding(self, member: PoolMember, delta: int) -> None:
        with self._lock:
            member.outstanding += delta
        self._metrics.member_in_flight.labels(backend=self.name, member=member.url).inc(delta)

    def _answered(self, member: PoolMember) -> None:
        if member.consecutive_failures:
            with self._lock:
                self._outliers.on_answer(member)

    def _failed(self, member: PoolMember, error: UpstreamUnavailable) -> None:
        self._metrics.upstream_errors.labels(backend=self.name, reason=error.reason).inc()
        now = self._clock()
        with self._lock:
            if error.reason == "connect":
                ejected = self._outliers.on_connect_failure(member, now)
            else:
                ejected = self._outliers.on_failure(member, self.members, now)
        if ejected:
            self._publish_member(member)
            log.warning(
                "ejected %s member %s for %.0fs: %s", self.name, member.url, self._outliers.policy.eject_seconds, error
            )
        else:
            log.warning(
                "%s member %s failed (%d in a row): %s", self.name, member.url, member.consecutive_failures, error
            )

    def _publish_member(self, member: PoolMember) -> None:
        self._metrics.member_up.labels(backend=self.name, member=member.url).set(
            1 if member.usable(self._clock()) else 0
        )

    # --- active health checks ------------------------------------------------

    async def check_health_once(self, http: httpx.AsyncClient) -> None:
        for member in list(self.members):
            try:
                passed = (await http.get(member.url + self._health_path)).status_code == 200
            except httpx.HTTPError:
                passed = False
            member.failed_checks = 0 if passed else member.failed_checks + 1
            self._publish_member(member)

    async def check_sequences_once(self, http: httpx.AsyncClient) -> None:
        """vLLM members: what each runs (running + waiting, from its /metrics) beyond the slots leased on it
        becomes its `unleased` count, taken off its free slots. Leases are counted before and after the
        scrape and the larger count kept, so requests admitted or ended meanwhile never inflate it."""
        shared = self.admission.shared if self.admission is not None else None
        if self.engine != "vllm" or shared is None:
            return
        members = list(self.members)
        urls = [member.url for member in members]
        try:
            before = await shared.member_leases(urls)
            reported = await asyncio.gather(*(self._engine_sequences(http, member) for member in members))
            after = await shared.member_leases(urls)
        except LimiterUnavailable:
            return  # shared admission is not in use meanwhile
        for member, running, leased_before, leased_after in zip(members, reported, before, after, strict=True):
            member.unleased = 0 if running is None else max(0, running - max(leased_before, leased_after))
            self._metrics.member_unleased.labels(backend=self.name, member=member.url).set(member.unleased)

    async def _engine_sequences(self, http: httpx.AsyncClient, member: PoolMember) -> int | None:
        try:
            answer = await http.get(member.url + "/metrics")
        except httpx.HTTPError:
            return None
        return engine_sequences(answer.text) if answer.status_code == 200 else None

    def start_health_checks(self) -> None:
        """Start the checks (once, on the event loop of the worker that serves requests), and shared admission's
        listening for grants."""
        if self._health_task is not None:
            return
        if self.admission is not None:
            self.admission.start()
        self._health_task = asyncio.get_running_loop().create_task(self._health_loop(), name=f"{self.name}-health")

    async def _health_loop(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as http:
            while True:
                try:
                    if self._health_path is None:
                        for member in self.members:
                            self._publish_member(member)
                    else:
                        await self.check_health_once(http)
                    await self.check_sequences_once(http)
                    await self._close_retired()
                    if self.admission is not None:
                        self.admission.dispatch()  # a member that came back brings its slots
                except Exception:  # keep checking: a task that died would leave members' states frozen
                    log.exception("%s: health check round failed", self.name)
                await asyncio.sleep(self._health_interval)

    async def _close_retired(self, *, all_of_them: bool = False) -> None:
        """Close the clients of removed members whose last stream has ended."""
        with self._lock:
            done = [m for m in self._retired if all_of_them or m.outstanding == 0]
            self._retired = [m for m in self._retired if m not in done]
        for member in done:
            await member.client.aclose()

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            try:
                await self._health_task
            except asyncio.CancelledError:
                pass
            self._health_task = None
            if self.admission is not None:
                await self.admission.aclose()
        await self._close_retired(all_of_them=True)
        for member in self.members:
            await member.client.aclose()
