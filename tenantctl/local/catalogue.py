"""Local mode's model catalogue: the platform root's default catalogue, or a JSON file of the same shape.

    tenantctl up --models models.json     # {"<name>": {"engine": "cpu", "source": "...gguf", ...}, ...}

Every enabled `cpu` model runs as `replicas` local model servers (the GGUF `source` from the model
cache, tenantctl/local/model_cache.py); a model already served elsewhere (a vLLM on another machine,
a test's stub) is given with `--model-endpoint NAME=URL` instead. OpenAI models are enabled only when
an OpenAI key is set: without one they stay in the catalogue, disabled (503 model_disabled), so a spec
naming one, e.g. as its fallback, is still valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from llm_common.catalogue import CatalogueError, ModelCatalogue, parse_catalogue, tenant_entitlement_problems
from tenant_spec import TenantSpec

# The same entries as the platform root's default `models` (shared-infrastructure/platform/variables.tf).
DEFAULT_CATALOGUE: dict[str, dict] = {
    "smollm2-135m-instruct": {
        "engine": "cpu",
        "source": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "aliases": ["smollm2"],
        "context_length": 2048,
        "usd_per_million_input_tokens": 0.02,
        "usd_per_million_output_tokens": 0.05,
    },
    "gemma-3-270m": {
        "engine": "cpu",
        "source": "gemma-3-270m-q4_k_m.gguf",
        "aliases": ["gemma3"],
        "context_length": 2048,
        "usd_per_million_input_tokens": 0.02,
        "usd_per_million_output_tokens": 0.05,
    },
    "all-minilm-l6-v2": {
        "engine": "cpu",
        "kind": "embedding",
        "source": "all-MiniLM-L6-v2.f32.gguf",
        "context_length": 512,
    },
    "gpt-4o-mini": {
        "engine": "openai",
        "usd_per_million_input_tokens": 0.15,
        "usd_per_million_output_tokens": 0.60,
    },
}


def read_catalogue_file(path: Path) -> dict:
    """A catalogue file, validated (CatalogueError names the file and each field); its JSON document."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogueError(f"{path}: cannot read the catalogue: {error}") from None
    parse_catalogue(document, str(path))
    return document


def load_local_catalogue(path: Path | None, openai_key: bool) -> ModelCatalogue:
    """The catalogue in `path` (JSON: name -> entry) or the default; OpenAI models disabled without a key."""
    document = DEFAULT_CATALOGUE if path is None else read_catalogue_file(path)
    catalogue = parse_catalogue(document, "the default catalogue" if path is None else str(path))
    if openai_key:
        return catalogue
    return catalogue.model_copy(
        update={
            "models": {
                name: entry.model_copy(update={"enabled": False}) if entry.engine == "openai" else entry
                for name, entry in catalogue.models.items()
            }
        }
    )


def check_specs(specs: list[TenantSpec], catalogue: ModelCatalogue) -> list[str]:
    """Warnings about the specs' models (disabled ones); CatalogueError for models the catalogue lacks."""
    refusals, warnings = [], []
    for spec in specs:
        refused, warned = tenant_entitlement_problems(spec.name, spec.models, catalogue)
        refusals += refused
        warnings += warned
    if refusals:
        raise CatalogueError("\n".join(refusals))
    return warnings


def parse_model_endpoints(values: list[str]) -> dict[str, list[str]]:
    """`NAME=URL` options as {name: [url, ...]}."""
    endpoints: dict[str, list[str]] = {}
    for value in values:
        name, separator, url = value.partition("=")
        if not separator or not name or not url.startswith(("http://", "https://")):
            raise CatalogueError(f"--model-endpoint {value}: expected NAME=http://host:port")
        endpoints.setdefault(name, []).append(url.rstrip("/"))
    return endpoints


def served_locally(catalogue: ModelCatalogue, endpoints: Mapping[str, list[str]]) -> dict[str, int]:
    """The self-hosted models local mode starts servers for, with how many: enabled cpu models not given an
    endpoint. A vllm model needs an endpoint here (there is no GPU to run it on)."""
    unknown = sorted(set(endpoints) - {name for name, entry in catalogue.models.items() if entry.self_hosted})
    if unknown:
        raise CatalogueError(f"--model-endpoint: {', '.join(unknown)}: not a self-hosted model of the catalogue")
    started = {}
    for name, entry in catalogue.models.items():
        if not entry.self_hosted or not entry.enabled or name in endpoints:
            continue
        if entry.engine == "vllm":
            raise CatalogueError(
                f"models.{name}: a vllm model runs on GPUs; in local mode give its server with "
                f"--model-endpoint {name}=URL, or set enabled false"
            )
        if entry.replicas < 1:
            raise CatalogueError(f"models.{name}: replicas is 0; set enabled false to leave it out")
        started[name] = entry.replicas
    return started
