"""When a pool member is taken out of rotation: only on evidence that it is unwell.

Modelled on Envoy's outlier detection (`consecutive_5xx`, `base_ejection_time`,
`max_ejection_percent`), with the differences noted below. What counts as evidence:

- **Connect failures** (the member refuses or drops the connection attempt): ejected at
  once — no request can be served there, and the request never reached it.
- **Consecutive failures** (5xx answers, timeouts, connections lost mid-request) reaching
  `consecutive_failures` (default 5, Envoy's `consecutive_5xx`); any answered request resets
  the count.
- **Failed active health checks** (`unhealthy_threshold` in a row; the pool's health thread).

What is *not* evidence: any 4xx. A request the member rejects (bad parameters, a prompt too
long for the context window, an unknown model, a 429) is about that request or that caller;
the member keeps serving everyone else (`llm_gateway/routing.py` answers the caller and, for a
429, backs off that tenant alone).

Difference from Envoy: ejections caused by failures (not connect failures) are capped by
`max_ejection_percent` (default 50) *without* Envoy's "at least one host" exception, so a pool
of one member is never emptied by 5xx answers alone. A caller who can make a backend answer 500
on purpose must not be able to take it away from every tenant; a member that is really down
still goes, through connect failures or its health checks. Ejections last `eject_seconds`:
they are not multiplied on repeat ejections, and a passing health check does not end them
early (a vLLM server's `/health` can pass while its answers fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutlierPolicy:
    consecutive_failures: int = 5
    eject_seconds: float = 10.0
    max_ejection_percent: int = 50


class Member(Protocol):
    consecutive_failures: int
    ejected_until: float


class OutlierDetector:
    """Decides ejections for one pool; callers hold the pool's lock (decisions read every member)."""

    def __init__(self, policy: OutlierPolicy):
        self.policy = policy

    def on_answer(self, member: Member) -> None:
        """The member answered (any status below 500): it is alive."""
        member.consecutive_failures = 0

    def on_connect_failure(self, member: Member, now: float) -> bool:
        """Eject at once; returns True (the member was ejected)."""
        member.consecutive_failures += 1
        member.ejected_until = now + self.policy.eject_seconds
        return True

    def on_failure(self, member: Member, members: list[Member], now: float) -> bool:
        """A 5xx, timeout or lost connection: eject once failures in a row reach the threshold and the
        cap allows it. Returns whether the member was ejected now."""
        member.consecutive_failures += 1
        if member.consecutive_failures < self.policy.consecutive_failures:
            return False
        ejected = sum(1 for other in members if other.ejected_until > now and other is not member)
        if (ejected + 1) * 100 > self.policy.max_ejection_percent * len(members):
            return False
        member.ejected_until = now + self.policy.eject_seconds
        member.consecutive_failures = 0
        return True
