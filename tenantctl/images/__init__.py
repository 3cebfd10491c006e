"""`tenantctl images build`: every image the platform root and the tenant module deploy, built here.

No registry can be reached on our machines, so nothing is pulled:

| image | from |
| --- | --- |
| base (internal) | Debian bookworm with Python 3.11, built with mmdebstrap from Debian's packages |
| platform | the repository's `Dockerfile` on that base: the gateway and the tenant proxy |
| model-server | `tenantctl/images/model-server.Dockerfile`: llama.cpp's OpenAI server (the cached llama-cpp-python wheel) with SmolLM2-135M-Instruct and all-MiniLM-L6-v2; the CPU stand-in for the vLLM pool and its embedding server |
| prometheus | Prometheus built with Go (scripts/build-toolchain): Debian's package lacks Kubernetes service discovery |
| redis, postgres, alertmanager | Debian's redis-server, postgresql and prometheus-alertmanager on that base (apt), with the contract of the official images |

Each image is keyed by a hash of everything it is made of (Dockerfile, build context,
package lists, binaries, models). Its `docker save` archive is cached as
`$LLM_TENANTS_CACHE/images/<name>-<hash>.tar`: a warm run finds every archive and starts
no Docker daemon at all. A missing one is built by our own dockerd (docker_daemon.py),
whose data-root (layer cache) is kept too, so a code change rebuilds in seconds.

The image references are the Terraform variables' values: `terraform_variables()` gives
the platform root's variables that deploy exactly these images. kube-state-metrics and
Grafana cannot be built here (the Go module proxy does not serve kube-state-metrics;
Grafana is not a Go module we can build offline): the platform root disables them by variable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tenantctl import toolchain
from tenantctl.images.docker_daemon import DockerDaemon, DockerUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = Path(__file__).resolve().parent
VERSION = "0.1.0"  # the project's version (pyproject.toml): the platform image's tag
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# An image built from some content is also tagged <CONTENT_REPOSITORY>:<name>-<hash> in the daemon
# (not a label: a build-time label changes every step's config and defeats the layer cache).
CONTENT_REPOSITORY = "llm-tenants.local/content"
KEEP_ARCHIVES = 2  # per image: the current archive and the one before (another checkout may use it)

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which and why."""


# -- What each image is ----------------------------------------------------------------------------

BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "libgomp1", "ca-certificates")

PLATFORM_IMAGE = f"ghcr.io/llm-tenants/platform:{VERSION}"
MODEL_SERVER_IMAGE = f"ghcr.io/llm-tenants/model-server:{VERSION}"
LOCAL_REGISTRY = "llm-tenants.local"  # images that exist only where they were built


@dataclass(frozen=True)
class BuiltImage:
    """One image: its reference (what the Pods name), its content hash and its cached archive."""

    name: str
    reference: str
    content_hash: str
    archive: Path

    @property
    def cached(self) -> bool:
        return self.archive.is_file()


def images_dir() -> Path:
    return toolchain.cache_root() / "images"


def _archive(name: str, content_hash: str) -> Path:
    return images_dir() / f"{name}-{content_hash[:16]}.tar"


def _sha256(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    """Content hash of a file; large files (models, wheels, binaries) are hashed once per size+mtime."""
    stat = path.stat()
    if stat.st_size < 8 << 20:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    memo = images_dir() / "digests.json"
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        known[key] = digest.hexdigest()
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f"{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(memo)
    return known[key]


def _mmdebstrap_version() -> str:
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed: run ./scripts/setup (Debian package mmdebstrap)")
    return subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True).stdout.strip()


# -- Build contexts: exactly the files an image is made of ------------------------------------------

SKIPPED = {"__pycache__", ".pytest_cache"}


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
        return _sha256(*(f"{name}:{_file_digest(path)}" for name, path in sorted(self.files.items())))

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
    context.add_tree(REPO_ROOT, "Dockerfile", "pyproject.toml", "requirements-runtime.lock", "tenant_spec",
                     "llm_common", "app", "llm_gateway", "alert_config_sync")
    return context


def installed_llama_wheel(venv: Path = Path(sys.prefix)) -> Path:
    """The llama-cpp-python wheel ./scripts/setup built for this machine and installed (it names it in
    the virtualenv), not whichever other build the shared cache holds."""
    record = venv / "llama-cpp-wheel"
    wheel = Path(record.read_text().strip()) if record.is_file() else None
    if wheel is None or not wheel.is_file():
        raise ImageBuildError(f"no llama-cpp-python wheel named in {record}: run ./scripts/setup first")
    return wheel


