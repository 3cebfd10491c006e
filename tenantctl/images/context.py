"""Build contexts: exactly the files an image is made of, hashed into its content hash, sent to the daemon
as a tar (with the host's CA bundle, which the Dockerfiles' build stages trust and never copy on)."""

from __future__ import annotations

import io
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tenantctl.images.cache import file_digest, sha256
from tenantctl.local import model_cache
from tenantctl.paths import REPO_ROOT

IMAGES_DIR = Path(__file__).resolve().parent  # the Dockerfiles of tenantctl/images/
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SKIPPED = {"__pycache__", ".pytest_cache"}


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which and why."""


def _tree(root: Path, relative: str) -> Iterable[tuple[str, Path]]:
    base = root / relative
    if base.is_file():
        yield relative, base
        return
    for path in sorted(base.rglob("*")):
        if path.is_file() and not SKIPPED.intersection(path.relative_to(root).parts) and path.suffix != ".pyc":
            yield str(path.relative_to(root)), path


@dataclass
class BuildContext:
    """Files by their path in the context. `ca_bundle` is added when building, never hashed."""

    files: dict[str, Path] = field(default_factory=dict)

    def add(self, arcname: str, path: Path) -> None:
        self.files[arcname] = path

    def add_tree(self, root: Path, *relatives: str) -> None:
        for relative in relatives:
            for arcname, path in _tree(root, relative):
                self.add(arcname, path)

    def digest(self) -> str:
        return sha256(*(f"{name}:{file_digest(path)}" for name, path in sorted(self.files.items())))

    def tar(self) -> io.BytesIO:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, path in sorted(self.files.items()):
                archive.add(path, arcname=name, recursive=False)
            if SYSTEM_CA_BUNDLE.is_file():
                # The build stage trusts the host's CAs (a TLS-inspecting proxy's included); the final
                # stage does not copy it (see the Dockerfiles).
                archive.add(SYSTEM_CA_BUNDLE, arcname="build-ca.crt")
        buffer.seek(0)
        return buffer


def platform_context() -> BuildContext:
    context = BuildContext()
    context.add_tree(
        REPO_ROOT,
        "Dockerfile",
        "pyproject.toml",
        "requirements-runtime.lock",
        "tenant_spec",
        "llm_common",
        "app",
        "llm_gateway",
        "alert_config_sync",
    )
    return context


def installed_llama_wheel(venv: Path = Path(sys.prefix)) -> Path:
    """The llama-cpp-python wheel ./scripts/setup built for this machine and installed (it names it in
    the virtualenv), not whichever other build the shared cache holds."""
    record = venv / "llama-cpp-wheel"
    wheel = Path(record.read_text().strip()) if record.is_file() else None
    if wheel is None or not wheel.is_file():
        raise ImageBuildError(f"no llama-cpp-python wheel named in {record}: run ./scripts/setup first")
    return wheel


# The model server's code in the image, as the package path python -m runs (model-server.Dockerfile).
MODEL_SERVER_MODULES = ("tenantctl/__init__.py", "tenantctl/local/__init__.py", "tenantctl/local/model_server.py")


def model_server_context() -> BuildContext:
    context = BuildContext()
    context.add("Dockerfile", IMAGES_DIR / "model-server.Dockerfile")
    context.add("requirements-model-server.lock", REPO_ROOT / "requirements-model-server.lock")
    context.add_tree(REPO_ROOT, "llm_common", *MODEL_SERVER_MODULES)
    wheel = installed_llama_wheel()
    context.add(f"wheels/{wheel.name}", wheel)
    try:
        models, terms = model_cache.ensure_builtin_models(), model_cache.model_terms()
    except model_cache.ModelCacheError as error:
        raise ImageBuildError(f"model-server: {error}") from None
    for source, path in models.items():  # /models/<source>: the catalogue's `source` names the file
        context.add(f"models/{source}", path)
    for name, path in terms.items():  # the terms the weights are distributed under
        context.add(f"licenses/{name}", path)
    return context


def service_context(name: str, *extra: str) -> BuildContext:
    """A Dockerfile of tenantctl/images/ (and files it copies), built on the Debian base with apt."""
    context = BuildContext()
    context.add("Dockerfile", IMAGES_DIR / f"{name}.Dockerfile")
    for file_name in extra:
        context.add(file_name, IMAGES_DIR / file_name)
    return context


def redis_context() -> BuildContext:
    return service_context("redis")


def postgres_context() -> BuildContext:
    return service_context("postgres", "postgres-entrypoint.sh")


def alertmanager_context() -> BuildContext:
    return service_context("alertmanager")
