"""What the local node runs in the cluster itself, applied through the API when it starts
(actions.py): CoreDNS (ServiceAccount, RBAC, Corefile, the `kube-dns` Service and a
Deployment) and the RBAC of kube-router's NetworkPolicy controller. Rendered here, as pure functions.

CoreDNS runs as a Pod, not as a host process, so NetworkPolicies that allow DNS to the
`k8s-app=kube-dns` Pods in `kube-system` (as the tenant module's do) work as on any cluster.
"""

from __future__ import annotations

from tenantctl.cluster.network import CLUSTER_DNS_IP, CLUSTER_DOMAIN, KUBE_ROUTER_USER


def cluster_objects(coredns_image: str) -> list[dict]:
    """kube-router's and CoreDNS's RBAC; CoreDNS's ServiceAccount, Corefile, kube-dns Service and Deployment."""
    labels = {"k8s-app": "kube-dns", "app.kubernetes.io/name": "coredns", "app.kubernetes.io/part-of": "llm-tenants"}
    read = ["get", "list", "watch"]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": KUBE_ROUTER_USER},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": read},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read},
            ],
        },
        _cluster_role_binding(
            KUBE_ROUTER_USER, {"kind": "User", "name": KUBE_ROUTER_USER, "apiGroup": "rbac.authorization.k8s.io"}
        ),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        _cluster_role_binding(
            "system:coredns", {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
        ),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": {"k8s-app": "kube-dns"},
                "clusterIP": CLUSTER_DNS_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
        coredns_deployment(coredns_image),
    ]


# Answers for the cluster's zones only: there is no `forward`, Pods must not reach resolvers beyond this machine.
COREFILE = f"""\
.:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
    reload
}}
"""


def _cluster_role_binding(name: str, subject: dict) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [subject],
    }


def coredns_deployment(image: str) -> dict:
    labels = {"k8s-app": "kube-dns"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "coredns",
                    "priorityClassName": "system-cluster-critical",
                    "dnsPolicy": "Default",
                    "containers": [
                        {
                            "name": "coredns",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                },
            },
        },
    }