def model_server_context() -> BuildContext:
    from tenantctl import embedding_model, launchers

    context = BuildContext()
    context.add("Dockerfile", IMAGES_DIR / "model-server.Dockerfile")
    context.add("requirements-model-server.lock", REPO_ROOT / "requirements-model-server.lock")
    context.add_tree(REPO_ROOT, "llm_common")
    context.add("tenantctl/__init__.py", REPO_ROOT / "tenantctl" / "__init__.py")
    context.add("tenantctl/model_server.py", REPO_ROOT / "tenantctl" / "model_server.py")
    wheel = installed_llama_wheel()
    context.add(f"wheels/{wheel.name}", wheel)
    try:
        context.add("models/chat.gguf", launchers.embedded_model_path())
        context.add("models/embedding.gguf", embedding_model.ensure_gguf())
    except (launchers.LauncherError, embedding_model.EmbeddingModelError) as error:
        raise ImageBuildError(f"model-server: {error}") from None
    return context


# -- The images ---------------------------------------------------------------------------------------

@dataclass
class ImageRecipe:
    name: str
    reference: str
    describe: str
    hash_inputs: Callable[[], list[str]]
    build: Callable[["Builder", str], None]  # (builder, reference tag) -> image in the daemon
    needs: tuple[str, ...] = ()


class Builder:
    """Builds the images that are not cached; one dockerd for all of them, started only if needed."""

    def __init__(self, log: Log = print, docker_host: str | None = None):
        self.log = log
        self.docker_host = docker_host
        self._daemon: DockerDaemon | None = None
        self._client = None
        self.hashes: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # daemon ------------------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            if self.docker_host:
                import docker

                self._client = docker.DockerClient(base_url=self.docker_host, version="auto", timeout=600)
            else:
                self._daemon = DockerDaemon(log=self.log).start()
                self._client = self._daemon.client
        return self._client

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()
        elif self._client is not None:
            self._client.close()
        self._daemon = self._client = None

    # building blocks ---------------------------------------------------------------------------------

    def has_image(self, reference: str, content_hash: str) -> bool:
        return has_image(self.client, reference, content_hash)

    def load(self, image: BuiltImage) -> None:
        load_images(self.client, [image], self.log)

    def docker_build(self, context: BuildContext, reference: str, content_hash: str,
                     buildargs: dict[str, str] | None = None) -> None:
        stream = self.client.api.build(
            fileobj=context.tar(), custom_context=True, tag=reference, buildargs=buildargs or {},
            network_mode="host", rm=True, forcerm=True, decode=True)
        tail: list[str] = []
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(f"{reference}: {chunk['error']}\n" + "".join(tail[-30:]))
            text = chunk.get("stream", "")
            if text:
                tail.append(text)
                if text.startswith("Step "):
                    self.log(f"  {reference}: {text.strip()[:160]}")
                elif "Using cache" in text:
                    self.log(f"  {reference}:   (cached)")

    def import_rootfs(self, rootfs: Path, reference: str, content_hash: str, changes: list[str]) -> None:
        """`docker import` of a root file system tarball, with the image config in `changes`."""
        repository, tag = reference.rsplit(":", 1)
        self.client.api.import_image_from_file(str(rootfs), repository=repository, tag=tag, changes=changes)

    def save(self, reference: str, archive: Path) -> None:
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as handle:
                for chunk in self.client.images.get(reference).save(named=reference):
                    handle.write(chunk)
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)


def content_tag(reference: str, content_hash: str) -> str:
    name = reference.rsplit("/", 1)[-1].split(":")[0]
    return f"{CONTENT_REPOSITORY}:{name}-{content_hash[:16]}"


def has_image(docker_client, reference: str, content_hash: str) -> bool:
    """Whether the daemon holds `reference` built from exactly this content."""
    import docker.errors

    try:
        return docker_client.images.get(reference).id == docker_client.images.get(content_tag(reference, content_hash)).id
    except docker.errors.ImageNotFound:
        return False


def mark_content(docker_client, reference: str, content_hash: str) -> None:
    """Tag `reference` with its content; earlier content tags of the same image go (their images with them)."""
    current = content_tag(reference, content_hash)
    prefix = current.rsplit("-", 1)[0] + "-"
    for image in docker_client.images.list(name=CONTENT_REPOSITORY):
        for tag in image.tags:
            if tag.startswith(prefix) and tag != current:
                docker_client.images.remove(tag)
    repository, tag = current.split(":")
    docker_client.images.get(reference).tag(repository, tag)


def load_images(docker_client, images: Iterable[BuiltImage], log: Log = print) -> None:
    """Make sure a Docker daemon has these images (from their cached archives when it lacks them)."""
    for image in images:
        if not has_image(docker_client, image.reference, image.content_hash):
            log(f"loading {image.reference} from {image.archive}")
            with open(image.archive, "rb") as handle:
                docker_client.images.load(handle)
            mark_content(docker_client, image.reference, image.content_hash)


