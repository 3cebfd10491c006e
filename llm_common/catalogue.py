"""The model catalogue: every model the platform serves, by name, with its aliases, engine and prices.

One catalogue drives a cluster (the platform root's `models` variable, rendered into the gateway's
config and published as the ModelCatalogue object the TenantRoute admission policy reads) and local
mode (tenantctl/local/catalogue.py). Callers name a model or one of its aliases; the gateway resolves
the alias first and only then checks the tenant's entitlement, so an alias can never reach a model
the tenant may not use.

    engine  vllm    a vLLM Deployment on GPU nodes (source: a Hugging Face repo id)
            cpu     the llama.cpp model server (source: a GGUF file in the model cache)
            openai  OpenAI's API (served_name: the OpenAI model)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from tenant_spec.models import TENANT_DEFAULT_MODEL, ModelName, TenantModels
from tenant_spec.problems import problems

Engine = Literal["vllm", "cpu", "openai"]
SELF_HOSTED_ENGINES = frozenset({"vllm", "cpu"})
# A model's owner as /v1/models says it: the platform runs the self-hosted ones.
PLATFORM_OWNER = "llm-tenants"
OPENAI_BACKEND = "openai"  # the one backend of every OpenAI model
# Names a Deployment and a Service on a cluster (`model-<name>`): a DNS label of at most 40 characters.
CATALOGUE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"


class CatalogueError(ValueError):
    """A catalogue that is not valid, or a spec naming models it does not serve."""


class CatalogueModel(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Engine = Field(description="vllm (GPU nodes), cpu (the llama.cpp model server) or openai.")
    kind: Literal["chat", "embedding"] = Field("chat", description="chat models answer completions.")
    source: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="vllm: a Hugging Face repo id; cpu: a GGUF file in the model cache; openai: unused.",
    )
    served_name: ModelName | None = Field(None, description="The name the engine knows it by; unset: the entry's.")
    aliases: list[ModelName] = Field(default_factory=list, max_length=20, description="Other names callers may use.")
    gpus: int = Field(0, ge=0, le=16, description="GPUs per replica (vllm).")
    max_sequences: int | None = Field(
        None, ge=1, le=4096, description="Sequences one replica runs at once; set: shared in fair order."
    )
    replicas: int = Field(1, ge=0, le=100, description="Replicas of a self-hosted model.")
    context_length: int = Field(2048, ge=128, le=10_000_000, description="Tokens of context the model accepts.")
    usd_per_million_input_tokens: float = Field(0.0, ge=0, le=10_000)
    usd_per_million_output_tokens: float = Field(0.0, ge=0, le=10_000)
    dimensions: int | None = Field(
        None, ge=1, le=65536, description="Embedding models: the vector size asked for (OpenAI text-embedding-3-*)."
    )
    enabled: bool = Field(True, description="false: requests for it get 503 model_disabled.")

    @model_validator(mode="after")
    def _engine_fields(self) -> CatalogueModel:
        if self.engine in SELF_HOSTED_ENGINES and self.source is None:
            raise ValueError(f"source: a {self.engine} model needs one")
        if self.engine == "vllm" and self.gpus < 1:
            raise ValueError("gpus: a vllm model needs at least 1")
        if self.engine != "vllm" and self.gpus:
            raise ValueError(f"gpus: only vllm models run on GPUs, not {self.engine}")
        return self

    @property
    def self_hosted(self) -> bool:
        return self.engine in SELF_HOSTED_ENGINES

    @property
    def owner(self) -> str:
        return "openai" if self.engine == "openai" else PLATFORM_OWNER

    def price_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for this many tokens (an estimate for dashboards and budgets, not an invoice)."""
        return (
            prompt_tokens * self.usd_per_million_input_tokens + completion_tokens * self.usd_per_million_output_tokens
        ) / 1_000_000


CatalogueName = Annotated[str, StringConstraints(pattern=CATALOGUE_NAME_PATTERN)]


