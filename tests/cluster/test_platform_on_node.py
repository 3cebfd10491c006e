"""The platform and two tenants on a real node: `terraform apply` (with wait_for_rollout) to `POST /ask`.

Everything here runs for real: the images `tenantctl images build` made, imported into the node's
containerd; Pods scheduled by kube-scheduler and run by the kubelet; Services through kube-proxy;
names through CoreDNS; NetworkPolicies enforced. `/ask` goes the ingress path: from the host to a
relay Pod in the ingress controller's namespace, then through the tenant's Service. What a Pod may
reach is tried from probe Pods (tenantctl/cluster/in_cluster.py) in the namespace, and with the labels,
whose rights are tested.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenantctl.cluster.in_cluster import Probe
from tenantctl.cluster.platform import NAMESPACE
from tenantctl.commands.main import main
from tenantctl.terraform.runner import TerraformError
from tests.helpers import prometheus_query, wait_for

# The first test also waits for the node, the images' import and the platform's rollout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

TENANTS = {"acme-corp": "acme", "closed-ai": "closed ai"}
# The default catalogue's self-hosted models, each its own Deployment and Service `model-<name>`.
MODEL_SERVERS = [f"model-{name}" for name in ("smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2")]
COMPANY_QUESTION = {"question": "Which company do you work for?", "temperature": 0, "seed": 7, "max_tokens": 48}
PROXY_LABELS = {"app.kubernetes.io/name": "tenant-proxy", "app.kubernetes.io/instance": "acme-corp"}
# The model Pod test's traffic: how long at most, and the pause after a refusal (it comes back at once).
TRAFFIC_SECONDS, REFUSED_PACE_SECONDS = 600, 0.5


def answer_of(reply: httpx.Response) -> dict:
    assert reply.status_code == 200, reply.text
    return reply.json()


def streamed_events(reply: httpx.Response) -> list[dict]:
    assert reply.status_code == 200, reply.text
    return [
        json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"
    ]


def pod_ips(core: client.CoreV1Api, namespace: str, app: str) -> list[str]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={app}").items
    return [pod.status.pod_ip for pod in pods if pod.status.pod_ip and pod.status.phase == "Running"]


def test_every_deployment_and_statefulset_is_ready(node_platform):
    apps = client.AppsV1Api(node_platform.api())
    for namespace in (NAMESPACE, *TENANTS):
        node_platform.wait_all_ready(namespace)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items}
    assert {"llm-gateway", *MODEL_SERVERS, "prometheus", "alertmanager", "llm-redis"} <= deployments
    assert [s.metadata.name for s in apps.list_namespaced_stateful_set(NAMESPACE).items] == ["llm-ledger"]


@pytest.mark.parametrize("tenant", TENANTS)
def test_each_tenant_answers_through_its_service_with_its_own_prompt(node_platform, tenant):
    plain = answer_of(node_platform.ask(tenant, COMPANY_QUESTION))
    assert plain["tenant"] == tenant
    assert TENANTS[tenant] in plain["answer"].lower(), plain["answer"]

    events = streamed_events(node_platform.ask(tenant, {**COMPANY_QUESTION, "stream": True}))
    assert events[-1]["type"] == "done"
    streamed = "".join(event["content"] for event in events if event["type"] == "delta")
    assert TENANTS[tenant] in streamed.lower(), streamed


def test_documents_then_a_grounded_answer_with_a_citation(node_platform):
    ingest = httpx.post(
        node_platform.tenant_url("acme-corp") + "/documents",
        timeout=180,
        headers=node_platform.admin_headers,
        json={
            "title": "Vacation policy",
            "text": "Every employee of Acme Corp gets 28 days of paid vacation each year.",
        },
    )
    assert ingest.status_code == 201, ingest.text
    assert ingest.json()["embedding_model"] == "all-minilm-l6-v2"
    citations = answer_of(
        node_platform.ask("acme-corp", {"question": "How many vacation days do I get?", "temperature": 0})
    )["citations"]
    assert citations and citations[0]["title"] == "Vacation policy"


def test_a_prompt_change_rolls_the_proxy_and_the_next_answer_follows_it(node_platform):
    """The new prompt reaches a running tenant by `terraform apply` alone; the document volume
    (ReadWriteOnce) goes with the proxy through the Recreate rollout."""
    tenant = "closed-ai"
    spec_file = node_platform.tenants_dir / tenant / "tenant.json"
    original = spec_file.read_text()
    core = node_platform.core
    proxies = "app.kubernetes.io/name=tenant-proxy"
    before = {pod.metadata.uid for pod in core.list_namespaced_pod(tenant, label_selector=proxies).items}
    documents_url = node_platform.tenant_url(tenant) + "/documents"
    ingest = httpx.post(
        documents_url,
        timeout=180,
        headers=node_platform.admin_headers,
        json={"title": "Claims hotline", "text": "Closed AI Insurance claims are filed by calling 555-0100."},
    )
    assert ingest.status_code == 201, ingest.text
    spec = json.loads(original)
    spec["system_prompt"] = (
        "You are Max, the assistant of Globex Shipping, a shipping company. You work for "
        "Globex Shipping. Always say you work for Globex Shipping when asked about your employer."
    )
    spec_file.write_text(json.dumps(spec))
    try:
        node_platform.apply_tenant(tenant)

        def rolled() -> bool:
            pods = core.list_namespaced_pod(tenant, label_selector=proxies).items
            return bool(pods) and all(
                pod.metadata.uid not in before
                and pod.metadata.deletion_timestamp is None
                and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                for pod in pods
            )

        wait_for(rolled, timeout=300, what="the proxy rolled to new Pods")  # Recreate: old Pod gone first
        answer = answer_of(node_platform.ask(tenant, COMPANY_QUESTION))
        assert "globex" in answer["answer"].lower(), answer["answer"]
        assert "Claims hotline" in httpx.get(documents_url, timeout=60).text  # the volume came along
    finally:
        spec_file.write_text(original)
        node_platform.apply_tenant(tenant)


def test_network_policies_are_enforced(node_platform):
    """A Pod in acme-corp (with the proxy's own labels, so its egress to the gateway is allowed)
    reaches the gateway and DNS, and nothing else: not closed-ai's proxy, not Redis or PostgreSQL,
    not the model Pods. From the platform's namespace only Prometheus may reach a proxy."""
    core = node_platform.core
    closed_ai_proxy = pod_ips(core, "closed-ai", "tenant-proxy")[0]
    model_pods = [address for server in MODEL_SERVERS for address in pod_ips(core, NAMESPACE, server)]
    assert len(model_pods) == len(MODEL_SERVERS)
    # What the Pod may reach is tried first (until the enforcer knows the new Pod), then what it may not.
    probe = (
        Probe()
        .connect("gateway", f"llm-gateway.{NAMESPACE}.svc.cluster.local", 8080, retry_seconds=60)  # needs DNS too
        .connect("closed-ai-proxy-service", "tenant-proxy.closed-ai.svc.cluster.local", 8080)
        .connect("closed-ai-proxy-pod", closed_ai_proxy, 8080)
        .connect("redis", f"llm-redis.{NAMESPACE}.svc.cluster.local", 6379)
        .connect("postgres", f"llm-ledger.{NAMESPACE}.svc.cluster.local", 5432)
    )
    for index, address in enumerate(model_pods):
        probe.connect(f"model-pod-{index}", address, 8000)
    results = node_platform.pods().run("acme-corp", probe, labels=PROXY_LABELS)
    assert results["gateway"]["connected"] is True, results["gateway"]
    denied = {name: result for name, result in results.items() if name != "gateway"}
    assert all(result["connected"] is False for result in denied.values()), denied

    acme_proxy = pod_ips(core, "acme-corp", "tenant-proxy")[0]
    as_gateway = node_platform.pods().run(
        NAMESPACE,
        Probe()
        .connect("redis", f"llm-redis.{NAMESPACE}.svc.cluster.local", 6379, retry_seconds=60)
        .connect("proxy", acme_proxy, 8080),
        labels={"app.kubernetes.io/name": "llm-gateway"},
    )
    assert as_gateway["redis"]["connected"] is True, as_gateway
    assert as_gateway["proxy"]["connected"] is False, as_gateway
    as_prometheus = node_platform.pods().run(
        NAMESPACE,
        Probe().connect("proxy", acme_proxy, 8080, retry_seconds=60),
        labels={"app.kubernetes.io/name": "prometheus"},
    )
    assert as_prometheus["proxy"]["connected"] is True, as_prometheus


def test_prometheus_discovers_everything_and_labels_tenants_by_namespace(node_platform):
    prometheus = node_platform.prometheus_url()
    wait_for(
        lambda: (
            {(s["metric"].get("namespace"), s["metric"].get("app")) for s in prometheus_query(prometheus, "up == 1")}
            >= {
                ("acme-corp", "tenant-proxy"),
                ("closed-ai", "tenant-proxy"),
                (NAMESPACE, "llm-gateway"),
                *((NAMESPACE, server) for server in MODEL_SERVERS),
            }
        ),
        timeout=120,
        what="every target up",
    )
    for tenant in TENANTS:
        answer_of(node_platform.ask(tenant, {"question": "Hello", "max_tokens": 8}))
    wait_for(
        lambda: (
            {
                s["metric"]["tenant"]
                for s in prometheus_query(
                    prometheus, 'sum by (tenant) (tenant_proxy_requests_total{route="/ask", status="200"}) > 0'
                )
            }
            == set(TENANTS)
        ),
        timeout=60,
        what="per-tenant request counts",
    )


def test_a_pod_cannot_publish_series_in_another_tenants_name(node_platform):
    """A Pod in acme-corp labelled tenant=closed-ai, whose metrics say tenant="closed-ai": Prometheus
    files its series under acme-corp, the namespace it runs in."""
    prometheus = node_platform.prometheus_url()
    core = node_platform.core
    name = "impostor"
    exporter = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        '        body = (b\'tenant_proxy_requests_total{route="/ask",status="200",\'\n'
        "                b'tenant=\"closed-ai\"} 1000\\n')\n"
        "        self.send_response(200 if self.path == '/metrics' else 404); self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "http.server.HTTPServer(('', 8080), H).serve_forever()\n"
    )
    pod = node_platform.pods().pod(
        name,
        Probe(),
        {**PROXY_LABELS, "tenant": "closed-ai"},
        {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"},
    )
    pod.spec.restart_policy = "Always"
    pod.spec.containers[0].command = ["python3", "-c", exporter]
    # Never Ready, so the tenant's Service never sends it a request; Prometheus scrapes it anyway.
    pod.spec.containers[0].readiness_probe = client.V1Probe(
        http_get=client.V1HTTPGetAction(path="/never-ready", port=8080), period_seconds=30
    )
    core.create_namespaced_pod("acme-corp", pod)
    try:
        wait_for(
            lambda: prometheus_query(prometheus, f'tenant_proxy_requests_total{{pod="{name}"}}'),
            timeout=120,
            what="the impostor scraped",
        )
        series = prometheus_query(prometheus, f'tenant_proxy_requests_total{{pod="{name}"}}')
        assert {s["metric"]["tenant"] for s in series} == {"acme-corp"}
        assert all("exported_tenant" not in s["metric"] for s in series)
        assert prometheus_query(prometheus, f'tenant_proxy_requests_total{{tenant="closed-ai", pod="{name}"}}') == []
    finally:
        core.delete_namespaced_pod(name, "acme-corp", grace_period_seconds=0)


def test_killing_the_model_pod_during_traffic(node_platform):
    """Each request is answered or refused with a clear 503; the gateway stays Ready (its readiness
    is not a backend's health) and serves again once the new model Pod is Ready, without a restart."""
    core = node_platform.core
    gateways = "app.kubernetes.io/name=llm-gateway"
    gateway_before = {
        (p.metadata.uid, p.status.container_statuses[0].restart_count)
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=gateways).items
    }
    replies: list[httpx.Response] = []
    unanswered: list[str] = []  # requests that got no HTTP answer at all (kept, so the thread never dies of one)
    stop = threading.Event()

    def traffic() -> None:
        """Until stopped, or for TRAFFIC_SECONDS at most. Bounded by time, not by a count: refusals during
        the outage come back in milliseconds and would use up any count before the new model Pod is Ready."""
        deadline = time.monotonic() + TRAFFIC_SECONDS
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                reply = node_platform.ask("acme-corp", {"question": "Count to three.", "max_tokens": 12}, timeout=60)
            except httpx.HTTPError as error:
                unanswered.append(f"{type(error).__name__}: {error}")
                stop.wait(REFUSED_PACE_SECONDS)
                continue
            replies.append(reply)
            if reply.status_code != 200:
                stop.wait(REFUSED_PACE_SECONDS)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        wait_for(lambda: any(reply.status_code == 200 for reply in replies), timeout=120, what="traffic answered")
        # acme-corp's default model (its fallback, gpt-4o-mini, is disabled without an OpenAI key).
        model_pod = core.list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/name=model-smollm2-135m-instruct"
        ).items[0]
        core.delete_namespaced_pod(model_pod.metadata.name, NAMESPACE, grace_period_seconds=0)
        wait_for(lambda: any(reply.status_code != 200 for reply in replies), timeout=120, what="the outage seen")
        apps = client.AppsV1Api(node_platform.api())
        assert apps.read_namespaced_deployment("llm-gateway", NAMESPACE).status.ready_replicas == 1
        node_platform.wait_all_ready(NAMESPACE)
        wait_for(lambda: replies[-1].status_code == 200, timeout=180, what="answers again from the new model Pod")
    finally:
        stop.set()
        sender.join()
        print(f"{len(replies)} replies; requests with no answer: {unanswered}")  # shown if the test fails

    assert unanswered == []  # every request answered, or refused with a clear error, never left hanging
    refused = [r.text for r in replies if r.status_code != 200]
    assert {reply.status_code for reply in replies} <= {200, 502, 503}, refused
    for reply in replies:
        if reply.status_code != 200:
            assert reply.json()["error"]["message"], reply.text  # OpenAI-shaped, saying what failed
    gateway_after = {
        (p.metadata.uid, p.status.container_statuses[0].restart_count)
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=gateways).items
    }
    assert gateway_after == gateway_before  # same Pods, no restart


