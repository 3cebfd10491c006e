"""How each service of the platform is started as a process: model servers, gateway, proxy, Prometheus,
Alertmanager, Redis (and PostgreSQL for the ledger in tests and benchmarks).

Local mode and the test fixtures both build their processes here, so what the
tests start is exactly what `tenantctl up` starts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tenantctl.local import model_cache
from tenantctl.processes import ManagedProcess, write_private_json, write_private_text

# The chat model local mode always has (SmolLM2-135M-Instruct), by the name it is served under.
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
# llama-cpp-python's server has no /health, and its /v1/models waits for the model lock
# (busy during a generation). The server only listens once the model is loaded, so its
# lock-free OpenAPI document is a faithful liveness signal.
EMBEDDED_MODEL_HEALTH_PATH = "/openapi.json"
MODEL_KINDS = ("chat", "embedding")
# BERT's context is 512 tokens; a batch of inputs is decoded together up to n_batch tokens.
EMBEDDING_CONTEXT = 512


class LauncherError(RuntimeError):
    pass


def catalogue_model_server(
    name: str,
    source: str,
    served_name: str,
    port: int,
    log_dir: Path,
    *,
    kind: str = "chat",
    context_length: int = 2048,
    host: str = "127.0.0.1",
    threads: int | None = None,
    api_key: str | None = None,
) -> ManagedProcess:
    """The CPU model server (`model-<name>`) for a catalogue entry of engine `cpu`: the GGUF file `source` of
    the model cache (tenantctl/local/model_cache.py), served as `served_name`. A chat model gets
    `context_length` tokens of context; an embedding model answers `/v1/embeddings`, with at most 512.
    With `api_key`, its OpenAI routes need that key."""
    if kind not in MODEL_KINDS:
        raise LauncherError(f"model {name}: kind {kind!r} is not one of {', '.join(MODEL_KINDS)}")
    try:
        model_path = model_cache.model_file(source)
    except model_cache.ModelCacheError as error:
        raise LauncherError(f"model {name}: {error}") from None
    if kind == "embedding":
        extra_args = ["--embedding", "true", "--n_ctx", str(min(context_length, EMBEDDING_CONTEXT)), "--n_batch", "512"]
    else:
        extra_args = ["--n_ctx", str(context_length)]
    return _llama_server(
        f"model-{name}",
        model_path,
        served_name,
        port,
        log_dir,
        extra_args,
        host=host,
        threads=threads,
        api_key=api_key,
    )


def _llama_server(
    name: str,
    model_path: Path,
    alias: str,
    port: int,
    log_dir: Path,
    extra_args: list[str],
    *,
    host: str,
    threads: int | None,
    api_key: str | None,
) -> ManagedProcess:
    if importlib.util.find_spec("llama_cpp") is None:
        raise LauncherError("llama-cpp-python is not installed: run ./scripts/setup")
    if api_key is not None:  # in a 0600 file, not on the command line (which every local user can read)
        extra_args = [*extra_args, "--api_key_file", str(write_private_text(log_dir / f"{name}.key", api_key))]
    argv = [
        sys.executable,
        "-m",
        "tenantctl.local.model_server",  # llama_cpp.server plus /metrics
        "--model",
        str(model_path),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        # By default a new request cancels the one in progress; queue requests instead.
        "--interrupt_requests",
        "false",
        "--n_threads",
        str(threads or max(1, os.cpu_count() or 1)),
        *extra_args,
    ]
    return ManagedProcess(
        name=name,
        argv=argv,
        log_path=log_dir / f"{name}.log",
        health_url=f"http://{host}:{port}{EMBEDDED_MODEL_HEALTH_PATH}",
    )


def _gunicorn(
    name: str,
    factory: str,
    port: int,
    log_dir: Path,
    env: dict[str, str],
    *,
    host: str,
    workers: int,
    health_path: str,
    settings: str = "llm_common.gunicorn_conf",
) -> ManagedProcess:
    metrics_dir = log_dir / "metrics" / name
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        f"python:{settings}",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        factory,
    ]
    return ManagedProcess(
        name=name,
        argv=argv,
        log_path=log_dir / f"{name}.log",
        health_url=f"http://{host}:{port}{health_path}",
        env={**_inherited_environment(), **env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )


def _inherited_environment() -> dict[str, str]:
    """Our environment minus backend settings: a service gets OPENAI_* only when asked to."""
    return {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}


def gateway(
    config: dict,
    port: int,
    run_dir: Path,
    *,
    host: str = "127.0.0.1",
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
) -> ManagedProcess:
    config_path = write_private_json(run_dir / "gateway.json", config)
    return _gunicorn(
        "gateway",
        "llm_gateway:build_from_environment()",
        port,
        run_dir,
        {"LLM_GATEWAY_CONFIG": str(config_path), **(extra_env or {})},
        host=host,
        workers=workers,
        health_path="/healthz",
        settings="llm_gateway.gunicorn_conf",
    )


def tenant_proxy(
    config: dict, port: int, run_dir: Path, *, host: str = "127.0.0.1", workers: int = 2
) -> ManagedProcess:
    name = f"proxy-{config['tenant']}"
    config_path = write_private_json(run_dir / f"{name}.json", config)
    return _gunicorn(
        name,
        "app:build_from_environment()",
        port,
        run_dir,
        {"TENANT_PROXY_CONFIG": str(config_path)},
        host=host,
        workers=workers,
        health_path="/healthz",
    )


def redis_server(port: int, run_dir: Path, *, password: str, host: str = "127.0.0.1") -> ManagedProcess:
    """Debian's redis-server for rate limits and budget counters: loopback only, nothing on disk
    (the counters are rebuilt from the ledger when Redis starts empty), and `password` required
    (`requirepass`, in a 0600 config file: the command line is readable by every local user)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LauncherError("redis-server is not installed: run ./scripts/setup (Debian package redis-server)")
    config = write_private_text(
        run_dir / "redis.conf",
        "\n".join(
            [
                f"port {port}",
                f"bind {host}",
                'save ""',
                "appendonly no",
                f"dir {json.dumps(str(run_dir.resolve()))}",
                "protected-mode yes",
                f"requirepass {password}",
                "",
            ]
        ),
    )
    url = redis_url(host, port, password)
    return ManagedProcess(
        name="redis",
        argv=[binary, str(config)],
        log_path=run_dir / "redis.log",
        health_url=redis_url(host, port),
        ready=lambda: _redis_answers(url),
    )


