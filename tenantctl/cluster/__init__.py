"""The local Kubernetes cluster (`tenantctl cluster`): a real control plane and one real node on this machine.

local_cluster.py  LocalCluster: the control plane and the node, started and stopped together
control_plane.py  etcd, kube-apiserver, kube-controller-manager
node.py           LocalNode: start (the actions), stop (and undo every host change)
actions.py        the node's start-up as an ordered list of actions, as kind creates a cluster
rendering.py      every config and command line, as pure functions; addons.py: CoreDNS and RBAC manifests
network.py        the cluster's addresses and names
pki.py            certificates and kubeconfigs; containerd.py: the node's containerd through ctr
host_state.py     the host's state before the node, and restoring it; machine.py: one node per machine
node_images.py    the images the node itself runs (pause, CoreDNS, busybox)
service.py        `cluster up|down` in the foreground or the background; state.py: its cluster.json
platform.py       the platform and tenants applied to the node; in_cluster.py: probe Pods, ingress relay
"""
