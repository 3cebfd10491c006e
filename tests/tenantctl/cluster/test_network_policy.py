"""NetworkPolicies are enforced on the local node (kube-router's controller, iptables + ipset), in the
patterns the platform uses: default deny, an allow rule by label, and egress limited to DNS."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.helpers import wait_for
from tests.node_pods import WEB_SERVER, create_namespace, delete_namespace, expose, http_get, pod_exec, run_pod

pytestmark = pytest.mark.cluster


@pytest.fixture
def namespace(node_cluster):
    """A namespace of its own with the web Pod behind a Service: (core API, namespace, the Service's IP)."""
    core = client.CoreV1Api(node_cluster.api_client())
    name = create_namespace(core, "netpol")
    run_pod(core, name, "web", node_cluster.busybox_image, WEB_SERVER, labels={"app": "web"})
    yield core, name, expose(core, name, "web", {"app": "web"})
    delete_namespace(core, name)


def policy(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def apply_policy(core: client.CoreV1Api, document: dict) -> None:
    client.NetworkingV1Api(core.api_client).create_namespaced_network_policy(
        document["metadata"]["namespace"], document
    )


def can_fetch(core: client.CoreV1Api, namespace: str, pod: str, host: str) -> bool:
    code, body = http_get(core, namespace, pod, host, timeout=2)
    return code == 0 and body.strip() == "web"


def test_default_deny_blocks_and_an_allow_rule_allows(node_cluster, namespace):
    core, ns, service_ip = namespace
    image = node_cluster.busybox_image
    run_pod(core, ns, "friend", image, labels={"role": "friend"})
    run_pod(core, ns, "stranger", image, labels={"role": "stranger"})
    wait_for(
        lambda: can_fetch(core, ns, "friend", service_ip) and can_fetch(core, ns, "stranger", service_ip),
        timeout=60,
        what="the Service reachable before the policy",
    )

    apply_policy(core, policy(ns, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    wait_for(lambda: not can_fetch(core, ns, "friend", service_ip), timeout=60, what="default deny to be enforced")
    assert not can_fetch(core, ns, "stranger", service_ip)

    apply_policy(
        core,
        policy(
            ns,
            "web-from-friends",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "friend"}}}],
                        "ports": [{"protocol": "TCP", "port": 8080}],
                    }
                ],
            },
        ),
    )
    wait_for(lambda: can_fetch(core, ns, "friend", service_ip), timeout=60, what="the allow rule to be enforced")
    assert not can_fetch(core, ns, "stranger", service_ip)


def test_egress_limited_to_dns_like_a_tenant(node_cluster, namespace):
    """The tenant module's pattern: deny all egress but DNS to the kube-dns Pods in kube-system."""
    core, ns, service_ip = namespace
    run_pod(core, ns, "tenant", node_cluster.busybox_image, labels={"app": "tenant"})
    wait_for(
        lambda: can_fetch(core, ns, "tenant", service_ip), timeout=60, what="the Service reachable before the policy"
    )
    apply_policy(
        core,
        policy(
            ns,
            "tenant-egress",
            {
                "podSelector": {"matchLabels": {"app": "tenant"}},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
    )
    wait_for(lambda: not can_fetch(core, ns, "tenant", service_ip), timeout=60, what="egress deny to be enforced")
    code, output = pod_exec(core, ns, "tenant", f"nslookup web.{ns}.svc.cluster.local")
    assert code == 0, output  # DNS still allowed