def test_the_gateway_waits_for_its_database_instead_of_crash_looping(node_platform):
    core = node_platform.core
    apps = client.AppsV1Api(node_platform.api())
    apps.patch_namespaced_stateful_set_scale("llm-ledger", NAMESPACE, {"spec": {"replicas": 0}})
    try:
        wait_for(
            lambda: not core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=llm-ledger").items,
            timeout=120,
            what="PostgreSQL gone",
        )
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=llm-gateway").items:
            core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)

        def new_gateway():
            pods = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=llm-gateway").items
            running = [
                p
                for p in pods
                if p.metadata.deletion_timestamp is None
                and p.status.phase == "Running"
                and p.status.container_statuses
                and p.status.container_statuses[0].started
            ]
            return running[0] if running else None

        started = wait_for(new_gateway, timeout=180, what="a new gateway Pod running")

        # The container has started; its server listens a moment later (the probe tries to connect for 60 s).
        readiness = node_platform.pods().run(
            NAMESPACE, Probe().request("ready", "GET", f"http://{started.status.pod_ip}:8080/readyz", timeout=10)
        )["ready"]
        assert readiness.get("status") == 503, readiness
        assert json.loads(readiness["text"])["ledger_connected"] is False
    finally:
        apps.patch_namespaced_stateful_set_scale("llm-ledger", NAMESPACE, {"spec": {"replicas": 1}})
    node_platform.wait_all_ready(NAMESPACE)
    gateway = wait_for(new_gateway, timeout=60, what="the gateway")
    assert gateway.metadata.uid == started.metadata.uid
    assert gateway.status.container_statuses[0].restart_count == 0


