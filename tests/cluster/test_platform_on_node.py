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
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenantctl.cluster.in_cluster import Probe
from tenantctl.cluster.platform import NAMESPACE
from tests.helpers import prometheus_query, wait_for

# The first test also waits for the node, the images' import and the platform's rollout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

TENANTS = {"acme-corp": "acme", "closed-ai": "closed ai"}
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
    assert {"llm-gateway", "llm-model-pool", "llm-embeddings", "prometheus", "alertmanager", "llm-redis"} <= deployments
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
    model_pods = pod_ips(core, NAMESPACE, "llm-model-pool") + pod_ips(core, NAMESPACE, "llm-embeddings")
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
                (NAMESPACE, "llm-model-pool"),
                (NAMESPACE, "llm-embeddings"),
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
        model_pod = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=llm-model-pool").items[0]
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
