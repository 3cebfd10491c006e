"""Bodies over the limit through real gunicorn processes (the gateway and a tenant proxy): with a
Content-Length, and chunked without one. The answer is a 413 as soon as the limit is passed, while
the caller is still sending: the services never wait for (or keep) a body they will not read."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tenantctl.local import launchers
from tests.conftest import start_process
from tests.helpers import controlled_gateway_config, free_port, tenant_route

pytestmark = pytest.mark.e2e

KEY = "k-bodies"
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def services(stub_url, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bodies")
    gateway_port, proxy_port = free_port(), free_port()
    config = controlled_gateway_config([tenant_route("bodies", KEY)], stub_url, max_body_bytes=LIMIT)
    started = []
    try:
        started.append(start_process(launchers.gateway(config, gateway_port, run_dir, workers=1)))
        started.append(
            start_process(
                launchers.tenant_proxy(
                    {
                        "tenant": "bodies",
                        "system_prompt": "p",
                        "gateway_url": f"http://127.0.0.1:{gateway_port}/v1",
                        "gateway_key": KEY,
                        "max_body_bytes": LIMIT,
                    },
                    proxy_port,
                    run_dir,
                    workers=1,
                )
            )
        )
        yield {"gateway": f"http://127.0.0.1:{gateway_port}", "proxy": f"http://127.0.0.1:{proxy_port}"}
    finally:
        for process in reversed(started):
            process.stop()


def endless_chunked_post(url: str, path: str, send_bytes: int) -> bytes:
    """POST a chunked body that never ends (no last chunk) of at least `send_bytes`; return the response head.

    A service that reads to the end of the body would never answer: the read times out and the test fails.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b'{"messages": [{"role": "user", "content": "' + b"x" * 8192
        sent = 0
        try:
            while sent < send_bytes:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                chunk = b"x" * 8192
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service answered and closed while we were still sending
        head = b""
        while b"\r\n\r\n" not in head:
            data = connection.recv(65536)
            if not data:
                break
            head += data
        return head


@pytest.mark.parametrize(
    "service, path",
    [
        ("gateway", "/v1/chat/completions"),
        ("gateway", "/v1/embeddings"),
        ("proxy", "/v1/chat/completions"),
        ("proxy", "/ask"),
    ],
)
def test_a_chunked_body_over_the_limit_is_a_413_before_it_ends(services, service, path):
    head = endless_chunked_post(services[service], path, 2 * LIMIT)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


@pytest.mark.parametrize("service", ["gateway", "proxy"])
def test_a_body_over_the_limit_with_a_content_length_is_a_413(services, service):
    body = b'{"messages": [{"role": "user", "content": "' + b"x" * LIMIT + b'"}]}'
    response = httpx.post(
        services[service] + "/v1/chat/completions",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("service", ["gateway", "proxy"])
def test_a_chunked_body_under_the_limit_is_read(services, service):
    def chunks():
        yield b'{"messages": [{"role": "user", '
        yield b'"content": "hi"}]}'

    response = httpx.post(
        services[service] + "/v1/chat/completions",
        content=chunks(),
        timeout=30,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