def test_destroying_a_tenant_removes_it_and_the_gateway_refuses_its_key(node_platform):
    spec = json.loads((node_platform.tenants_dir / "acme-corp" / "tenant.json").read_text())
    spec.update(
        {
            "name": "initech",
            "display_name": "Initech",
            "local_port": None,
            "system_prompt": "You are the assistant of Initech. You work for Initech.",
        }
    )
    node_platform.onboard("initech", spec)
    node_platform.apply_tenant("initech")
    assert answer_of(node_platform.ask("initech", {"question": "Hello", "max_tokens": 8}))["tenant"] == "initech"
    key = node_platform.gateway_key("initech")

    node_platform.tenant_terraform("initech").destroy()
    with pytest.raises(ApiException) as gone:
        node_platform.core.read_namespace("initech")
    assert gone.value.status == 404
    custom = client.CustomObjectsApi(node_platform.api())
    with pytest.raises(ApiException) as route_gone:
        custom.get_namespaced_custom_object("llm-tenants.io", "v1alpha1", NAMESPACE, "tenantroutes", "initech")
    assert route_gone.value.status == 404

    gateway = f"llm-gateway.{NAMESPACE}.svc.cluster.local"
    replies = []

    def refused() -> bool:
        replies.append(
            node_platform.pods().run(
                NAMESPACE,
                Probe().request(
                    "chat",
                    "POST",
                    f"http://{gateway}:8080/v1/chat/completions",
                    json={"model": "any", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                ),
            )["chat"]
        )
        return replies[-1].get("status") == 401

    try:
        wait_for(refused, timeout=90, what="the destroyed tenant's key refused")
    except AssertionError as error:
        raise AssertionError(f"{error}; the last replies: {replies[-3:]}") from None


def gateway_chat_from_a_pod(node_platform, tenant: str, model: str) -> dict:
    """A chat completion asking `model`, sent to the gateway with the tenant's key from a Pod in its namespace."""
    return node_platform.pods().run(
        NAMESPACE,
        Probe().request(
            "chat",
            "POST",
            f"http://llm-gateway.{NAMESPACE}.svc.cluster.local:8080/v1/chat/completions",
            json={"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {node_platform.gateway_key(tenant)}"},
            timeout=120,
        ),
    )["chat"]


def published_models(node_platform) -> dict:
    return client.CustomObjectsApi(node_platform.api()).get_namespaced_custom_object(
        "llm-tenants.io", "v1alpha1", NAMESPACE, "modelcatalogues", "platform"
    )["spec"]


def test_a_tenant_naming_a_model_the_platform_does_not_serve_is_refused_at_its_apply(node_platform):
    """The API server's admission policy refuses the tenant's route with the catalogue's answer: the tenant, the
    unknown model and what is served. Nothing of the tenant changes."""
    tenant = "closed-ai"
    spec_file = node_platform.tenants_dir / tenant / "tenant.json"
    original = spec_file.read_text()
    spec_file.write_text(json.dumps({**json.loads(original), "models": {"allowed": ["smollm2", "mixtral-8x7b"]}}))
    try:
        with pytest.raises(TerraformError) as refused:
            node_platform.apply_tenant(tenant)
    finally:
        spec_file.write_text(original)
    served = ", ".join(published_models(node_platform)["served"])
    assert "gemma3" in served and "smollm2-135m-instruct" in served
    assert f"tenant {tenant}: models.allowed: mixtral-8x7b is not served by the platform; served: {served}" in str(
        refused.value
    ), str(refused.value)
    node_platform.apply_tenant(tenant)  # the spec as it was (Terraform's state keeps what the provider tried)
    assert answer_of(node_platform.ask(tenant, {"question": "Hello", "max_tokens": 8}))["tenant"] == tenant


def test_a_platform_apply_removing_a_model_a_tenant_names_is_refused_naming_the_tenant(node_platform):
    """acme-corp names gemma-3-270m: a catalogue without it is refused at the platform's apply, before its
    server or the gateway's config change; the model keeps answering."""
    platform_dir = node_platform.repo / "shared-infrastructure" / "platform"
    catalogue = published_models(node_platform)["models"]
    without_gemma = {name: model for name, model in catalogue.items() if name != "gemma-3-270m"}
    terraform = node_platform.terraform(platform_dir, {**node_platform.platform_variables(), "models": without_gemma})
    apps = client.AppsV1Api(node_platform.api())
    try:
        with pytest.raises(TerraformError) as refused:
            terraform.apply()
        assert "tenant acme-corp names gemma-3-270m (models.allowed), which this catalogue no longer serves" in str(
            refused.value
        ), str(refused.value)
        assert "gemma-3-270m" in published_models(node_platform)["served"]
        assert apps.read_namespaced_deployment("model-gemma-3-270m", NAMESPACE).status.ready_replicas == 1
    finally:
        node_platform.apply_platform()  # the catalogue as it was (Terraform's state keeps what the provider tried)
    reply = gateway_chat_from_a_pod(node_platform, "acme-corp", "gemma3")
    assert reply.get("status") == 200, reply
    assert json.loads(reply["text"])["model"] in ("gemma-3-270m", "gemma3"), reply


def test_each_tenant_is_answered_by_exactly_its_models_at_its_url_and_at_the_gateway(node_platform):
    """acme-corp may use both chat models, closed-ai only SmolLM2: an alias resolves, another tenant's model is
    a 403 at the tenant's URL and at the gateway, and the openai SDK lists exactly each tenant's models."""
    by_alias = answer_of(node_platform.ask("acme-corp", {"question": "Hi", "max_tokens": 8, "model": "gemma3"}))
    assert by_alias["backend"] == "gemma-3-270m"
    refused = node_platform.ask("closed-ai", {"question": "Hi", "max_tokens": 8, "model": "gemma-3-270m"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed", refused.text
    at_the_gateway = gateway_chat_from_a_pod(node_platform, "closed-ai", "gemma3")
    assert at_the_gateway.get("status") == 403 and "model_not_allowed" in at_the_gateway["text"], at_the_gateway
    for tenant, models in {
        "acme-corp": ["smollm2-135m-instruct", "gemma-3-270m", "gpt-4o-mini", "all-minilm-l6-v2"],
        "closed-ai": ["smollm2-135m-instruct", "all-minilm-l6-v2"],
    }.items():
        sdk = openai.OpenAI(base_url=node_platform.tenant_url(tenant) + "/v1", api_key="unused", timeout=60)
        assert [model.id for model in sdk.models.list().data] == models


def test_a_disabled_model_is_a_503_while_the_other_answers_and_tenantctl_models_shows_it(node_platform, capsys):
    platform_dir = node_platform.repo / "shared-infrastructure" / "platform"
    catalogue = published_models(node_platform)["models"]
    disabled = {**catalogue, "gemma-3-270m": {**catalogue["gemma-3-270m"], "enabled": False}}
    try:
        node_platform.terraform(platform_dir, {**node_platform.platform_variables(), "models": disabled}).apply()

        def refused_as_disabled() -> httpx.Response | None:
            reply = node_platform.ask("acme-corp", {"question": "Hi", "max_tokens": 4, "model": "gemma3"})
            code = reply.json().get("error", {}).get("code") if reply.status_code == 503 else None
            return reply if code == "model_disabled" else None  # (503 gateway_unreachable while it rolls)

        refused = wait_for(refused_as_disabled, 300, "the gateway's new config (gemma-3-270m disabled)")
        assert int(refused.headers["Retry-After"]) > 0
        assert answer_of(node_platform.ask("acme-corp", {"question": "Hi", "max_tokens": 4}))["backend"] == (
            "smollm2-135m-instruct"
        )
        assert main(["models", "--cluster", "--kubeconfig", str(node_platform.kubeconfig)]) == 0
        rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
        assert rows["gemma-3-270m"][4:6] == ["no", "-"]
        assert rows["smollm2-135m-instruct"][4:7] == ["yes", "up", "1/1"]
        assert rows["smollm2-135m-instruct"][8] == "acme-corp,closed-ai" and rows["gemma-3-270m"][8] == "acme-corp"
    finally:
        node_platform.apply_platform()
