"""The local control plane is a real Kubernetes API: versioned, RBAC-enforcing, quota-enforcing."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tenantctl.terraform import toolchain
from tests.helpers import wait_for


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def test_version_reports_the_built_release(control_plane):
    assert control_plane.plane.version()["gitVersion"] == toolchain.KUBERNETES_VERSION


def test_python_client_creates_and_lists_a_namespace(control_plane):
    core = client.CoreV1Api(control_plane.api_client())
    name = unique("hello")
    create_namespace(core, name)
    assert name in [ns.metadata.name for ns in core.list_namespace().items]
    # the controller manager gives every namespace its default ServiceAccount
    wait_for(lambda: core.list_namespaced_service_account(name).items, what="default ServiceAccount")


def bind_reader(admin: client.ApiClient, namespace: str, user: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="reader"),
            subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
        ),
    )


def test_rbac_confines_a_user_to_the_namespace_it_is_bound_in(control_plane):
    admin = control_plane.api_client()
    core = client.CoreV1Api(admin)
    tenant_a, tenant_b, user = unique("tenant-a"), unique("tenant-b"), unique("alice")
    create_namespace(core, tenant_a)
    create_namespace(core, tenant_b)
    bind_reader(admin, tenant_a, user)

    as_user = client.CoreV1Api(control_plane.api_client(impersonate=user))
    assert as_user.list_namespaced_config_map(tenant_a).items is not None
    with pytest.raises(ApiException) as denied:
        as_user.list_namespaced_config_map(tenant_b)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as no_write:
        as_user.create_namespaced_config_map(tenant_a, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    assert no_write.value.status == 403


def pod(name: str, cpu: str) -> client.V1Pod:
    container = client.V1Container(
        name="main",
        image="example.invalid/none:1",
        resources=client.V1ResourceRequirements(
            requests={"cpu": cpu, "memory": "16Mi"}, limits={"cpu": cpu, "memory": "16Mi"}
        ),
    )
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(containers=[container]))


def test_resource_quota_rejects_a_pod_over_the_limit(control_plane):
    core = client.CoreV1Api(control_plane.api_client())
    namespace = unique("quota")
    create_namespace(core, namespace)
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="compute"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.cpu": "500m", "limits.cpu": "500m", "pods": "5"}),
        ),
    )
    # quota admission enforces nothing until the controller has filled the status
    wait_for(
        lambda: (core.read_namespaced_resource_quota("compute", namespace).status.hard or {}).get("pods"),
        what="ResourceQuota status",
    )

    core.create_namespaced_pod(namespace, pod("small", "200m"))
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, pod("big", "400m"))
    assert rejected.value.status == 403
    assert "exceeded quota" in rejected.value.body


def test_deployments_get_replica_sets_and_pending_pods(control_plane):
    """No scheduler or kubelet: the controllers create Pods, which stay Pending."""
    api = control_plane.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    namespace = unique("deploy")
    create_namespace(core, namespace)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="example.invalid/web:1")]),
                ),
            ),
        ),
    )
    pods = wait_for(
        lambda: len(core.list_namespaced_pod(namespace).items) == 2 and core.list_namespaced_pod(namespace).items,
        what="two pods",
    )
    assert {p.status.phase for p in pods} == {"Pending"}
    assert apps.list_namespaced_replica_set(namespace).items
