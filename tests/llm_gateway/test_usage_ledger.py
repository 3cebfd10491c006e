"""The usage ledger through real gateway processes, on SQLite and on PostgreSQL: every answered
request is a row (streams too), totals equal what was sent, also after a restart and after a
kill -9 right after answering; budgets refuse the next request once used up, even after Redis
lost its counters."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import redis

from llm_gateway.ledger import open_ledger
from tenantctl.commands.main import main as tenantctl
from tenantctl.local import launchers
from tests.helpers import (
    STUB_EMBEDDING_MODEL,
    STUB_MODEL,
    chat,
    controlled_gateway_config,
    free_port,
    metric_value,
    streamed_chunks,
    tenant_route,
    wait_for,
)

STUB_TOKENS = 17  # the stub's usage: 10 prompt + 7 completion
KEY = "k-ledger"
PRICES = {"usd_per_million_input_tokens": 1000, "usd_per_million_output_tokens": 1000}  # catalogue fields


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return request.getfixturevalue("postgres_url")


class Gateway:
    """One gateway process that can be restarted or killed, its config kept."""

    def __init__(self, process_group, run_dir, config):
        self.process_group, self.run_dir, self.config = process_group, run_dir, config
        self.process = None
        self.url = ""

    def start(self) -> Gateway:
        port = free_port()
        self.process = self.process_group(launchers.gateway(self.config, port, self.run_dir, workers=2))
        self.url = f"http://127.0.0.1:{port}"
        return self


def tenant_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"  # one PostgreSQL serves the whole session


def gateway(process_group, tmp_path, stub_url, redis_url, ledger_url, tenant: str, **route) -> Gateway:
    config = controlled_gateway_config([tenant_route(tenant, KEY, **route)], stub_url, redis_url, ledger_url)
    for entry in config["models"].values():  # the stub's chat and embedding models, at the same prices
        entry.update(PRICES)
    return Gateway(process_group, tmp_path, config).start()


def ask_all_ways(url: str) -> list[str]:
    """A plain answer, a stream asking for usage and one not asking; returns their request ids."""
    plain = chat(url, KEY)
    with_usage = chat(url, KEY, stream=True, stream_options={"include_usage": True})
    without_usage = chat(url, KEY, stream=True)
    for response in (plain, with_usage, without_usage):
        assert response.status_code == 200, response.text
    assert plain.json()["usage"]["total_tokens"] == STUB_TOKENS
    assert streamed_chunks(with_usage)[-2]["usage"]["total_tokens"] == STUB_TOKENS  # the caller asked: relayed
    assert not any("usage" in chunk for chunk in streamed_chunks(without_usage)[:-1])  # not asked: not relayed
    return [response.headers["X-Request-Id"] for response in (plain, with_usage, without_usage)]


def test_totals_equal_what_was_sent_across_restart_and_kill(process_group, tmp_path, stub_url, redis_url, ledger_url):
    tenant = tenant_name()
    served = gateway(process_group, tmp_path, stub_url, redis_url, ledger_url, tenant)
    ids = ask_all_ways(served.url) + ask_all_ways(served.url)

    served.process.stop()
    served.start()  # restarted: the rows are still there, new ones add up
    ids += ask_all_ways(served.url)

    last = chat(served.url, KEY)
    served.process.kill()  # SIGKILL the instant the answer arrived
    ids.append(last.headers["X-Request-Id"])

    ledger = open_ledger(ledger_url)
    try:
        totals = ledger.totals(tenant)
        rows = ledger.recent(tenant, limit=100)
    finally:
        ledger.close()
    assert totals.requests == len(ids) == 10
    assert totals.total_tokens == 10 * STUB_TOKENS
    assert totals.cost_usd == pytest.approx(10 * STUB_TOKENS * 1000 / 1e6)
    assert sorted(row.request_id for row in rows) == sorted(ids)
    assert {(row.status, row.usage_estimated, row.model, row.backend) for row in rows} == {
        ("ok", False, STUB_MODEL, STUB_MODEL)  # a self-hosted model's backend is its own pool, named after it
    }
    assert sum(row.stream for row in rows) == 6


def test_token_budget_refuses_the_next_request_and_survives_a_redis_flush(
    process_group, tmp_path, stub_url, redis_url, ledger_url
):
    tenant = tenant_name()
    served = gateway(process_group, tmp_path, stub_url, redis_url, ledger_url, tenant, monthly_token_budget=60)
    assert [chat(served.url, KEY).status_code for _ in range(4)] == [200] * 4  # 0, 17, 34, 51 used: < 60
    refused = chat(served.url, KEY, stream=True)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.json()["error"]["code"] == "monthly_token_budget"
    assert "monthly token budget of 60 tokens is used up" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    metrics = httpx.get(served.url + "/metrics").text
    assert metric_value(metrics, "llm_gateway_budget_remaining", tenant=tenant, kind="tokens") == 0
    assert metric_value(metrics, "llm_gateway_refusals_total", tenant=tenant, reason="monthly_token_budget") == 1

    served.process.stop()
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.keys(f"llm-tenants:budget:{tenant}:*"))  # Redis lost the month's counters
    served.start()
    assert chat(served.url, KEY).status_code == 429  # reloaded from the ledger


def test_cost_budget(process_group, tmp_path, stub_url, redis_url, ledger_url):
    tenant = tenant_name()
    served = gateway(process_group, tmp_path, stub_url, redis_url, ledger_url, tenant, monthly_budget_usd=0.05)
    statuses = [chat(served.url, KEY).status_code for _ in range(4)]  # 0.017 USD each
    assert statuses == [200, 200, 200, 429]
    assert chat(served.url, KEY).json()["error"]["code"] == "monthly_cost_budget"


def test_tenantctl_usage_prints_totals_remaining_budget_and_rows(
    process_group, tmp_path, stub_url, redis_url, ledger_url, capsys
):
    tenant = tenant_name()
    served = gateway(process_group, tmp_path, stub_url, redis_url, ledger_url, tenant, monthly_token_budget=1000)
    ask_all_ways(served.url)
    spec_dir = tmp_path / "tenants" / tenant
    spec_dir.mkdir(parents=True)
    (spec_dir / "tenant.json").write_text(
        json.dumps(
            {
                "name": tenant,
                "display_name": "T",
                "industry": "Testing",
                "system_prompt": "p",
                "monthly_token_budget": 1000,
                "monthly_budget_usd": 1,
            }
        )
    )

    assert tenantctl(["--tenants-dir", str(tmp_path / "tenants"), "usage", tenant, "--ledger", ledger_url]) == 0
    out = capsys.readouterr().out
    assert "requests 3  prompt tokens 30  completion tokens 21  total tokens 51  cost $0.051000" in out
    assert "tokens  used 51 of 1000  remaining 949" in out
    assert "cost    used $0.051000 of $1  remaining $0.949000" in out
    assert f"    {STUB_MODEL}  requests 3  tokens 51  cost $0.051000" in out.splitlines()  # by model
    assert sum(line.split().count(STUB_MODEL) == 2 for line in out.splitlines()) == 3  # rows: model and backend

    assert (
        tenantctl(
            [
                "--tenants-dir",
                str(tmp_path / "tenants"),
                "usage",
                tenant,
                "--ledger",
                ledger_url,
                "--since",
                "2999-01-01",
            ]
        )
        == 0
    )
    assert "requests 0" in capsys.readouterr().out


def test_redis_flushed_mid_stream_never_lowers_the_months_total(
    process_group, tmp_path, stub_url, own_redis, ledger_url
):
    """Before the fix, the stream's end INCRBY'd the vanished month counter back into existence from its own
    17 tokens, and the next request sailed under a budget that was already spent."""
    tenant = tenant_name()
    served = gateway(process_group, tmp_path, stub_url, own_redis, ledger_url, tenant, monthly_token_budget=40)
    assert [chat(served.url, KEY).status_code for _ in range(2)] == [200, 200]  # 34 tokens used
    body = {"messages": [{"role": "user", "content": "stub-fault:hold:1"}], "max_tokens": 5, "stream": True}
    with httpx.stream(
        "POST", served.url + "/v1/chat/completions", json=body, timeout=60, headers={"Authorization": f"Bearer {KEY}"}
    ) as stream:
        assert stream.status_code == 200  # admitted at 34 < 40
        lines = stream.iter_lines()
        assert next(lines).startswith("data: ")  # the first chunk; the stub holds the rest for a second
        client = redis.Redis.from_url(own_redis)
        client.flushall()
        assert [line for line in lines if line][-1] == "data: [DONE]"
    assert wait_for(lambda: month_tokens(client, tenant), 30, "the month's counter") == 3 * STUB_TOKENS  # not 17
    refused = chat(served.url, KEY)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "monthly_token_budget"


def month_tokens(client: redis.Redis, tenant: str) -> int | None:
    """This month's token counter of the tenant in Redis (None when missing)."""
    keys = client.keys(f"llm-tenants:budget:{tenant}:*:tokens")
    return int(client.get(keys[0])) if keys else None


