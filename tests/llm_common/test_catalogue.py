"""The model catalogue: names and aliases, entitlements checked after an alias resolves, prices, and the
refusals of a catalogue or a spec that does not fit."""

from __future__ import annotations

import pytest

from llm_common.catalogue import (
    CatalogueError,
    entitlement_problems,
    parse_catalogue,
    tenant_backends,
)
from tenant_spec.models import TenantModels
from tenantctl.local.catalogue import DEFAULT_CATALOGUE, load_local_catalogue

CATALOGUE = parse_catalogue(DEFAULT_CATALOGUE, "the default catalogue")


def test_an_alias_resolves_to_its_model_and_entitlement_is_by_the_resolved_name():
    assert CATALOGUE.resolve("gemma3") == "gemma-3-270m"
    assert CATALOGUE.resolve("gemma-3-270m") == "gemma-3-270m"
    assert CATALOGUE.resolve("llama-9000") is None
    # A tenant listing the alias may use the model; listing one model never entitles another's alias.
    assert CATALOGUE.entitled(["gemma3", "smollm2-135m-instruct"]) == ["gemma-3-270m", "smollm2-135m-instruct"]
    assert "gemma-3-270m" not in CATALOGUE.entitled(["smollm2"])


def test_prices_are_per_million_input_and_output_tokens():
    entry = CATALOGUE.models["gpt-4o-mini"]
    assert entry.price_of(1_000_000, 2_000_000) == pytest.approx(0.15 + 1.20)
    assert CATALOGUE.models["all-minilm-l6-v2"].price_of(10**6, 0) == 0


@pytest.mark.parametrize(
    "models, message",
    [
        ({"a": {"engine": "vllm", "source": "org/model"}}, "a.gpus: a vllm model needs at least 1"),
        ({"a": {"engine": "cpu"}}, "a.source: a cpu model needs one"),
        ({"a": {"engine": "openai", "gpus": 1}}, "a.gpus: only vllm models run on GPUs"),
        ({"a": {"engine": "tpu"}}, "a.engine"),
        ({"Not_A_Label": {"engine": "openai"}}, "Not_A_Label"),
        ({"a": {"engine": "openai"}, "b": {"engine": "openai", "aliases": ["a"]}}, "'a' already names a"),
        (
            {
                "a": {"engine": "cpu", "source": "a", "kind": "embedding"},
                "b": {"engine": "openai", "kind": "embedding"},
            },
            "at most one embedding model",
        ),
        ({"a": {"engine": "openai", "aliases": ["tenant-default"]}}, "'tenant-default' is reserved"),
        ({}, "at least 1"),
    ],
)
def test_a_bad_catalogue_is_refused_naming_the_entry_and_field(models, message):
    with pytest.raises(CatalogueError, match=message) as refused:
        parse_catalogue(models, "models.json")
    assert str(refused.value).startswith("models.json: ")


def test_a_spec_naming_an_absent_model_is_refused_with_what_is_served():
    refusals, warnings = entitlement_problems(TenantModels(allowed=["smollm2", "llama-9000"]), CATALOGUE)
    assert refusals == [
        "models.allowed: llama-9000 is not served by the platform; served: all-minilm-l6-v2, gemma-3-270m, gemma3, "
        "gpt-4o-mini, smollm2, smollm2-135m-instruct"
    ]
    assert warnings == []


def test_an_embedding_model_is_not_a_chat_entitlement_and_a_disabled_model_is_a_warning():
    without_key = load_local_catalogue(None, openai_key=False)
    refusals, warnings = entitlement_problems(TenantModels(allowed=["gpt-4o-mini", "all-minilm-l6-v2"]), without_key)
    assert refusals == ["models.allowed: all-minilm-l6-v2: embedding models are not listed; name chat models"]
    assert warnings == ["models.allowed: gpt-4o-mini is disabled in the catalogue (answers 503 until enabled)"]
    assert load_local_catalogue(None, openai_key=True).models["gpt-4o-mini"].enabled


def test_a_tenants_backends_are_its_self_hosted_models_and_openai():
    models = TenantModels(allowed=["smollm2", "gpt-4o-mini"])
    assert tenant_backends(models, CATALOGUE) == {"smollm2-135m-instruct", "openai"}
    assert tenant_backends(models, None) == {"smollm2", "gpt-4o-mini"}  # no catalogue at hand: best effort


def test_a_catalogue_file_that_is_not_json_is_refused_naming_it(tmp_path):
    path = tmp_path / "models.json"
    path.write_text("{")
    with pytest.raises(CatalogueError, match=f"{path}: cannot read the catalogue"):
        load_local_catalogue(path, openai_key=False)
