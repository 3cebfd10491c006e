"""What the local cluster's configs and command lines say, read from the pure functions that render them
(tenantctl/cluster/rendering.py, addons.py): no root, no process, no file."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path

from tenantctl.cluster.addons import cluster_objects, coredns_deployment
from tenantctl.cluster.network import (
    BRIDGE,
    CLUSTER_DNS_IP,
    CNI_NETWORK,
    EGRESS_CHAIN,
    KUBE_ROUTER_USER,
    POD_CIDR,
    SERVICE_CIDR,
)
from tenantctl.cluster.pki import Pki
from tenantctl.cluster.rendering import (
    RUNC,
    NodeFiles,
    apiserver_args,
    cni_config,
    containerd_args,
    containerd_config,
    controller_manager_args,
    egress_guard_rules,
    etcd_args,
    kube_proxy_args,
    kube_proxy_config,
    kube_router_args,
    kube_scheduler_args,
    kubeconfig,
    kubelet_args,
    kubelet_config,
)

STATE = Path("/state/node")
FILES = NodeFiles(STATE)
SOCKET = Path("/run/llm-tenants-node/containerd.sock")
PKI = Pki(
    *(Path("/state/pki") / name for name in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub"))
)


def flags(argv: list[str]) -> dict[str, str]:
    """`--name=value` flags of a command line."""
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


def test_the_node_files_live_under_its_state_directory():
    assert FILES.containerd_config == STATE / "containerd" / "config.toml"
    assert FILES.cni_conflist == STATE / "cni" / "net.d" / "10-llm-tenants.conflist"
    assert FILES.kubeconfig("kube-proxy") == STATE / "kube-proxy.kubeconfig"
    assert FILES.log("kubelet") == STATE / "logs" / "kubelet.log"
    assert all(path.is_relative_to(STATE) for path in FILES.fresh_directories())
    assert STATE / "containerd" / "root" not in FILES.fresh_directories()  # imported images are kept


def test_a_kubeconfig_embeds_the_ca_and_the_client_certificate():
    config = kubeconfig("https://127.0.0.1:6443", b"CA PEM", "system:kube-proxy", b"CERT PEM", b"KEY PEM")
    (cluster,) = config["clusters"]
    (user,) = config["users"]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == b"CA PEM"
    assert user["name"] == "system:kube-proxy"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == b"CERT PEM"
    assert base64.b64decode(user["user"]["client-key-data"]) == b"KEY PEM"
    assert config["contexts"][0]["context"] == {"cluster": "local", "user": "system:kube-proxy"}
    assert config["current-context"] == "local"


def test_etcd_listens_on_loopback_only():
    argv = etcd_args(Path("/bin/etcd"), Path("/state/etcd"), 2379, 2380)
    assert argv[0] == "/bin/etcd"
    assert flags(argv)["listen-client-urls"] == "http://127.0.0.1:2379"
    assert flags(argv)["listen-peer-urls"] == "http://127.0.0.1:2380"
    assert flags(argv)["data-dir"] == "/state/etcd"


def test_the_api_server_alone_stays_on_loopback():
    options = flags(apiserver_args(Path("/bin/kube-apiserver"), PKI, etcd_port=2379, secure_port=6443))
    assert options["bind-address"] == options["advertise-address"] == "127.0.0.1"
    assert options["endpoint-reconciler-type"] == "none"
    assert options["etcd-servers"] == "http://127.0.0.1:2379"
    assert options["secure-port"] == "6443"
    assert options["service-cluster-ip-range"] == SERVICE_CIDR
    assert options["authorization-mode"] == "Node,RBAC"
    assert options["client-ca-file"] == "/state/pki/ca.crt"
    assert options["tls-cert-file"] == "/state/pki/apiserver.crt"
    assert options["service-account-signing-key-file"] == "/state/pki/sa.key"
    assert "kubelet-client-certificate" not in options


def test_the_api_server_with_a_node_advertises_the_node_ip_and_authenticates_to_the_kubelet():
    options = flags(
        apiserver_args(
            Path("/bin/kube-apiserver"),
            PKI,
            etcd_port=2379,
            secure_port=6443,
            node_ip="192.0.2.7",
            kubelet_client_cert=Path("/state/pki/kubelet-client"),
            kubelet_address_types="InternalIP,Hostname",
        )
    )
    assert options["bind-address"] == "0.0.0.0" and options["advertise-address"] == "192.0.2.7"
    assert options["kubelet-client-certificate"] == "/state/pki/kubelet-client.crt"
    assert options["kubelet-client-key"] == "/state/pki/kubelet-client.key"
    assert options["kubelet-preferred-address-types"] == "InternalIP,Hostname"
    assert "endpoint-reconciler-type" not in options


def test_the_controller_manager_signs_with_the_cluster_ca():
    options = flags(controller_manager_args(Path("/bin/kcm"), PKI, Path("/state/cm.kubeconfig"), Path("/state/flex")))
    assert options["kubeconfig"] == options["authentication-kubeconfig"] == "/state/cm.kubeconfig"
    assert options["cluster-signing-cert-file"] == "/state/pki/ca.crt"
    assert options["cluster-signing-key-file"] == "/state/pki/ca.key"
    assert options["service-account-private-key-file"] == "/state/pki/sa.key"
    assert options["controllers"] == "*" and options["leader-elect"] == "false"
    assert options["flex-volume-plugin-dir"] == "/state/flex"  # not the host's /usr/libexec/kubernetes


def test_containerd_has_its_own_root_socket_and_cri_settings():
    config = tomllib.loads(containerd_config(FILES, SOCKET, "llm-tenants.local/pause:3.10.1-abc"))
    assert config["version"] == 2
    assert config["root"] == str(STATE / "containerd" / "root")
    assert config["state"] == str(STATE / "containerd" / "state")
    assert config["grpc"]["address"] == str(SOCKET)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "llm-tenants.local/pause:3.10.1-abc"
    assert cri["restrict_oom_score_adj"] is True
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {
        "BinaryName": str(RUNC),
        "Root": str(STATE / "containerd" / "runc"),
        "SystemdCgroup": False,
    }
    assert cri["cni"]["conf_dir"] == str(FILES.cni_conflist.parent) and cri["cni"]["max_conf_num"] == 1
    assert containerd_args(FILES)[1:] == ["--config", str(FILES.containerd_config), "--log-level", "warn"]


def test_the_cni_network_is_the_pod_bridge_without_masquerading():
    network = cni_config(FILES)
    assert network["name"] == CNI_NETWORK
    bridge, portmap, firewall = network["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == BRIDGE
    assert bridge["ipMasq"] is False  # Pods must not reach beyond this machine
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR}]]
    assert bridge["ipam"]["dataDir"] == str(STATE / "cni" / "ipam")
    assert portmap["type"] == "portmap" and firewall["type"] == "firewall"
    json.dumps(network)  # written as JSON


def test_the_kubelet_authenticates_every_client_and_never_evicts_for_the_disk():
    config = kubelet_config(
        FILES,
        address="127.0.0.1",
        port=10250,
        healthz_port=10248,
        client_ca=Path("/state/pki/ca.crt"),
        containerd_socket=SOCKET,
    )
    assert config["kind"] == "KubeletConfiguration"
    assert config["address"] == "127.0.0.1" and config["port"] == 10250 and config["readOnlyPort"] == 0
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"]["clientCAFile"] == "/state/pki/ca.crt"
    assert config["authorization"]["mode"] == "Webhook"
    assert config["containerRuntimeEndpoint"] == f"unix://{SOCKET}"
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["clusterDNS"] == [CLUSTER_DNS_IP] == ["10.0.0.10"]
    assert config["resolvConf"] == str(FILES.resolv_conf)
    assert config["tlsCertFile"] == str(STATE / "pki" / "kubelet.crt")
    assert config["imageGCHighThresholdPercent"] == 100  # nothing can be pulled again
    options = flags(kubelet_args(Path("/bin/kubelet"), FILES, "192.0.2.7", "node-1"))
    assert options["node-ip"] == "192.0.2.7" and options["hostname-override"] == "node-1"
    assert options["config"] == str(FILES.kubelet_config) and options["root-dir"] == str(FILES.kubelet_root)
    assert options["kubeconfig"] == str(STATE / "kubelet.kubeconfig")


def test_kube_proxy_uses_iptables_for_the_pod_range_and_changes_no_kernel_setting():
    config = kube_proxy_config(FILES, node_name="node-1", healthz_port=10256, metrics_port=10249)
    assert config["mode"] == "iptables" and config["clusterCIDR"] == POD_CIDR
    assert config["hostnameOverride"] == "node-1"
    assert config["healthzBindAddress"] == "127.0.0.1:10256"
    assert config["clientConnection"]["kubeconfig"] == str(STATE / "kube-proxy.kubeconfig")
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0
    assert config["iptables"]["masqueradeAll"] is False
    assert flags(kube_proxy_args(Path("/bin/kube-proxy"), FILES))["config"] == str(FILES.kube_proxy_config)


def test_kube_router_and_the_scheduler_use_their_own_kubeconfigs():
    router = flags(kube_router_args(Path("/bin/kube-router-netpol"), FILES, "node-1", 20244))
    assert router["kubeconfig"] == str(STATE / "kube-router.kubeconfig")
    assert router["service-cluster-ip-range"] == SERVICE_CIDR
    assert router["health-address"] == "127.0.0.1:20244"
    scheduler = flags(kube_scheduler_args(Path("/bin/kube-scheduler"), FILES, 10259))
    assert scheduler["kubeconfig"] == scheduler["authorization-kubeconfig"] == str(STATE / "kube-scheduler.kubeconfig")
    assert scheduler["secure-port"] == "10259" and scheduler["bind-address"] == "127.0.0.1"


def test_the_egress_guard_lets_pods_reach_pods_and_services_only():
    rules = egress_guard_rules()
    ipv4 = [rule[1:] for rule in rules if rule[0] == "iptables"]
    ipv6 = [rule[1:] for rule in rules if rule[0] == "ip6tables"]
    assert ipv4[0] == ["-t", "mangle", "-N", EGRESS_CHAIN]
    assert ["-t", "mangle", "-A", EGRESS_CHAIN, "-d", POD_CIDR, "-j", "RETURN"] in ipv4
    assert ["-t", "mangle", "-A", EGRESS_CHAIN, "-d", SERVICE_CIDR, "-j", "RETURN"] in ipv4
    assert ipv4[3][-2:] == ["-j", "DROP"]  # after the two RETURNs
    assert ipv4[-1] == ["-t", "mangle", "-I", "FORWARD", "1", "-s", POD_CIDR, "-j", EGRESS_CHAIN]  # ahead of all
    assert ipv6[-1] == ["-t", "mangle", "-I", "FORWARD", "1", "-i", BRIDGE, "-j", EGRESS_CHAIN]
    assert ["-t", "mangle", "-A", EGRESS_CHAIN, "-j", "DROP"] in ipv6


def test_the_addons_are_coredns_behind_kube_dns_and_kube_routers_rbac():
    objects = cluster_objects("llm-tenants.local/coredns:v1.15.0")
    by_kind = {(document["kind"], document["metadata"]["name"]): document for document in objects}
    service = by_kind[("Service", "kube-dns")]
    assert service["spec"]["clusterIP"] == CLUSTER_DNS_IP
    assert service["metadata"]["namespace"] == "kube-system"
    assert {port["protocol"] for port in service["spec"]["ports"]} == {"UDP", "TCP"}
    corefile = by_kind[("ConfigMap", "coredns")]["data"]["Corefile"]
    assert "kubernetes cluster.local" in corefile
    assert "forward" not in corefile  # no resolver beyond this machine
    deployment = by_kind[("Deployment", "coredns")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "llm-tenants.local/coredns:v1.15.0" and container["imagePullPolicy"] == "Never"
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"k8s-app": "kube-dns"}
    role = by_kind[("ClusterRole", KUBE_ROUTER_USER)]
    assert {"networkpolicies"} <= {resource for rule in role["rules"] for resource in rule["resources"]}
    binding = by_kind[("ClusterRoleBinding", KUBE_ROUTER_USER)]
    assert binding["subjects"] == [{"kind": "User", "name": KUBE_ROUTER_USER, "apiGroup": "rbac.authorization.k8s.io"}]
    assert (
        coredns_deployment("x")["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "readOnlyRootFilesystem"
        ]
        is True
    )
