"""Local mode keeps its secrets to itself: private files, a Redis only the gateway can use, model
servers on loopback that want the gateway's key. Against the platform `tenantctl up` runs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
import redis

from tenantctl.local.state import admin_key_path
from tests.helpers import processes_mentioning


def test_everything_under_the_run_directory_is_private(platform, documents):
    documents.add("acme-corp", "Mode check", "A document, so the knowledge files exist.")
    assert platform.ask("closed-ai", question="Hi", max_tokens=3).status_code == 200  # a ledger row
    run_dir = platform.platform.settings.run_dir
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    checked = {}
    for path in run_dir.rglob("*"):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            checked[str(path.relative_to(run_dir))] = oct(stat.S_IMODE(mode))
    wrong = {
        path: mode for path, mode in checked.items() if mode != ("0o700" if (run_dir / path).is_dir() else "0o600")
    }
    assert wrong == {}
    for expected in (
        "gateway.json",
        "proxy-acme-corp.json",
        "redis.conf",
        "ledger.sqlite3",
        "state.json",
        "model-smollm2-135m-instruct.key",  # each model server's copy of the gateway's key to it
        "model-all-minilm-l6-v2.key",
        "knowledge/acme-corp/catalogue.sqlite3",
        "knowledge/acme-corp/chunks.faiss",
        "admin-keys/acme-corp.key",
        "gateway.log",
        "prometheus.yml",
    ):
        assert expected in checked, f"{expected} not found under the run directory: {sorted(checked)}"


def test_redis_refuses_a_client_without_the_password(platform):
    local = platform.platform
    port = local.settings.redis_port
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="guessed", socket_timeout=5).ping()
    assert redis.Redis.from_url(local.redis_url, socket_timeout=5).ping()
    run_dir = local.settings.run_dir
    holders = [path.name for path in run_dir.glob("*.json") if local.redis_password in path.read_text()]
    assert holders == ["gateway.json"]  # not the proxies' configs, not the state file
    assert all(local.redis_password not in cmdline(pid) for pid in processes_mentioning("redis-server"))


def test_model_servers_listen_on_loopback_and_want_the_gateways_key(platform):
    local = platform.platform
    ports = [port for ports in local.model_servers.values() for port in ports]
    assert sorted(local.model_servers) == ["all-minilm-l6-v2", "gemma-3-270m", "smollm2-135m-instruct"]
    for port in ports:
        assert listening_addresses(port) == {"127.0.0.1"}
        url = f"http://127.0.0.1:{port}/v1/models"
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        authorized = {"Authorization": f"Bearer {local.model_api_key}"}
        assert httpx.get(url, headers=authorized, timeout=120).status_code == 200
    gateway_config = json.loads((local.settings.run_dir / "gateway.json").read_text())
    assert {name: pool["api_key"] for name, pool in gateway_config["pools"].items()} == {
        name: local.model_api_key for name in local.model_servers
    }
    for pid in processes_mentioning("tenantctl.local.model_server"):
        assert local.model_api_key not in cmdline(pid)


def test_each_tenant_has_a_generated_admin_key(platform):
    for tenant, key in platform.admin_keys.items():
        assert admin_key_path(platform.platform.settings.run_dir, tenant).read_text().strip() == key
        proxy_config = json.loads((platform.platform.settings.run_dir / f"proxy-{tenant}.json").read_text())
        assert key not in json.dumps(proxy_config)  # only its digest
    assert set(platform.admin_keys) == {"acme-corp", "closed-ai"}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses with a socket listening on `port` (from /proc/net/tcp*)."""
    addresses = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.add(_address(address, width))
    return addresses


def _address(hex_address: str, width: int) -> str:
    if width == 8:
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return hex_address  # IPv6: shown raw (anything here is a failure for a loopback-only server)
