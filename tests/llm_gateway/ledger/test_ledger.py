"""Both ledger stores behind the one interface: real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llm_gateway.ledger import DuplicateRecord, LedgerError, UsageRecord, UsageTotals, open_ledger
from tenantctl.local import launchers
from tests.helpers import free_port, wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_ledger(url)
    yield store
    store.close()


def record(
    tenant: str, request_id: str, prompt: int = 10, completion: int = 5, model: str = "m", **fields
) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        tenant=tenant,
        model=model,
        backend=model,  # a self-hosted model's backend: its own pool, named after it
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=0.001,
        latency_ms=3.5,
        status="ok",
        **fields,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{datetime.now().timestamp()}"  # one PostgreSQL is shared by the session


def test_totals_and_recent_rows_per_tenant(ledger):
    tenant, other = unique("t"), unique("o")
    earlier = datetime.now(UTC) - timedelta(days=40)
    ledger.record(record(tenant, unique("r1"), created_at=earlier))
    ledger.record(record(tenant, unique("r2"), prompt=7, completion=3, stream=True, usage_estimated=True))
    ledger.record(record(other, unique("r3"), prompt=1000))

    assert ledger.totals(tenant) == UsageTotals(2, 17, 8, pytest.approx(0.002))
    assert ledger.totals(tenant, since=datetime.now(UTC) - timedelta(days=1)) == UsageTotals(
        1, 7, 3, pytest.approx(0.001)
    )
    newest, oldest = ledger.recent(tenant, limit=5)
    assert (newest.prompt_tokens, newest.stream, newest.usage_estimated) == (7, True, True)
    assert oldest.created_at == earlier
    assert ledger.recent(tenant, limit=1) == [newest]
    assert ledger.totals("nobody") == UsageTotals()


def test_totals_per_model(ledger):
    """What `tenantctl usage` lists per catalogue model: the same sums, by model name, in name order."""
    tenant = unique("models")
    earlier = datetime.now(UTC) - timedelta(days=40)
    ledger.record(record(tenant, unique("b1"), model="gemma-3-270m", created_at=earlier))
    ledger.record(record(tenant, unique("b2"), prompt=1, completion=2, model="gemma-3-270m"))
    ledger.record(record(tenant, unique("a1"), prompt=3, completion=4, model="all-minilm-l6-v2"))
    ledger.record(record(unique("other"), unique("o1"), model="gemma-3-270m"))

    assert ledger.totals_by_model(tenant) == {
        "all-minilm-l6-v2": UsageTotals(1, 3, 4, pytest.approx(0.001)),
        "gemma-3-270m": UsageTotals(2, 11, 7, pytest.approx(0.002)),
    }
    assert list(ledger.totals_by_model(tenant, since=datetime.now(UTC) - timedelta(days=1))) == [
        "all-minilm-l6-v2",
        "gemma-3-270m",
    ]
    assert ledger.totals_by_model(tenant, since=datetime.now(UTC) - timedelta(days=1))["gemma-3-270m"].requests == 1
    assert ledger.totals_by_model("nobody") == {}


def test_concurrent_writers_lose_nothing(ledger):
    tenant = unique("busy")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: ledger.record(record(tenant, f"{tenant}-{i}", prompt=i, completion=1)), range(200)))
    totals = ledger.totals(tenant)
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (200, sum(range(200)), 200)


def test_a_request_id_is_recorded_once(ledger):
    tenant = unique("dup")
    ledger.record(record(tenant, f"{tenant}-same"))
    with pytest.raises(DuplicateRecord):
        ledger.record(record(tenant, f"{tenant}-same"))
    assert ledger.totals(tenant).requests == 1


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:relative", "postgresql://nobody@127.0.0.1:9/none"])
def test_bad_ledger_urls_are_refused_clearly(url):
    with pytest.raises(LedgerError):
        open_ledger(url)


def test_a_ledger_opened_in_the_background_waits_for_its_database(tmp_path_factory):
    """The gateway's way: no PostgreSQL yet is not an error; writes fail clearly until it is up,
    then the same ledger object connects by itself (retrying with backoff)."""
    port = free_port()
    url = launchers.postgres_url("127.0.0.1", port)
    ledger = open_ledger(url, background=True)
    base_dir = Path(tempfile.mkdtemp(prefix="llm-ledger-late-pg-"))
    server = launchers.postgres_server(port, base_dir)
    try:
        assert not ledger.is_ready()
        with pytest.raises(LedgerError, match="not connected yet"):
            ledger.record(record("t", unique("r")))
        server.start()
        server.wait_healthy(60)
        wait_for(ledger.is_ready, timeout=60, what="the ledger connected")
        ledger.record(record("late", unique("r")))
        assert ledger.totals("late").requests == 1
    finally:
        ledger.close()
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
        Path(f"{base_dir}-postgres.log").unlink(missing_ok=True)
