"""The price table behind the cost estimate: defaults, overrides from the gateway config, unknown models."""

from __future__ import annotations

import json

import pytest

from llm_gateway.auth import hash_gateway_key
from llm_gateway.config import ConfigError, load_gateway_config
from llm_gateway.pricing import PriceTable


def test_cost_is_tokens_times_the_price_per_million():
    table = PriceTable()
    assert table.cost_usd("gpt-4o-mini", {"prompt": 1_000_000, "completion": 2_000_000}) == pytest.approx(1.35)
    assert table.cost_usd("gpt-4o-mini", {"completion": 10}) == pytest.approx(0.000006)
    assert table.cost_usd("unknown-model", {"prompt": 10}) is None


def test_config_prices_override_and_extend_the_defaults(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(
        json.dumps(
            {
                "tenants": [
                    {"name": "acme-corp", "model": "m", "key_sha256": [hash_gateway_key("k")], "monthly_budget_usd": 25}
                ],
                "pool": {"endpoints": ["http://127.0.0.1:9"]},
                "prices": {
                    "gpt-4o-mini": {"prompt_usd_per_million_tokens": 1, "completion_usd_per_million_tokens": 2},
                    "llama-3-8b": {"prompt_usd_per_million_tokens": 0.1, "completion_usd_per_million_tokens": 0.1},
                },
            }
        )
    )
    config = load_gateway_config({"LLM_GATEWAY_CONFIG": str(path)})
    table = PriceTable(config.prices)
    assert table.cost_usd("gpt-4o-mini", {"prompt": 1_000_000}) == pytest.approx(1.0)
    assert table.cost_usd("llama-3-8b", {"completion": 1_000_000}) == pytest.approx(0.1)
    assert table.has("gpt-4o")  # defaults stay
    assert config.tenants[0].monthly_budget_usd == 25


@pytest.mark.parametrize(
    "prices, message",
    [
        (
            {"m": {"prompt_usd_per_million_tokens": -1, "completion_usd_per_million_tokens": 1}},
            "prices.m.prompt_usd_per_million_tokens",
        ),
        ({"m": {"prompt_usd_per_million_tokens": 1}}, "prices.m.completion_usd_per_million_tokens"),
    ],
)
def test_bad_prices_are_refused_with_the_field(tmp_path, prices, message):
    path = tmp_path / "gateway.json"
    path.write_text(
        json.dumps(
            {
                "tenants": [{"name": "a", "model": "m", "key_sha256": [hash_gateway_key("k")]}],
                "pool": {"endpoints": ["http://127.0.0.1:9"]},
                "prices": prices,
            }
        )
    )
    with pytest.raises(ConfigError, match=message):
        load_gateway_config({"LLM_GATEWAY_CONFIG": str(path)})
