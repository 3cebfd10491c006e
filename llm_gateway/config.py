"""Gateway configuration: loaded once from a JSON file plus environment, validated, passed to create_app."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_common.catalogue import CatalogueModel, ModelCatalogue
from llm_gateway.limits import LimitsConfig
from tenant_spec.problems import problems
from tenant_spec.route import TenantRoute

CONFIG_PATH_ENV = "LLM_GATEWAY_CONFIG"
LEDGER_URL_ENV = "LLM_LEDGER_URL"
LEDGER_URL_FILE_ENV = "LLM_LEDGER_URL_FILE"
CACHE_SALT_SECRET_ENV = "LLM_CACHE_SALT_SECRET"
CACHE_SALT_SECRET_FILE_ENV = "LLM_CACHE_SALT_SECRET_FILE"
METRICS_PORT_ENV = "METRICS_PORT"  # read by llm_common/gunicorn_conf.py too


class ConfigError(ValueError):
    """The gateway configuration is missing or invalid."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolDiscoveryConfig(_Config):
    """A pool whose members are the ready Pods behind a (headless) Service, read from its EndpointSlices."""

    namespace: str = Field(min_length=1)
    service: str = Field(min_length=1)
    port_name: str = "http"
    refresh_seconds: float = Field(5.0, gt=0)
    kubeconfig: str | None = Field(
        None, description="Outside a cluster: kubeconfig to use; in a Pod: None (its ServiceAccount)."
    )


