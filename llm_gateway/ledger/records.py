"""The ledger's records (`UsageRecord`, `UsageTotals`), the interface of its stores (`Ledger`) and what
the stores share (llm_gateway/ledger/__init__.py says what the ledger is)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

COLUMNS = (
    "request_id",
    "created_at",
    "tenant",
    "model",
    "backend",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "status",
    "stream",
    "usage_estimated",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UsageRecord:
    """One finished request. `status` is `ok`, or why it ended otherwise (`upstream_error`,
    `stream_broken`, `client_closed`); `usage_estimated` is true when the backend did not
    report usage and the gateway counted the tokens itself."""

    request_id: str
    tenant: str
    model: str
    backend: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    status: str
    stream: bool = False
    usage_estimated: bool = False
    created_at: datetime = field(default_factory=utc_now)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def values(self) -> tuple:
        return tuple(getattr(self, column) for column in COLUMNS)

    def with_request_id(self, request_id: str) -> UsageRecord:
        return replace(self, request_id=request_id)


@dataclass(frozen=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LedgerError(RuntimeError):
    """The ledger URL is wrong or the store cannot be reached."""


class DuplicateRecord(LedgerError):
    """A record with this request id is already in the ledger (nothing was written)."""


class Ledger(ABC):
    """A durable store of UsageRecords. Safe to share between the threads of one process."""

    @abstractmethod
    def record(self, record: UsageRecord) -> None:
        """Store one record durably; returns once it is committed. DuplicateRecord if its id is taken."""

    @abstractmethod
    def totals(self, tenant: str, since: datetime | None = None) -> UsageTotals:
        """Sums over the tenant's records created at or after `since` (all when None)."""

    @abstractmethod
    def totals_by_model(self, tenant: str, since: datetime | None = None) -> dict[str, UsageTotals]:
        """The same sums per catalogue model, by model name."""

    @abstractmethod
    def recent(self, tenant: str, limit: int = 10, since: datetime | None = None) -> list[UsageRecord]:
        """The tenant's newest records, newest first."""

    @abstractmethod
    def close(self) -> None: ...

    def is_ready(self) -> bool:
        """Whether records can be written now (False while a ledger opened in the background connects)."""
        return True


TOTALS_SQL = (
    "SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), "
    "coalesce(sum(cost_usd), 0) FROM usage_records WHERE tenant = {p} AND created_at >= {p}"
)
TOTALS_BY_MODEL_SQL = (
    "SELECT model, count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), "
    "coalesce(sum(cost_usd), 0) FROM usage_records WHERE tenant = {p} AND created_at >= {p} "
    "GROUP BY model ORDER BY model"
)
RECENT_SQL = (
    f"SELECT {', '.join(COLUMNS)} FROM usage_records WHERE tenant = {{p}} AND created_at >= {{p}} "
    "ORDER BY created_at DESC, request_id DESC LIMIT {p}"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def totals_from_row(row: tuple) -> UsageTotals:
    return UsageTotals(int(row[0]), int(row[1]), int(row[2]), float(row[3]))


def totals_by_model_from_rows(rows: list[tuple]) -> dict[str, UsageTotals]:
    return {str(row[0]): totals_from_row(row[1:]) for row in rows}
