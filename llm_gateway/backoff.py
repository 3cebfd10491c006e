"""Per-tenant back-off after a backend's 429: the tenant waits, the backend keeps serving the others.

A 429 from a backend (typically OpenAI's rate limit on the platform's key, hit by one tenant's
burst) is not a sign that the backend is unwell, so the pool member stays in rotation. Only the
tenant that was told to slow down is held back from that backend, for the backend's
`Retry-After` (1 s without one, at most `max_seconds`); meanwhile its requests fail over to
its other backend or get a 429 with the time left. Kept per gateway worker, in memory: a short,
local brake, not a limit (the tenant's own limits are in `limits.py`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

DEFAULT_SECONDS = 1.0


class TenantBackoff:
    def __init__(self, max_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.max_seconds = max_seconds
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def remaining(self, tenant: str, backend: str) -> float:
        """Seconds the tenant must still wait before using the backend (0: go ahead)."""
        until = self._until.get((tenant, backend))
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            with self._lock:
                self._until.pop((tenant, backend), None)
            return 0.0
        return left

    def back_off(self, tenant: str, backend: str, retry_after: str | None) -> int:
        """Hold the tenant back from the backend; returns the whole seconds to wait."""
        seconds = min(self.max_seconds, _seconds(retry_after))
        with self._lock:
            self._until[(tenant, backend)] = self._clock() + seconds
        return max(1, math.ceil(seconds))


def _seconds(retry_after: str | None) -> float:
    """A Retry-After in seconds (an HTTP date or garbage counts as the default)."""
    try:
        value = float(retry_after) if retry_after is not None else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS
    return value if math.isfinite(value) and value > 0 else DEFAULT_SECONDS