def test_embeddings_are_admitted_limited_and_budgeted_like_completions(
    process_group, tmp_path, stub_url, own_redis, ledger_url
):
    tenant = tenant_name()
    served = gateway(
        process_group,
        tmp_path,
        stub_url,
        own_redis,
        ledger_url,
        tenant,
        monthly_token_budget=20,
        rate_limits={"requests_per_minute": 1000, "requests_per_hour": 1000, "tokens_per_minute": 10**6},
    )

    def embed() -> httpx.Response:
        return httpx.post(
            served.url + "/v1/embeddings",
            json={"input": ["a", "b", "c"]},
            timeout=30,
            headers={"Authorization": f"Bearer {KEY}"},
        )

    first = embed()
    assert first.status_code == 200, first.text  # 9 tokens
    assert chat(served.url, KEY).status_code == 200  # 17 more: 26 of 20 used
    client = redis.Redis.from_url(own_redis)
    wait_for(lambda: month_tokens(client, tenant) == 26, 30, "both requests counted")
    refused = embed()
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "monthly_token_budget"
    ledger = open_ledger(ledger_url)
    try:
        (row,) = [row for row in ledger.recent(tenant) if row.request_id == first.headers["X-Request-Id"]]
    finally:
        ledger.close()
    assert (row.prompt_tokens, row.completion_tokens, row.backend, row.status) == (9, 0, STUB_EMBEDDING_MODEL, "ok")
    assert row.cost_usd == pytest.approx(9 * 1000 / 1e6)
