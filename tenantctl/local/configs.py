"""What local mode gives the gateway and each tenant proxy: their configs, rendered from the tenant specs,
and the tenants' ports. Pure functions: inputs in, documents out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.config import PROXY_SPEC_FIELDS
from llm_common.keys import sha256_hex
from llm_gateway.auth import hash_gateway_key
from tenant_spec import TenantSpec
from tenant_spec.route import gateway_route


def assign_ports(specs: list[TenantSpec], first_port: int) -> dict[str, int]:
    """The spec's local_port where given, otherwise the next free port from `first_port` upward."""
    taken = {spec.local_port for spec in specs if spec.local_port is not None}
    ports: dict[str, int] = {}
    next_port = first_port
    for spec in specs:
        if spec.local_port is not None:
            ports[spec.name] = spec.local_port
            continue
        while next_port in taken:
            next_port += 1
        ports[spec.name] = next_port
        taken.add(next_port)
    return ports


def gateway_config(
    specs: list[TenantSpec],
    keys: Mapping[str, str],
    models: dict,
    pools: dict,
    controls: dict | None = None,
) -> dict:
    """`models`: the catalogue ({name: entry}); `pools`: where each self-hosted model's servers are;
    `controls`: the `limits` and `ledger` sections (tenant_controls), when enforced."""
    return {
        "tenants": [gateway_route(spec, [hash_gateway_key(keys[spec.name])]) for spec in specs],
        "models": models,
        "pools": pools,
        **(controls or {}),
    }


def tenant_controls(redis_url: str, ledger_url: str) -> dict:
    return {"limits": {"redis_url": redis_url}, "ledger": {"url": ledger_url}}


def proxy_config(
    spec: TenantSpec, key: str, gateway_url: str, knowledge_dir: Path | None = None, admin_key: str | None = None
) -> dict:
    """`admin_key`: a generated admin key accepted besides the spec's (local mode, when the spec has none)."""
    spec_settings = spec.model_dump(mode="json", include=set(PROXY_SPEC_FIELDS), exclude_none=True)
    admin_keys = [*spec.admin_key_sha256, *([sha256_hex(admin_key)] if admin_key else [])]
    config = {
        **spec_settings,
        "tenant": spec.name,
        "display_name": spec.display_name,
        "gateway_url": gateway_url,
        "gateway_key": key,
        "admin_key_sha256": admin_keys,
    }
    if knowledge_dir is not None:
        config["knowledge_dir"] = str(knowledge_dir.resolve())
    return config
