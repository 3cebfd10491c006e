"""The ledger in PostgreSQL: cluster mode, shared by every gateway replica.

A small connection pool per gateway worker (psycopg_pool); each record is its own
autocommitted INSERT, so it is in PostgreSQL when `record` returns and a gateway killed
right after answering loses nothing. Durability against a crash of PostgreSQL itself is
PostgreSQL's `synchronous_commit` (on by default).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from llm_gateway.ledger import (COLUMNS, EPOCH, RECENT_SQL, TOTALS_SQL, DuplicateRecord, Ledger, LedgerError,
                                UsageRecord, UsageTotals, totals_from_row)

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


class PostgresLedger(Ledger):
    def __init__(self, url: str, *, max_connections: int = 8):
        try:
            with psycopg.connect(url, connect_timeout=5) as connection:
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                connection.execute(SCHEMA)
        except psycopg.Error as error:
            raise LedgerError(f"PostgreSQL ledger: {error}".strip()) from None
        self._pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=True, timeout=10,
                                    kwargs={"autocommit": True, "connect_timeout": 5}, name="usage-ledger")

    def record(self, record: UsageRecord) -> None:
        with self._pool.connection() as connection:
            try:
                connection.execute(INSERT_SQL, record.values())
            except psycopg.errors.UniqueViolation:
                raise DuplicateRecord(record.request_id) from None

    def totals(self, tenant: str, since: datetime | None = None) -> UsageTotals:
        with self._pool.connection() as connection:
            return totals_from_row(connection.execute(TOTALS_SQL.format(p="%s"), (tenant, since or EPOCH)).fetchone())

    def recent(self, tenant: str, limit: int = 10, since: datetime | None = None) -> list[UsageRecord]:
        with self._pool.connection() as connection:
            rows = connection.execute(RECENT_SQL.format(p="%s"), (tenant, since or EPOCH, limit)).fetchall()
        return [UsageRecord(**dict(zip(COLUMNS, row))) for row in rows]

    def close(self) -> None:
        self._pool.close()
