"""The tenant spec: the model of one `tenant.json`, and its rules.

The same file is the input of local mode (`tenantctl up`) and of the Terraform tenant root
(`jsondecode(file("tenant.json"))`, checked by shared-infrastructure/modules/tenant/spec).
This model is the reference: tests/shared_infrastructure/test_spec_rules.py runs one corpus
of good and bad specs through both and requires the same verdicts. What the gateway's route and
the proxy's settings carry is built from these fields (tenant_spec/route.py, app/config.py).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tenant_spec.alerts import TenantAlerts
from tenant_spec.fields import NonBlankText, RequestExtensions, Sha256Digests
from tenant_spec.guardrails import Guardrails
from tenant_spec.models import DEFAULT_MODEL, TenantModels
from tenant_spec.rate_limits import RateLimits

# DNS-1123 label, capped at 40 characters so the name also fits Prometheus label
# values, Grafana dashboard uids (the tenant name itself; Grafana allows 40) and
# Kubernetes object names. Names are pasted into PromQL matchers and dashboard JSON
# as they are, so nothing that could break them (quotes, braces, ...) may pass.
TENANT_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TENANT_NAME_MAX_LENGTH = 40
# Namespaces the platform or Kubernetes itself uses (the tenant name is the namespace name).
RESERVED_TENANT_NAMES = frozenset({"default", "monitoring"})
RESERVED_TENANT_PREFIX = "kube-"
KUBERNETES_CPU_PATTERN = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$")
KUBERNETES_MEMORY_PATTERN = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _kubernetes_quantity(pattern: re.Pattern, kind: str, examples: str, positive: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value) or (positive and _is_zero(value)):
            raise ValueError(
                f"must be a {'positive ' if positive else ''}Kubernetes {kind} quantity such as {examples}"
            )
        return value

    return AfterValidator(check)


CpuQuantity = Annotated[str, _kubernetes_quantity(KUBERNETES_CPU_PATTERN, "CPU", "'100m'")]
MemoryQuantity = Annotated[str, _kubernetes_quantity(KUBERNETES_MEMORY_PATTERN, "memory", "'256Mi'")]


class Quota(_Strict):
    """The namespace's ResourceQuota on a cluster (local mode ignores it)."""

    cpu: Annotated[str, _kubernetes_quantity(KUBERNETES_CPU_PATTERN, "CPU", "'2' or '500m'", positive=True)] = Field(
        "2", description="Namespace CPU limit, Kubernetes quantity (e.g. 2, 500m)."
    )
    memory: Annotated[
        str, _kubernetes_quantity(KUBERNETES_MEMORY_PATTERN, "memory", "'4Gi' or '512Mi'", positive=True)
    ] = Field("4Gi", description="Namespace memory limit, Kubernetes quantity (e.g. 4Gi).")
    pods: int = Field(10, ge=1, le=1000, description="Maximum number of pods in the namespace.")


class ProxyDeployment(_Strict):
    """How a cluster runs the tenant's proxy (local mode ignores it)."""

    replicas: int = Field(1, ge=0, le=100, description="More than one needs ReadWriteMany knowledge storage.")
    workers: int = Field(2, ge=1, le=32, description="gunicorn workers per Pod.")
    cpu_request: CpuQuantity = Field("100m", description="CPU each proxy Pod requests.")
    memory_request: MemoryQuantity = Field("256Mi", description="Memory each proxy Pod requests.")
    cpu_limit: CpuQuantity = Field("500m", description="CPU limit of each proxy Pod.")
    memory_limit: MemoryQuantity = Field("512Mi", description="Memory limit of each proxy Pod.")


class KnowledgeStorage(_Strict):
    """The PersistentVolumeClaim with the tenant's document index (on a cluster)."""

    size: MemoryQuantity = Field("1Gi", description="Requested size, Kubernetes quantity.")
    storage_class: str | None = Field(None, description="unset: the cluster's default StorageClass")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="fixed by the first apply: a claim's access mode cannot change"
    )


