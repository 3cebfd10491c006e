# A workload's identity: a ServiceAccount and exactly the rights its rules grant it, in its
# namespace (Role) or cluster-wide (ClusterRole), bound together.

locals {
  role_kind    = var.cluster_wide ? "ClusterRole" : "Role"
  role_name    = var.cluster_wide ? "${var.cluster_role_prefix}${var.name}" : var.name
  role_meta    = merge({ name = local.role_name, labels = var.labels }, var.cluster_wide ? {} : { namespace = var.namespace })
  rules        = [for rule in var.rules : { for key, value in rule : key => value if value != null }]
  binding_kind = "${local.role_kind}Binding"
}

resource "kubectl_manifest" "service_account" {
  yaml_body = yamlencode({
    apiVersion                   = "v1"
    kind                         = "ServiceAccount"
    metadata                     = { name = var.name, namespace = var.namespace, labels = var.labels }
    automountServiceAccountToken = var.automount_token
  })
}

resource "kubectl_manifest" "role" {
  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = local.role_kind
    metadata   = local.role_meta
    rules      = local.rules
  })
}

resource "kubectl_manifest" "binding" {
  yaml_body = yamlencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = local.binding_kind
    metadata   = local.role_meta
    roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = local.role_kind, name = local.role_name }
    subjects   = [{ kind = "ServiceAccount", name = var.name, namespace = var.namespace }]
  })
  depends_on = [kubectl_manifest.role, kubectl_manifest.service_account]
}
