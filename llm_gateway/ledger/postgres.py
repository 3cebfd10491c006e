"""The ledger in PostgreSQL: cluster mode, shared by every gateway replica.

A small connection pool per gateway worker (psycopg_pool); each record is its own
autocommitted INSERT, so it is in PostgreSQL when `record` returns and a gateway killed
right after answering loses nothing. Durability against a crash of PostgreSQL itself is
PostgreSQL's `synchronous_commit` (on by default).

Opened in the background (the gateway), the ledger does not need PostgreSQL to be up: if the
first attempt fails, a thread retries with exponential backoff (at most RETRY_MAX_SECONDS
apart) and creates the table; until then `is_ready()` is False (the gateway's /readyz says
so) and writes fail with LedgerError. A gateway started before its database waits instead
of crash-looping. Once connected, the pool reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from llm_gateway.ledger.records import (
    COLUMNS,
    EPOCH,
    RECENT_SQL,
    TOTALS_BY_MODEL_SQL,
    TOTALS_SQL,
    DuplicateRecord,
    Ledger,
    LedgerError,
    UsageRecord,
    UsageTotals,
    totals_by_model_from_rows,
    totals_from_row,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_records (
    request_id text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    tenant text NOT NULL,
    model text NOT NULL,
    backend text NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    cost_usd double precision NOT NULL,
    latency_ms double precision NOT NULL,
    status text NOT NULL,
    stream boolean NOT NULL,
    usage_estimated boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_records_tenant_time ON usage_records (tenant, created_at);
"""
SCHEMA_LOCK = 7_340_613  # pg_advisory_xact_lock: two replicas starting at once create the table once
INSERT_SQL = f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
log = logging.getLogger(__name__)


class PostgresLedger(Ledger):
    def __init__(self, url: str, *, max_connections: int = 8, background: bool = False):
        self._url = url
        self._max_connections = max_connections
        self._pool: ConnectionPool | None = None
        self._closed = threading.Event()
        try:
            self._connect()
        except LedgerError:
            if not background:
                raise
            threading.Thread(target=self._connect_with_retries, name="usage-ledger-connect", daemon=True).start()

    def _connect(self) -> None:
        """Create the table (once, whichever replica comes first) and open the pool; LedgerError if unreachable."""
        try:
            with psycopg.connect(self._url, connect_timeout=5) as connection:
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                connection.execute(SCHEMA)
        except psycopg.Error as error:
            raise LedgerError(f"PostgreSQL ledger: {error}".strip()) from None
        self._pool = ConnectionPool(
            self._url,
            min_size=1,
            max_size=self._max_connections,
            open=True,
            timeout=10,
            kwargs={"autocommit": True, "connect_timeout": 5},
            name="usage-ledger",
        )

    def _connect_with_retries(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._closed.is_set():
            try:
                self._connect()
            except LedgerError as error:
                log.warning("usage ledger not reachable yet, retrying in %.1fs: %s", delay, error)
                self._closed.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            log.info("usage ledger connected")
            if self._closed.is_set():  # closed while connecting
                self._pool.close()
            return

    def is_ready(self) -> bool:
        return self._pool is not None

    def _connection(self):
        if self._pool is None:
            raise LedgerError("PostgreSQL ledger: not connected yet (retrying in the background)")
        return self._pool.connection()

    def record(self, record: UsageRecord) -> None:
        with self._connection() as connection:
            try:
                connection.execute(INSERT_SQL, record.values())
            except psycopg.errors.UniqueViolation:
                raise DuplicateRecord(record.request_id) from None

    def totals(self, tenant: str, since: datetime | None = None) -> UsageTotals:
        with self._connection() as connection:
            return totals_from_row(connection.execute(TOTALS_SQL.format(p="%s"), (tenant, since or EPOCH)).fetchone())

    def totals_by_model(self, tenant: str, since: datetime | None = None) -> dict[str, UsageTotals]:
        with self._connection() as connection:
            rows = connection.execute(TOTALS_BY_MODEL_SQL.format(p="%s"), (tenant, since or EPOCH)).fetchall()
        return totals_by_model_from_rows(rows)

    def recent(self, tenant: str, limit: int = 10, since: datetime | None = None) -> list[UsageRecord]:
        with self._connection() as connection:
            rows = connection.execute(RECENT_SQL.format(p="%s"), (tenant, since or EPOCH, limit)).fetchall()
        return [UsageRecord(**dict(zip(COLUMNS, row, strict=True))) for row in rows]

    def close(self) -> None:
        self._closed.set()
        if self._pool is not None:
            self._pool.close()
