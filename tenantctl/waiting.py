"""Polling until something holds, for what has no event to wait on (Kubernetes objects, HTTP services)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60, what: str = "condition", interval: float = 0.2) -> T:
    """Poll every `interval` s until `predicate()` is truthy and return its value; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
