"""Tenant proxy configuration, loaded once and validated.

Local mode passes a JSON file (TENANT_PROXY_CONFIG). On a cluster the
Deployment sets environment variables and mounts the prompt (ConfigMap) and
the gateway key (Secret) as files; each env var overrides the file's field.
KNOWLEDGE_DIR names the tenant's knowledge directory (on a cluster, its
PersistentVolumeClaim); unset, the tenant has no documents and /ask no retrieval.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from tenant_spec.model import spec_fields
from tenant_spec.problems import problems

CONFIG_PATH_ENV = "TENANT_PROXY_CONFIG"
ENV_FIELDS = {
    "TENANT_NAME": "tenant",
    "TENANT_DISPLAY_NAME": "display_name",
    "GATEWAY_URL": "gateway_url",
    "MAX_TOKENS": "max_tokens",
    "MAX_QUESTION_BYTES": "max_question_bytes",
    "KNOWLEDGE_DIR": "knowledge_dir",
}
ENV_FILE_FIELDS = {"SYSTEM_PROMPT_FILE": "system_prompt", "GATEWAY_KEY_FILE": "gateway_key"}
# A JSON file (on a cluster: the tenant's policy ConfigMap) with `guardrails`, `end_user_key_sha256`
# and `admin_key_sha256`.
POLICY_FILE_ENV = "PROXY_POLICY_FILE"
POLICY_FIELDS = frozenset({"guardrails", "end_user_key_sha256", "admin_key_sha256"})


class ConfigError(ValueError):
    """The proxy configuration is missing or invalid."""


class _ProxySettings(BaseModel):
    """What the proxy needs besides its tenant's spec fields (PROXY_SPEC_FIELDS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=1, max_length=40)
    display_name: str = ""
    gateway_url: str = Field(description="Base URL of the gateway's OpenAI API, e.g. http://llm-gateway:8080/v1")
    gateway_key: str = Field(min_length=1)
    max_question_bytes: int = Field(32 * 1024, ge=1)
    max_history_messages: int = Field(50, ge=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    connect_timeout_seconds: float = Field(2.0, gt=0)
    read_timeout_seconds: float = Field(300.0, gt=0)
    metrics_multiprocess_dir: str | None = None
    knowledge_dir: str | None = Field(None, description="The tenant's FAISS index and document store; None: off.")
    knowledge_top_k: int = Field(3, ge=1, le=20, description="Chunks added to a grounded answer, at most.")
    knowledge_min_score: float = Field(
        0.3, ge=-1, le=1, description="Cosine similarity below which a chunk is neither used nor cited."
    )
    max_document_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    chunk_words: int = Field(120, ge=16, le=400, description="Words per chunk (all-MiniLM-L6-v2 reads 256 tokens).")
    chunk_overlap_words: int = Field(20, ge=0)
    max_chunks_per_document: int = Field(
        10_000, ge=1, description="A document making more chunks is refused (413) before anything is embedded."
    )

    @field_validator("gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> _ProxySettings:
        if self.chunk_overlap_words >= self.chunk_words:
            raise ValueError("chunk_overlap_words must be smaller than chunk_words")
        return self

    @field_validator("gateway_key")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


# What the proxy takes from its tenant's spec, with the spec's own types, checks and defaults: local
# mode copies these fields from tenant.json, the tenant module passes them as the Deployment's files.
PROXY_SPEC_FIELDS = ("system_prompt", "max_tokens", "guardrails", "end_user_key_sha256", "admin_key_sha256")
ProxyConfig = create_model(
    "ProxyConfig",
    __base__=_ProxySettings,
    __doc__="The proxy's whole configuration.",
    **spec_fields(*PROXY_SPEC_FIELDS),
)


def load_proxy_config(environ: Mapping[str, str] = os.environ) -> ProxyConfig:
    document: dict = {}
    path = environ.get(CONFIG_PATH_ENV)
    if path:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: cannot read proxy config: {error}") from None
    source = path or "environment"
    document.update({field: environ[var] for var, field in ENV_FIELDS.items() if environ.get(var)})
    for var, field in ENV_FILE_FIELDS.items():
        if environ.get(var):
            document[field] = _read_secret_file(var, environ[var])
    if environ.get(POLICY_FILE_ENV):
        document.update(_read_policy_file(environ[POLICY_FILE_ENV]))
    document["metrics_multiprocess_dir"] = environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    try:
        return ProxyConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"{source}: {'; '.join(problems(error))}") from None


def _read_policy_file(path: str) -> dict:
    try:
        policy = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{POLICY_FILE_ENV}={path}: {error}") from None
    if not isinstance(policy, dict) or set(policy) - POLICY_FIELDS:
        raise ConfigError(
            f"{POLICY_FILE_ENV}={path}: must be an object with some of {', '.join(sorted(POLICY_FIELDS))}"
        )
    return policy


def _read_secret_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"{variable}={path}: {error}") from None
