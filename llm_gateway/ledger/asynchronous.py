"""The ledger as the gateway's event loop uses it: every call awaited, none blocking the loop.

The stores (sqlite.py, postgres.py) keep their blocking interface, which tenantctl and the tests
use too; here their calls run on a few threads of the ledger's own. A record is still committed
before the awaited `record` returns, so the durability promise of ledger/__init__.py holds.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from llm_gateway.ledger import Ledger, UsageRecord, UsageTotals

THREADS = 4  # at most this many writes at once per gateway worker; more wait their turn


class AsyncLedger:
    def __init__(self, ledger: Ledger, threads: int = THREADS):
        self.ledger = ledger
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="usage-ledger")

    async def record(self, record: UsageRecord) -> None:
        """Store one record; returns once it is committed (DuplicateRecord if its id is taken)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.ledger.record, record)

    async def totals(self, tenant: str, since: datetime | None = None) -> UsageTotals:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.ledger.totals, tenant, since)

    def is_ready(self) -> bool:
        return self.ledger.is_ready()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.ledger.close()