def redis_url(host: str, port: int, password: str | None = None) -> str:
    credentials = f":{password}@" if password else ""
    return f"redis://{credentials}{host}:{port}/0"


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_server(port: int, base_dir: Path, *, host: str = "127.0.0.1") -> ManagedProcess:
    """A throwaway PostgreSQL cluster in `base_dir` (created with initdb on first use), for the
    ledger in tests and benchmarks: trust authentication on loopback, user `postgres`.

    As root it runs as the `postgres` system user, since PostgreSQL refuses to run as root;
    `base_dir` is then given to that user, and its parents must be searchable by it
    (e.g. a `tempfile.mkdtemp()` directory directly under /tmp).
    """
    bin_dir = next((d for d in POSTGRES_BIN_DIRS if (d / "postgres").exists()), None)
    if bin_dir is None:
        raise LauncherError("PostgreSQL is not installed: run ./scripts/setup (Debian package postgresql)")
    user = "postgres" if os.geteuid() == 0 else None
    data_dir = base_dir / "data"
    base_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(base_dir, user, user)
    if not data_dir.exists():
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user=user,
            capture_output=True,
            text=True,
            cwd=base_dir,
        )
        if initdb.returncode != 0:
            raise LauncherError(
                f"initdb {data_dir} failed (every parent directory must be searchable by "
                f"{user or 'us'}):\n{initdb.stderr.strip()}"
            )
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-k",
        str(base_dir),
        "-c",
        f"listen_addresses={host}",
    ]
    url = postgres_url(host, port)
    return ManagedProcess(
        name="postgres",
        argv=argv,
        log_path=base_dir.parent / f"{base_dir.name}-postgres.log",
        health_url=url,
        ready=lambda: _postgres_answers(url),
        user=user,
        cwd=base_dir,
    )


def postgres_url(host: str, port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres@{host}:{port}/{database}"


def _postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.Error:
        return False


def prometheus(config: dict, port: int, run_dir: Path, *, host: str = "127.0.0.1") -> ManagedProcess:
    """Debian's Prometheus with our generated config; its data lives in the run directory."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise LauncherError("prometheus is not installed: run ./scripts/setup (Debian package prometheus)")
    config_path = write_private_text(run_dir / "prometheus.yml", yaml.safe_dump(config, sort_keys=False))
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
        f"--web.listen-address={host}:{port}",
        "--storage.tsdb.retention.time=35d",  # the budget alert looks back 30 days
        "--web.enable-lifecycle",  # POST /-/reload after editing the rules
    ]
    return ManagedProcess(
        name="prometheus", argv=argv, log_path=run_dir / "prometheus.log", health_url=f"http://{host}:{port}/-/ready"
    )


def alertmanager_binary() -> str:
    """Debian's prometheus-alertmanager (the binary is named so there; `alertmanager` elsewhere)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise LauncherError(
            "Alertmanager is not installed: run ./scripts/setup (Debian package prometheus-alertmanager)"
        )
    return binary


def alertmanager(config: dict, port: int, run_dir: Path, *, host: str = "127.0.0.1") -> ManagedProcess:
    """Debian's Alertmanager with a rendered config (alert_config_sync/routing.py); its silences and
    notification log live in the run directory. One instance: clustering (gossip) is off."""
    config_path = write_private_text(run_dir / "alertmanager.yml", yaml.safe_dump(config, sort_keys=False))
    argv = [
        alertmanager_binary(),
        f"--config.file={config_path}",
        f"--storage.path={run_dir / 'alertmanager-data'}",
        f"--web.listen-address={host}:{port}",
        "--cluster.listen-address=",
    ]
    return ManagedProcess(
        name="alertmanager",
        argv=argv,
        log_path=run_dir / "alertmanager.log",
        health_url=f"http://{host}:{port}/-/ready",
    )
