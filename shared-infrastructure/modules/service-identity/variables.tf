variable "name" {
  type        = string
  description = "Name of the ServiceAccount and of its Role (or ClusterRole) and binding."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.name))
    error_message = "name: must be a DNS-1123 label."
  }
}

variable "namespace" {
  type        = string
  description = "Namespace of the ServiceAccount (and of the Role, unless cluster_wide)."
}

variable "labels" {
  type        = map(string)
  description = "Labels of every object created."
}

variable "rules" {
  type = list(object({
    apiGroups     = list(string)
    resources     = list(string)
    verbs         = list(string)
    resourceNames = optional(list(string))
  }))
  description = "RBAC rules granted to the ServiceAccount."
}

variable "cluster_wide" {
  type        = bool
  description = "Grant the rules in every namespace (ClusterRole + ClusterRoleBinding, named `<cluster_role_prefix><name>`) instead of only in `namespace`."
  default     = false
}

variable "cluster_role_prefix" {
  type        = string
  description = "Prefix of ClusterRole and ClusterRoleBinding names, which are not namespaced and must not collide."
  default     = "llm-tenants-"
}

variable "automount_token" {
  type        = bool
  description = "Whether Pods of this ServiceAccount get an API token mounted (false when they never call the API)."
  default     = true
}
