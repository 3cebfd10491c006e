"""Both ledger stores behind the one interface: real SQLite files and a real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from llm_gateway.ledger import LedgerError, UsageRecord, UsageTotals, open_ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_ledger(url)
    yield store
    store.close()


def record(tenant: str, request_id: str, prompt: int = 10, completion: int = 5, **fields) -> UsageRecord:
    return UsageRecord(request_id=request_id, tenant=tenant, model="m", backend="vllm", prompt_tokens=prompt,
                       completion_tokens=completion, cost_usd=0.001, latency_ms=3.5, status="ok", **fields)


def unique(prefix: str) -> str:
    return f"{prefix}-{datetime.now().timestamp()}"  # one PostgreSQL is shared by the session


def test_totals_and_recent_rows_per_tenant(ledger):
    tenant, other = unique("t"), unique("o")
    earlier = datetime.now(timezone.utc) - timedelta(days=40)
    ledger.record(record(tenant, unique("r1"), created_at=earlier))
    ledger.record(record(tenant, unique("r2"), prompt=7, completion=3, stream=True, usage_estimated=True))
    ledger.record(record(other, unique("r3"), prompt=1000))

    assert ledger.totals(tenant) == UsageTotals(2, 17, 8, pytest.approx(0.002))
    assert ledger.totals(tenant, since=datetime.now(timezone.utc) - timedelta(days=1)) == \
        UsageTotals(1, 7, 3, pytest.approx(0.001))
    newest, oldest = ledger.recent(tenant, limit=5)
    assert (newest.prompt_tokens, newest.stream, newest.usage_estimated) == (7, True, True)
    assert oldest.created_at == earlier
    assert ledger.recent(tenant, limit=1) == [newest]
    assert ledger.totals("nobody") == UsageTotals()


def test_concurrent_writers_lose_nothing(ledger):
    tenant = unique("busy")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: ledger.record(record(tenant, f"{tenant}-{i}", prompt=i, completion=1)), range(200)))
    totals = ledger.totals(tenant)
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (200, sum(range(200)), 200)


def test_a_request_id_is_recorded_once(ledger):
    tenant = unique("dup")
    ledger.record(record(tenant, f"{tenant}-same"))
    with pytest.raises(Exception):
        ledger.record(record(tenant, f"{tenant}-same"))
    assert ledger.totals(tenant).requests == 1


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:relative", "postgresql://nobody@127.0.0.1:9/none"])
def test_bad_ledger_urls_are_refused_clearly(url):
    with pytest.raises(LedgerError):
        open_ledger(url)