def mmdebstrap_rootfs(packages: tuple[str, ...], target: Path, log: Log = print) -> None:
    """A Debian root file system with `packages` (and what they depend on) as a tarball."""
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", f"--include={','.join(packages)}",
            "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--customize-hook=chroot \"$1\" sh -c 'rm -rf /var/lib/apt/lists/* /var/cache/apt/*'",
            BASE_SUITE, str(target)]
    log(f"  mmdebstrap {BASE_SUITE} + {', '.join(packages)}")
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")


def _debian_inputs(packages: tuple[str, ...]) -> Callable[[], list[str]]:
    return lambda: [_mmdebstrap_version(), BASE_SUITE, *packages]


def _build_base(builder: Builder, reference: str) -> None:
    with tempfile.TemporaryDirectory(prefix="llmt-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        mmdebstrap_rootfs(BASE_PACKAGES, rootfs, log=builder.log)
        builder.import_rootfs(rootfs, reference, builder.hashes["base"],
                              ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               'CMD ["python3"]'])


def _service_context(name: str, *extra: str) -> BuildContext:
    """A Dockerfile of tenantctl/images/ (and files it copies), built on the Debian base with apt."""
    context = BuildContext()
    context.add("Dockerfile", IMAGES_DIR / f"{name}.Dockerfile")
    for file_name in extra:
        context.add(file_name, IMAGES_DIR / file_name)
    return context


def redis_context() -> BuildContext:
    return _service_context("redis")


def postgres_context() -> BuildContext:
    return _service_context("postgres", "postgres-entrypoint.sh")


def alertmanager_context() -> BuildContext:
    return _service_context("alertmanager")


def _build_service(context: Callable[[], BuildContext], name: str) -> Callable[[Builder, str], None]:
    def build(builder: Builder, reference: str) -> None:
        builder.docker_build(context(), reference, builder.hashes[name], {"BASE": RECIPES["base"].reference})
    return build


def _prometheus_binary() -> Path:
    return toolchain.binary(toolchain.PROMETHEUS)


