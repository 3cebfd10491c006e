"""The local node is a real Kubernetes node: Pods run, get addresses, answer through Services,
resolve cluster DNS names, reach the API server, can be logged and exec'd into, and cannot reach
anything beyond this machine."""

from __future__ import annotations

import ipaddress
import subprocess

import httpx
import pytest
from kubernetes import client

from tenantctl.cluster.network import BRIDGE, EGRESS_CHAIN
from tenantctl.images.oci_archive import ImageFile, ImageSpec, write_image
from tenantctl.terraform import toolchain
from tests.helpers import wait_for
from tests.node_pods import WEB_SERVER, create_namespace, delete_namespace, expose, http_get, pod_exec, run_pod

pytestmark = pytest.mark.cluster

# TEST-NET-3 (RFC 5737): documentation addresses, never a real host.
OUTSIDE_ADDRESS = "203.0.113.1"


@pytest.fixture(scope="module")
def web(node_cluster):
    """A namespace with a web Pod behind a ClusterIP Service, and a client Pod."""
    core = client.CoreV1Api(node_cluster.api_client())
    namespace = create_namespace(core, "node")
    image = node_cluster.busybox_image
    server = run_pod(core, namespace, "web", image, WEB_SERVER, labels={"app": "web"})
    cluster_ip = expose(core, namespace, "web", {"app": "web"})
    run_pod(core, namespace, "client", image, "echo client started; exec sleep 3600", labels={"app": "client"})
    yield {"core": core, "namespace": namespace, "server": server, "cluster_ip": cluster_ip}
    delete_namespace(core, namespace)


def test_node_is_ready_with_the_built_kubelet(node_cluster):
    node = client.CoreV1Api(node_cluster.api_client()).read_node(node_cluster.node_name)
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.node_info.kubelet_version == toolchain.KUBERNETES_VERSION
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.6")
    assert {"type": "InternalIP", "address": node_cluster.node_ip} in [a.to_dict() for a in node.status.addresses]


def test_the_node_has_its_images_and_imports_more(node_cluster, tmp_path):
    assert node_cluster.busybox_image in node_cluster.images()
    archive = tmp_path / "hello.tar"
    write_image(ImageSpec("llm-tenants.local/hello:1", [ImageFile("/hello.txt", b"hi")]), archive)
    assert node_cluster.import_image(archive) == ["llm-tenants.local/hello:1"]
    assert "llm-tenants.local/hello:1" in node_cluster.images()


def test_a_pod_answers_from_its_pod_ip(node_cluster, web):
    pod_ip = web["server"].status.pod_ip
    assert pod_ip.startswith("10.244.0.")
    assert httpx.get(f"http://{pod_ip}:8080/", timeout=10).text.strip() == "web"


def test_a_cluster_ip_answers_from_the_host_and_from_another_pod(web):
    def from_the_host() -> str | None:  # kube-proxy writes the Service's rules a moment after its endpoint is ready
        try:
            return httpx.get(f"http://{web['cluster_ip']}:8080/", timeout=5).text.strip()
        except httpx.TransportError:
            return None

    assert wait_for(from_the_host, timeout=60, what="the ClusterIP answering the host") == "web"
    code, body = http_get(web["core"], web["namespace"], "client", web["cluster_ip"])
    assert (code, body.strip()) == (0, "web")


def test_service_names_resolve_in_pods(web):
    name = f"web.{web['namespace']}.svc.cluster.local"
    code, output = pod_exec(web["core"], web["namespace"], "client", f"nslookup {name}")
    assert code == 0, output
    assert web["cluster_ip"] in output
    code, body = http_get(web["core"], web["namespace"], "client", "web")  # the short name, via search domains
    assert (code, body.strip()) == (0, "web")


def test_pods_reach_the_api_server_through_the_kubernetes_service(node_cluster, web):
    """The gateway lists tenant routes with in-cluster config: kubernetes.default.svc:443 must be reachable."""
    code, output = pod_exec(web["core"], web["namespace"], "client", "nslookup kubernetes.default.svc.cluster.local")
    assert code == 0 and "10.0.0.1" in output, output
    code, output = pod_exec(web["core"], web["namespace"], "client", "nc -w 5 kubernetes.default.svc 443 </dev/null")
    assert code == 0, output  # connected: the Service's endpoint is the API server on the node IP


def test_logs_and_exec_go_through_the_kubelet_with_certificates(web):
    assert web["core"].read_namespaced_pod_log("client", web["namespace"]) == "client started\n"
    code, output = pod_exec(web["core"], web["namespace"], "web", "cat /tmp/www/index.html; id -u")
    assert (code, output.split()) == (0, ["web", "65534"])


def test_a_pod_cannot_reach_beyond_this_machine(node_cluster, web):
    guard = ["iptables", "-t", "mangle", "-C", "FORWARD", "-s", node_cluster.pod_cidr, "-j", EGRESS_CHAIN]
    assert subprocess.run(guard, capture_output=True).returncode == 0, "the egress guard must be in place first"
    dropped_before = _guard_drops()
    code, output = pod_exec(web["core"], web["namespace"], "client", f"nc -w 3 {OUTSIDE_ADDRESS} 80 </dev/null")
    assert code != 0, output
    assert _guard_drops() > dropped_before  # dropped by the guard, not failing for another reason


def test_a_service_address_kube_proxy_has_not_rewritten_stays_on_this_machine(node_cluster, web):
    """Before kube-proxy has synced a Service (or for an address no Service has), the host's and the Pods'
    packets to it are routed onto the Pods' bridge, not the default route (asked of the routing table: no
    packet is sent)."""
    unused = str(ipaddress.ip_network(node_cluster.service_cidr)[-2])
    from_the_host = subprocess.run(["ip", "-o", "route", "get", unused], capture_output=True, text=True, check=True)
    from_a_pod = subprocess.run(
        ["ip", "-o", "route", "get", unused, "from", web["server"].status.pod_ip, "iif", BRIDGE],
        capture_output=True,
        text=True,
        check=True,
    )
    for route in (from_the_host.stdout, from_a_pod.stdout):
        assert f"dev {BRIDGE}" in route, route


def _guard_drops() -> int:
    listing = subprocess.run(
        ["iptables", "-t", "mangle", "-L", EGRESS_CHAIN, "-v", "-x", "-n"], capture_output=True, text=True, check=True
    ).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if "DROP" in line)


def test_the_api_server_lists_the_node_ip_as_the_kubernetes_endpoint(node_cluster):
    endpoints = client.CoreV1Api(node_cluster.api_client()).read_namespaced_endpoints("kubernetes", "default")
    assert [a.ip for subset in endpoints.subsets for a in subset.addresses] == [node_cluster.node_ip]


def test_pods_are_scheduled_by_the_scheduler(web):
    assert web["server"].spec.node_name
    events = web["core"].list_namespaced_event(web["namespace"], field_selector="reason=Scheduled")
    assert any(e.involved_object.name == "web" for e in events.items)


def test_a_deleted_pod_is_stopped(node_cluster, web):
    core, namespace = web["core"], web["namespace"]
    run_pod(core, namespace, "short-lived", node_cluster.busybox_image)
    core.delete_namespaced_pod("short-lived", namespace, grace_period_seconds=0)
    wait_for(
        lambda: "short-lived" not in [p.metadata.name for p in core.list_namespaced_pod(namespace).items],
        what="the Pod to be gone",
    )