class TenantSpec(_Strict):
    """Everything that describes one tenant, in local mode and on a cluster."""

    name: str = Field(description="DNS-1123 label; also the Kubernetes namespace.")
    display_name: NonBlankText = Field(
        min_length=1, max_length=100, description="Shown in answers, dashboards and the chat page."
    )
    industry: NonBlankText = Field(min_length=1, max_length=60, description="The tenant's line of business (a label).")
    system_prompt: NonBlankText = Field(
        min_length=1,
        max_length=16384,
        description="The tenant's system prompt, put first in every request by its proxy.",
    )
    models: TenantModels = Field(
        TenantModels(), description="Catalogue models the tenant may use, its default and its fallback."
    )
    max_tokens: int = Field(256, ge=1, le=32768, description="Most tokens an answer may have (a caller may ask fewer).")
    quota: Quota = Field(Quota(), description="The namespace's ResourceQuota (on a cluster).")
    rate_limits: RateLimits = Field(RateLimits(), description="Request and token rates the gateway allows.")
    monthly_budget_usd: float | None = Field(
        None,
        gt=0,
        le=10_000_000,
        description="Estimated spend per month in US dollars; the budget alert fires at 80 % of it.",
    )
    # Tenant controls (the gateway refuses past a budget; the proxy applies the guardrails).
    monthly_token_budget: int | None = Field(
        None, ge=1, le=10**12, description="Prompt + completion tokens per calendar month (UTC); unset: no limit."
    )
    guardrails: Guardrails = Field(
        Guardrails(), description="What the proxy refuses before anything reaches the gateway."
    )
    end_user_key_sha256: Sha256Digests = Field(
        default_factory=list,
        max_length=20,
        description="SHA-256 of the API keys end users must send to the proxy; empty (default): no key needed.",
    )
    admin_key_sha256: Sha256Digests = Field(
        default_factory=list,
        max_length=20,
        description="SHA-256 of the tenant admin keys that may add and delete documents; empty: nobody can "
        "(local mode then generates one).",
    )
    local_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="Port of the tenant proxy in local mode; unset means the next free one from 5002.",
    )
    # The request path (the gateway enforces both; docs/security.md, docs/architecture.md).
    max_concurrent_requests: int | None = Field(
        None, ge=1, le=10_000, description="Requests in progress at once across the gateways; unset: no limit."
    )
    allowed_request_extensions: RequestExtensions = Field(
        default_factory=list,
        max_length=50,
        description="Backend-specific request fields passed on (e.g. guided_json, top_k); empty: none.",
    )
    # On a cluster only (the Terraform tenant module; local mode ignores them).
    proxy: ProxyDeployment = Field(ProxyDeployment(), description="How a cluster runs the tenant's proxy.")
    knowledge_storage: KnowledgeStorage = Field(KnowledgeStorage(), description="The volume of the tenant's documents.")
    admin_group: NonBlankText | None = Field(
        None, min_length=1, max_length=253, description="Group administering the namespace; unset: '<name>-admins'."
    )
    ingress_namespace: str = Field(
        "ingress-nginx", description="The ingress controller's namespace (may reach the proxy)."
    )
    previous_gateway_key_sha256: Sha256Digests = Field(
        default_factory=list,
        max_length=20,
        description="Earlier gateway key hashes still accepted during a key rotation.",
    )
    # Sharing the model pool (llm_gateway/fair_queue.py, llm_gateway/prefix_cache.py).
    weight: float = Field(
        1.0, gt=0, le=1000, description="The tenant's share of a full model pool against the others' weights."
    )
    prefix_cache_group: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Tenants naming the same group share vLLM's prefix cache; unset: the tenant's own.",
    )
    # Where the tenant's own alerts go (alert_config_sync/routing.py); unset: the platform's only.
    alerts: TenantAlerts | None = Field(
        None, description="Where the tenant's own alerts go; unset: the platform's receivers only."
    )

    @model_validator(mode="before")
    @classmethod
    def _replaced_model_fields(cls, data: object) -> object:
        if isinstance(data, dict) and LEGACY_MODEL_FIELDS & data.keys():
            raise ValueError(f"models: {legacy_models_hint(data)}")
        return data

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > TENANT_NAME_MAX_LENGTH or not TENANT_NAME_PATTERN.match(value):
            raise ValueError(
                f"must be a DNS-1123 label of at most {TENANT_NAME_MAX_LENGTH} characters: "
                "lower-case letters, digits and '-', starting and ending with a letter or digit"
            )
        if value in RESERVED_TENANT_NAMES or value.startswith(RESERVED_TENANT_PREFIX):
            raise ValueError("'default', 'monitoring' and 'kube-*' are reserved for the platform")
        return value

    @field_validator("ingress_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if len(value) > 63 or not TENANT_NAME_PATTERN.match(value):
            raise ValueError("must be a DNS-1123 label")
        return value

    @model_validator(mode="after")
    def _shared_storage_for_replicas(self) -> TenantSpec:
        if self.proxy.replicas > 1 and self.knowledge_storage.access_mode != "ReadWriteMany":
            raise ValueError("knowledge_storage.access_mode: more than one proxy replica needs ReadWriteMany storage")
        return self


LEGACY_MODEL_FIELDS = frozenset({"backend", "model", "openai_model"})


def legacy_models_hint(data: dict) -> str:
    """How to write an older spec's backend/model/openai_model as `models` (same behaviour)."""
    model, openai_model = data.get("model", DEFAULT_MODEL), data.get("openai_model", "gpt-4o-mini")
    backend = data.get("backend", "auto")
    models = {
        "openai": {"allowed": [openai_model]},
        "vllm": {"allowed": [model]},
    }.get(backend, {"allowed": [model, openai_model], "fallback": openai_model})
    return (
        "backend, model and openai_model were replaced by models (catalogue names the tenant may use); "
        f'this spec reads as "models": {json.dumps(models)}'
    )


def _is_zero(quantity: str) -> bool:
    digits = re.sub(r"[^0-9.]", "", quantity)
    return float(digits or 0) == 0


def spec_fields(*names: str) -> dict[str, tuple]:
    """The named TenantSpec fields (type, checks, default, description), for `pydantic.create_model`:
    what is derived from the spec (the gateway's route, the proxy's settings) takes them from here."""
    return {name: (TenantSpec.model_fields[name].annotation, TenantSpec.model_fields[name]) for name in names}