class PoolConfig(_Config):
    """Where a self-hosted model's servers (vLLM, llama.cpp) are: fixed `endpoints`, e.g. http://vllm-0:8000
    (no /v1), or the Pods of a Service found by `discovery` (one member per Pod). How many sequences each
    member runs at once is the catalogue's max_sequences; the queue settings apply when it is set."""

    endpoints: list[str] = Field(default_factory=list)
    discovery: PoolDiscoveryConfig | None = None
    api_key: str = "EMPTY"
    health_path: str = "/health"
    health_interval_seconds: float = Field(5.0, gt=0)
    unhealthy_threshold: int = Field(
        2, ge=1, description="Consecutive failed health checks before a member is skipped."
    )
    eject_cooldown_seconds: float = Field(10.0, gt=0, description="How long an ejected member is skipped.")
    consecutive_failures: int = Field(
        5, ge=1, description="5xx answers, timeouts or lost connections in a row before a member is ejected."
    )
    max_ejection_percent: int = Field(
        50,
        ge=0,
        le=100,
        description="At most this share of members ejected for failures at once (connect "
        "failures always eject); a pool of one is never emptied by 5xx answers.",
    )
    connect_timeout_seconds: float = Field(2.0, gt=0)
    read_timeout_seconds: float = Field(300.0, gt=0)
    max_queued_per_tenant: int = Field(100, ge=1, description="Requests of one tenant waiting at most (then 429).")
    queue_timeout_seconds: float = Field(30.0, gt=0, description="Longest wait for a slot (then 503).")
    share_hold_seconds: float = Field(
        1.0,
        ge=0,
        le=300,
        description="How long a tenant below its share keeps the slots it recently used free "
        "for its next requests while others queue (fair_queue.py); 0: never.",
    )

    @field_validator("endpoints")
    @classmethod
    def _http_urls(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith(("http://", "https://")):
                raise ValueError(f"'{value}' must start with http:// or https://")
        return [value.rstrip("/") for value in values]

    @model_validator(mode="after")
    def _members_known(self) -> PoolConfig:
        if bool(self.endpoints) == (self.discovery is not None):
            raise ValueError("set either 'endpoints' (at least one URL) or 'discovery' (a Service's Pods)")
        return self


class OpenAIConfig(_Config):
    api_key: str = Field(min_length=1)
    base_url: str = "https://api.openai.com/v1"
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(300.0, gt=0)


class TenantDiscoveryConfig(_Config):
    """Learn tenants from the TenantRoute objects tenant applies write into the gateway's namespace."""

    namespace: str = Field(min_length=1)
    refresh_seconds: float = Field(10.0, gt=0)
    kubeconfig: str | None = Field(
        None, description="Outside a cluster: kubeconfig to use; in a Pod: None (its ServiceAccount)."
    )


class LedgerConfig(_Config):
    """`sqlite:///path` (embedded) or `postgresql://...`; the environment's LLM_LEDGER_URL or
    LLM_LEDGER_URL_FILE (a mounted Secret) wins over the file, so a password stays out of it."""

    url: str = Field(min_length=1)


class GatewayConfig(_Config):
    tenants: list[TenantRoute] = Field(default_factory=list, description="Tenants known from the config file.")
    tenant_discovery: TenantDiscoveryConfig | None = None
    models: dict[str, CatalogueModel] = Field(
        min_length=1, description="The model catalogue (llm_common/catalogue.py): every model served, by name."
    )
    pools: dict[str, PoolConfig] = Field(
        default_factory=dict, description="Where each self-hosted model's servers are, by catalogue name."
    )
    openai: OpenAIConfig | None = None
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics only on this port (METRICS_PORT; gunicorn also listens "
        "there), so a NetworkPolicy can let only Prometheus reach it. None: "
        "/metrics on the API port.",
    )
    limits: LimitsConfig | None = Field(None, description="Redis for rate limits and budgets; None: not enforced.")
    ledger: LedgerConfig | None = Field(None, description="The usage ledger; None: no record is written.")
    cache_salt_secret: str | None = Field(
        None,
        min_length=16,
        description="Keys the tenants' vLLM cache_salt (prefix_cache.py); the same on every "
        "gateway (LLM_CACHE_SALT_SECRET or _FILE). None: salts still differ "
        "per tenant, but anyone reaching vLLM could compute them.",
    )
    metrics_multiprocess_dir: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        try:
            catalogue = ModelCatalogue(models=self.models)  # names, aliases, one embedding model
        except ValidationError as error:
            raise ValueError("; ".join(problems(error))) from None
        for name, entry in catalogue.models.items():
            if entry.self_hosted and entry.enabled and name not in self.pools:
                raise ValueError(f"pools: the {entry.engine} model '{name}' needs its servers ('pools.{name}')")
            if entry.engine == "openai" and entry.enabled and self.openai is None:
                raise ValueError(
                    f"models.{name}: an openai model needs an OpenAI key (OPENAI_API_KEY or 'openai'), or enabled false"
                )
        for name in self.pools:
            if name not in catalogue.models or not catalogue.models[name].self_hosted:
                raise ValueError(f"pools.{name}: not a self-hosted (vllm or cpu) model of the catalogue")
        if not self.tenants and self.tenant_discovery is None:
            raise ValueError("configure 'tenants', 'tenant_discovery' or both: the gateway would accept no key")
        names = [tenant.name for tenant in self.tenants]
        if len(names) != len(set(names)):
            raise ValueError("tenant names must be unique")
        return self

    @property
    def catalogue(self) -> ModelCatalogue:
        return ModelCatalogue(models=self.models)


def load_gateway_config(environ: Mapping[str, str] = os.environ) -> GatewayConfig:
    """Build the config from the JSON file named by LLM_GATEWAY_CONFIG and the environment.

    The OpenAI key comes from OPENAI_API_KEY or from the file named by
    OPENAI_API_KEY_FILE (a mounted Secret); OPENAI_BASE_URL overrides the URL.
    """
    path = environ.get(CONFIG_PATH_ENV)
    if not path:
        raise ConfigError(f"{CONFIG_PATH_ENV} must name the gateway's JSON config file")
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read gateway config: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: must hold a JSON object")
    openai = _openai_from_environment(environ, document.get("openai"))
    if openai is not None:
        document["openai"] = openai
    ledger_url = _secret_from_environment(environ, LEDGER_URL_ENV, LEDGER_URL_FILE_ENV)
    if ledger_url:
        document["ledger"] = {**(document.get("ledger") or {}), "url": ledger_url}
    cache_salt_secret = _secret_from_environment(environ, CACHE_SALT_SECRET_ENV, CACHE_SALT_SECRET_FILE_ENV)
    if cache_salt_secret:
        document["cache_salt_secret"] = cache_salt_secret
    document["metrics_multiprocess_dir"] = environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    if environ.get(METRICS_PORT_ENV):
        document["metrics_port"] = environ[METRICS_PORT_ENV]
    try:
        return GatewayConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"{path}: {'; '.join(problems(error))}") from None


def _secret_from_environment(environ: Mapping[str, str], variable: str, file_variable: str) -> str:
    """The value of `variable`, else the content of the file `file_variable` names, else ''."""
    value = environ.get(variable, "").strip()
    path = environ.get(file_variable)
    if not value and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{file_variable} {path}: {error}") from None
    return value


def _openai_from_environment(environ: Mapping[str, str], section: dict | None) -> dict | None:
    key = _secret_from_environment(environ, "OPENAI_API_KEY", "OPENAI_API_KEY_FILE")
    if not key and section is None:
        return None
    merged = dict(section or {})
    if key:
        merged["api_key"] = key
    if environ.get("OPENAI_BASE_URL"):
        merged["base_url"] = environ["OPENAI_BASE_URL"]
    return merged
