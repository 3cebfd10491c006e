"""The usage ledger: one durable row per finished request, the record of what each tenant spent.

One interface (`Ledger`), two stores: SQLite, the embedded default of local mode, and
PostgreSQL for a cluster (several gateway replicas write to it). `open_ledger(url)` picks
by the URL: `sqlite:///path/to/ledger.sqlite3` or `postgresql://user:pass@host/db`.

A row is committed before the answer's last byte leaves the gateway (streams: before the
final `[DONE]`), so a gateway killed right after answering has already recorded it.
"""

from __future__ import annotations

from llm_gateway.ledger.records import DuplicateRecord, Ledger, LedgerError, UsageRecord, UsageTotals

__all__ = ["DuplicateRecord", "Ledger", "LedgerError", "UsageRecord", "UsageTotals", "open_ledger"]


def open_ledger(url: str, *, background: bool = False) -> Ledger:
    """A Ledger for `url` (`sqlite:///<path>` or `postgresql://...`), its table created if missing.

    `background`: a database that cannot be reached yet is connected to in the background, with
    retries, instead of failing now (a gateway starting before its PostgreSQL; see `is_ready`).
    """
    if url.startswith("sqlite:///"):
        from llm_gateway.ledger.sqlite import SqliteLedger

        return SqliteLedger(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from llm_gateway.ledger.postgres import PostgresLedger

        return PostgresLedger(url, background=background)
    raise LedgerError(f"ledger URL must start with sqlite:/// or postgresql:// (got '{url.split(':')[0]}:...')")
