"""The ledger in one SQLite file: the embedded default (local mode, a single machine).

WAL mode with `synchronous=NORMAL`: a commit is in the WAL file (the OS page cache) when
`record` returns, which survives the gateway being killed (kill -9) at any moment; only a
crash of the whole machine can lose the last commits. Several processes (gunicorn workers,
gateways) may write the same file: SQLite serialises them, `busy_timeout` makes them wait.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

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
    request_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms REAL NOT NULL,
    status TEXT NOT NULL,
    stream INTEGER NOT NULL,
    usage_estimated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_records_tenant_time ON usage_records (tenant, created_at);
"""


def _timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds: sorts as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqliteLedger(Ledger):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect()
            try:
                connection.executescript(SCHEMA)
            finally:
                connection.close()
        except (OSError, sqlite3.Error) as error:
            raise LedgerError(f"SQLite ledger {self.path}: {error}") from None
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @property
    def _connection(self) -> sqlite3.Connection:
        """One connection per thread (gthread workers serve requests on many threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def record(self, record: UsageRecord) -> None:
        values = list(record.values())
        values[1] = _timestamp(record.created_at)
        try:
            self._connection.execute(
                f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values
            )
        except sqlite3.IntegrityError:
            raise DuplicateRecord(record.request_id) from None

    def totals(self, tenant: str, since: datetime | None = None) -> UsageTotals:
        row = self._connection.execute(TOTALS_SQL.format(p="?"), (tenant, _timestamp(since or EPOCH))).fetchone()
        return totals_from_row(row)

    def totals_by_model(self, tenant: str, since: datetime | None = None) -> dict[str, UsageTotals]:
        rows = self._connection.execute(TOTALS_BY_MODEL_SQL.format(p="?"), (tenant, _timestamp(since or EPOCH)))
        return totals_by_model_from_rows(rows.fetchall())

    def recent(self, tenant: str, limit: int = 10, since: datetime | None = None) -> list[UsageRecord]:
        rows = self._connection.execute(RECENT_SQL.format(p="?"), (tenant, _timestamp(since or EPOCH), limit))
        return [_record(row) for row in rows]

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _record(row: tuple) -> UsageRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    values["created_at"] = datetime.strptime(values["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    values["stream"] = bool(values["stream"])
    values["usage_estimated"] = bool(values["usage_estimated"])
    return UsageRecord(**values)