def _build_prometheus(builder: Builder, reference: str) -> None:
    """The Go-built static binary alone, laid out as the official image (/bin/prometheus, user nobody)."""
    with tempfile.TemporaryDirectory(prefix="llmt-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        with tarfile.open(rootfs, "w") as archive:
            _add_bytes(archive, "etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
                                              b"nobody:x:65534:65534:nobody:/home:/sbin/nologin\n")
            _add_bytes(archive, "etc/group", b"root:x:0:\nnobody:x:65534:\n")
            for directory, mode in (("etc/prometheus", 0o755), ("prometheus", 0o777), ("tmp", 0o1777)):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, mode
                archive.addfile(info)
            archive.add(_prometheus_binary(), arcname="bin/prometheus")
        builder.import_rootfs(rootfs, reference, builder.hashes["prometheus"], [
            'ENTRYPOINT ["/bin/prometheus"]', "USER 65534", "WORKDIR /prometheus", "EXPOSE 9090",
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'])


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))


RECIPES: dict[str, ImageRecipe] = {recipe.name: recipe for recipe in (
    ImageRecipe("base", f"{LOCAL_REGISTRY}/debian-python:{BASE_SUITE}", "Debian with Python 3.11 (mmdebstrap)",
                _debian_inputs(BASE_PACKAGES), _build_base),
    ImageRecipe("platform", PLATFORM_IMAGE, "gateway and tenant proxy (Dockerfile)",
                lambda: [platform_context().digest()], _build_service(platform_context, "platform"), needs=("base",)),
    ImageRecipe("model-server", MODEL_SERVER_IMAGE, "llama.cpp server: SmolLM2 chat, all-MiniLM-L6-v2 embeddings",
                lambda: [model_server_context().digest()], _build_service(model_server_context, "model-server"),
                needs=("base",)),
    ImageRecipe("prometheus", f"{LOCAL_REGISTRY}/prometheus:{toolchain.PROMETHEUS.version}",
                "Prometheus with Kubernetes service discovery (Go-built)",
                lambda: [_file_digest(_prometheus_binary())], _build_prometheus),
    ImageRecipe("redis", f"{LOCAL_REGISTRY}/redis:{BASE_SUITE}", "Debian's redis-server",
                lambda: [redis_context().digest()], _build_service(redis_context, "redis"), needs=("base",)),
    ImageRecipe("postgres", f"{LOCAL_REGISTRY}/postgres:15-{BASE_SUITE}", "Debian's PostgreSQL 15",
                lambda: [postgres_context().digest()], _build_service(postgres_context, "postgres"), needs=("base",)),
    ImageRecipe("alertmanager", f"{LOCAL_REGISTRY}/alertmanager:0.25-{BASE_SUITE}", "Debian's Alertmanager 0.25",
                lambda: [alertmanager_context().digest()], _build_service(alertmanager_context, "alertmanager"),
                needs=("base",)),
)}
DEPLOYED = ("platform", "model-server", "prometheus", "redis", "postgres", "alertmanager")


def content_hash(name: str, hashes: dict[str, str]) -> str:
    recipe = RECIPES[name]
    return _sha256(name, *(hashes[need] for need in recipe.needs), *recipe.hash_inputs())


def planned(names: Iterable[str] = DEPLOYED) -> dict[str, BuiltImage]:
    """Every image (with what it needs) and its archive path, without building anything."""
    hashes: dict[str, str] = {}
    images: dict[str, BuiltImage] = {}
    for name in _with_needs(names):
        hashes[name] = content_hash(name, hashes)
        images[name] = BuiltImage(name, RECIPES[name].reference, hashes[name], _archive(name, hashes[name]))
    return images


def _with_needs(names: Iterable[str]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        for need in RECIPES[name].needs:
            visit(need)
        if name not in ordered:
            ordered.append(name)

    for name in names:
        if name not in RECIPES:
            raise ImageBuildError(f"unknown image '{name}' (known: {', '.join(RECIPES)})")
        visit(name)
    return ordered


def ensure_images(names: Iterable[str] = DEPLOYED, *, force: bool = False, log: Log = print,
                  docker_host: str | None = None) -> dict[str, BuiltImage]:
    """Build whatever is not cached (or everything with force); returns the deployed images by name."""
    wanted = list(names)
    images = planned(wanted)
    # `force` rebuilds the images asked for, not the bases they build on.
    missing = [name for name, image in images.items() if (force and name in wanted) or not image.cached]
    if missing:
        builder = Builder(log=log, docker_host=docker_host)
        builder.hashes = {name: image.content_hash for name, image in images.items()}
        try:
            for name, image in images.items():
                if name not in missing:
                    if any(name in RECIPES[other].needs for other in missing):
                        builder.load(image)  # a base a missing image builds on
                    continue
                started = time.monotonic()
                log(f"building {image.reference} ({RECIPES[name].describe})")
                if force or not builder.has_image(image.reference, image.content_hash):
                    RECIPES[name].build(builder, image.reference)
                    mark_content(builder.client, image.reference, image.content_hash)
                builder.save(image.reference, image.archive)
                builder.timings[name] = time.monotonic() - started
                log(f"built {image.reference} in {builder.timings[name]:.0f}s -> {image.archive}")
                _prune_archives(name, image.archive)
            _record_build_times(builder.timings)
            _prune_daemon(builder)
        finally:
            builder.close()
    return {name: images[name] for name in wanted}


def _prune_archives(name: str, current: Path) -> None:
    """Keep the newest KEEP_ARCHIVES archives of an image: every code change makes a new one."""
    archives = sorted(images_dir().glob(f"{name}-" + "?" * 16 + ".tar"), key=lambda path: path.stat().st_mtime,
                      reverse=True)
    for stale in [path for path in archives if path != current][KEEP_ARCHIVES - 1:]:
        stale.unlink(missing_ok=True)


def _prune_daemon(builder: Builder) -> None:
    """Images replaced under the same tag become dangling: drop them from the daemon's cache."""
    try:
        builder.client.images.prune(filters={"dangling": True})
    except Exception as error:  # noqa: BLE001 - only housekeeping
        builder.log(f"could not prune dangling images: {error}")


def build_times_file() -> Path:
    return images_dir() / "build-times.json"


def _record_build_times(timings: dict[str, float]) -> None:
    if not timings:
        return
    try:
        recorded = json.loads(build_times_file().read_text())
    except (OSError, ValueError):
        recorded = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    recorded.update({name: {"seconds": round(seconds, 1), "built_at": stamp} for name, seconds in timings.items()})
    build_times_file().parent.mkdir(parents=True, exist_ok=True)
    build_times_file().write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")


def terraform_variables(images: dict[str, BuiltImage] | None = None) -> dict:
    """The platform root's variables that deploy the images built here (the tenant roots take
    `proxy_image` = the platform image)."""
    images = images or planned()
    return {
        "platform_image": images["platform"].reference,
        "model_pool": {"server": "cpu"},
        "cpu_model_server": {"image": images["model-server"].reference},
        "prometheus": {"image": images["prometheus"].reference},
        "redis": {"image": images["redis"].reference},
        "ledger": {"postgres_image": images["postgres"].reference},
        "alertmanager": {"image": images["alertmanager"].reference},
        "grafana": {"enabled": False},
        "kube_state_metrics": {"enabled": False},
    }


__all__ = ["BuiltImage", "DockerDaemon", "DockerUnavailable", "ImageBuildError", "RECIPES", "DEPLOYED",
           "ensure_images", "load_images", "planned", "terraform_variables"]