class ModelCatalogue(BaseModel):
    """name -> entry. Names are DNS labels (they name Deployments and Services on a cluster); aliases are
    unique across the catalogue; at most one embedding model (a tenant's knowledge index is searchable
    only with the vectors of the model that built it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[CatalogueName, CatalogueModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> ModelCatalogue:
        seen: dict[str, str] = {}
        for name, entry in self.models.items():
            for called in (name, *entry.aliases):
                if called == TENANT_DEFAULT_MODEL:
                    raise ValueError(f"models.{name}: '{TENANT_DEFAULT_MODEL}' is reserved")
                if called in seen and not (called == name and seen[called] == name):
                    raise ValueError(f"models.{name}: '{called}' already names {seen[called]}")
                seen[called] = name
        embedding = [name for name, entry in self.models.items() if entry.kind == "embedding"]
        if len(embedding) > 1:
            raise ValueError(f"models: at most one embedding model, found {', '.join(embedding)}")
        return self

    def resolve(self, called: str) -> str | None:
        """The catalogue name `called` (a name or an alias) refers to; None: not in the catalogue."""
        if called in self.models:
            return called
        return next((name for name, entry in self.models.items() if called in entry.aliases), None)

    def entitled(self, allowed: list[str]) -> list[str]:
        """The catalogue names of a tenant's `allowed` list (names or aliases), in its order, each once."""
        names = (self.resolve(called) for called in allowed)
        return list(dict.fromkeys(name for name in names if name is not None))

    def backend(self, name: str) -> str:
        """The gateway backend serving a model: a self-hosted model's own pool (named after it), or `openai`."""
        return OPENAI_BACKEND if self.models[name].engine == "openai" else name

    @property
    def embedding_model(self) -> str | None:
        return next((name for name, entry in self.models.items() if entry.kind == "embedding"), None)

    def served_names(self) -> list[str]:
        """Every name and alias, sorted: what a tenant's spec may name."""
        return sorted({called for name, entry in self.models.items() for called in (name, *entry.aliases)})


def parse_catalogue(document: object, source: str) -> ModelCatalogue:
    """A catalogue from its JSON form ({name: entry}); CatalogueError names the file and each field."""
    try:
        return ModelCatalogue.model_validate({"models": document})
    except ValidationError as error:
        found = "; ".join(problem.removeprefix("models.") for problem in problems(error, "(the catalogue)"))
        raise CatalogueError(f"{source}: {found}") from None


def tenant_entitlement_problems(
    tenant: str, models: TenantModels, catalogue: ModelCatalogue
) -> tuple[list[str], list[str]]:
    """entitlement_problems, each naming the tenant."""
    refusals, warnings = entitlement_problems(models, catalogue)
    return [f"tenant {tenant}: {problem}" for problem in refusals], [f"tenant {tenant}: {w}" for w in warnings]


def entitlement_problems(models: TenantModels, catalogue: ModelCatalogue) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for a tenant's models against the catalogue: a model the catalogue does not
    have, or one that is not a chat model, is refused; a disabled one is only warned about (it answers
    503 until enabled again)."""
    resolved = {called: catalogue.resolve(called) for called in models.allowed}
    known = {called: catalogue.models[name] for called, name in resolved.items() if name is not None}
    refusals = []
    missing = [called for called, name in resolved.items() if name is None]
    if missing:
        refusals.append(
            f"models.allowed: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not served by the "
            f"platform; served: {', '.join(catalogue.served_names())}"
        )
    not_chat = [called for called, entry in known.items() if entry.kind != "chat"]
    if not_chat:
        refusals.append(f"models.allowed: {', '.join(not_chat)}: embedding models are not listed; name chat models")
    warnings = [
        f"models.allowed: {called} is disabled in the catalogue (answers 503 until enabled)"
        for called, entry in known.items()
        if not entry.enabled
    ]
    return refusals, warnings


def tenant_backends(models: TenantModels, catalogue: ModelCatalogue | None) -> frozenset[str]:
    """The gateway backends a tenant's requests may go to: each self-hosted model's own pool (named after
    it) and `openai` for OpenAI models. Without a catalogue, the names the tenant lists (best effort)."""
    if catalogue is None:
        return frozenset(models.allowed)
    return frozenset(catalogue.backend(name) for name in catalogue.entitled(models.allowed))
