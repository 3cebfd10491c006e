# Inputs of one tenant: its spec (tenants/<name>/tenant.json, decoded; types, defaults and rules in
# spec/variables.tf) and how this cluster runs it.

variable "spec" {
  type        = any
  description = "The tenant spec as decoded from tenant.json (jsondecode): checked field by field by ./spec, which fills in the defaults."
}

variable "proxy_image" {
  type        = string
  description = "Container image with the tenant proxy (built from the repository's Dockerfile; the platform root's platform_image)."
  default     = "ghcr.io/llm-tenants/platform:0.1.0"
  nullable    = false

  validation {
    condition     = length(trimspace(var.proxy_image)) > 0
    error_message = "proxy_image: must not be blank."
  }
}

variable "wait_for_rollout" {
  type        = bool
  description = "Wait until the proxy Deployment is rolled out (false where Pods cannot run, e.g. a control plane without nodes)."
  default     = true
  nullable    = false
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of the platform (gateway, Prometheus, Grafana), created by shared-infrastructure/platform. The tenant writes its TenantRoute and its dashboard there."
  default     = "monitoring"
  nullable    = false
}

variable "prometheus_pod_labels" {
  type        = map(string)
  description = "Labels of the Prometheus Pods in the monitoring namespace: the only Pods there that may reach the proxy."
  default     = { "app.kubernetes.io/name" = "prometheus" }
}

variable "labels" {
  type        = map(string)
  description = "Extra labels added to every object."
  default     = {}
}

