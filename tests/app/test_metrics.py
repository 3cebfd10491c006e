"""The proxy's series exist at zero from the start, so its first requests show in rate()."""

from __future__ import annotations

from app import create_app
from app.config import ProxyConfig


def test_the_tenant_series_exist_at_zero_from_the_start():
    app = create_app(
        ProxyConfig(
            tenant="globex", system_prompt="You help Globex.", gateway_url="http://127.0.0.1:9/v1", gateway_key="gk-x"
        )
    )
    text = app.test_client().get("/metrics").text
    for line in (
        'tenant_proxy_requests_total{route="/ask",status="200",tenant="globex"} 0.0',
        'tenant_proxy_requests_total{route="/v1/chat/completions",status="200",tenant="globex"} 0.0',
        'tenant_proxy_request_duration_seconds_count{route="/ask",tenant="globex"} 0.0',
        'tenant_proxy_time_to_first_token_seconds_count{tenant="globex"} 0.0',
        'tenant_proxy_tokens_total{kind="completion",tenant="globex"} 0.0',
        'tenant_proxy_refusals_total{reason="system_prompt_locked",tenant="globex"} 0.0',
        'tenant_proxy_gateway_errors_total{reason="connect",tenant="globex"} 0.0',
    ):
        assert line in text
    assert 'route="/healthz"' not in text and 'route="/metrics"' not in text
