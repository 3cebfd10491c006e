"""The local cluster's addresses and names: its Service and Pod ranges, cluster DNS, and what the node
adds to this machine's network (the Pods' bridge, their CNI network, the egress guard's chain)."""

from __future__ import annotations

import ipaddress

SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/24"
CLUSTER_DNS_IP = str(ipaddress.ip_network(SERVICE_CIDR)[10])  # the kube-dns Service
CLUSTER_DOMAIN = "cluster.local"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
BRIDGE = "cni0"  # the Pods' bridge
CNI_NETWORK = "llm-tenants"  # the node's CNI network name (its conflist)
EGRESS_CHAIN = "LLMT-EGRESS"  # drops what Pods send beyond this machine (mangle FORWARD)
KUBE_ROUTER_USER = "llm-tenants:kube-router"  # the NetworkPolicy controller's user (client certificate, RBAC)
