variable "kubeconfig_path" {
  type        = string
  description = "kubeconfig file; null means KUBE_CONFIG_PATH or ~/.kube/config."
  default     = null
}

variable "kube_context" {
  type        = string
  description = "kubeconfig context; null means the current context."
  default     = null
}

variable "namespace" {
  type        = string
  description = "Namespace of the shared gateway, the vLLM pool, Prometheus and Grafana."
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace: must be a DNS-1123 label."
  }
}

variable "wait_for_rollout" {
  type        = bool
  description = "Wait until each Deployment is rolled out (false where Pods cannot run, e.g. the test control plane)."
  default     = true
}

variable "platform_image" {
  type        = string
  description = "Image with the gateway and the tenant proxy (the repository's Dockerfile)."
  default     = "ghcr.io/llm-tenants/platform:0.1.0"
}

variable "gateway" {
  type = object({
    replicas = optional(number, 2)
    workers  = optional(number, 2)
  })
  description = "Gateway Deployment size: replicas and gunicorn workers per replica."
  default     = {}

  validation {
    condition     = var.gateway.replicas >= 1 && var.gateway.workers >= 1
    error_message = "gateway.replicas and gateway.workers must be >= 1."
  }
}

variable "openai" {
  type = object({
    api_key         = optional(string, "")
    base_url        = optional(string, "https://api.openai.com/v1")
    embedding_model = optional(string, "text-embedding-3-small")
  })
  description = "OpenAI backend; an empty api_key leaves it out (the vLLM pool must then be enabled). With a key, embedding_model embeds every tenant's documents and questions."
  default     = {}
  sensitive   = true

  validation {
    condition     = startswith(var.openai.base_url, "https://") || startswith(var.openai.base_url, "http://")
    error_message = "openai.base_url: must be an http(s) URL."
  }
}

variable "vllm" {
  type = object({
    enabled       = optional(bool, true)
    image         = optional(string, "vllm/vllm-openai:v0.11.0")
    replicas      = optional(number, 1)
    model         = optional(string, "HuggingFaceTB/SmolLM2-1.7B-Instruct")
    served_model  = optional(string, "smollm2-135m-instruct")
    extra_args    = optional(list(string), ["--max-model-len", "8192"])
    gpus          = optional(number, 1)
    cpu           = optional(string, "4")
    memory        = optional(string, "24Gi")
    node_selector = optional(map(string), { "nvidia.com/gpu.present" = "true" })
    tolerations = optional(list(object({
      key      = string
      operator = string
      value    = optional(string)
      effect   = string
    })), [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }])
  })
  description = "The vLLM pool on GPU nodes: image, replicas, the model it loads and the name tenants ask for, extra vllm serve arguments, GPUs per replica, scheduling."
  default     = {}

  validation {
    condition     = var.vllm.replicas >= 0 && var.vllm.gpus >= 1
    error_message = "vllm.replicas must be >= 0 and vllm.gpus >= 1."
  }
}

variable "prometheus" {
  type = object({
    image           = optional(string, "prom/prometheus:v2.55.1")
    retention       = optional(string, "35d") # the budget alert looks back 30 days
    scrape_interval = optional(string, "15s")
    storage         = optional(string, "20Gi")
  })
  description = "Prometheus image, retention, scrape interval and the size of its data volume."
  default     = {}
}

variable "grafana" {
  type = object({
    image          = optional(string, "grafana/grafana:11.3.0")
    sidecar_image  = optional(string, "quay.io/kiwigrid/k8s-sidecar:1.28.0")
    admin_password = optional(string)
  })
  description = "Grafana image, its dashboard-sidecar image and the admin password (null: generated, see the grafana_admin output)."
  default     = {}
  sensitive   = true
}

variable "kube_state_metrics_image" {
  type        = string
  description = "kube-state-metrics image (quota usage per tenant on the dashboards)."
  default     = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"
}

variable "redis" {
  type = object({
    image        = optional(string, "redis:7.4-alpine")
    maxmemory    = optional(string, "200mb")
    memory_limit = optional(string, "256Mi")
  })
  description = "Redis holding the gateway's rate limit and budget counters (one replica, nothing persisted)."
  default     = {}
}

variable "limits" {
  type = object({
    on_redis_error = optional(string, "allow")
  })
  description = "What the gateway does while Redis cannot be reached: allow (fail open, counted and logged) or deny (503)."
  default     = {}

  validation {
    condition     = contains(["allow", "deny"], var.limits.on_redis_error)
    error_message = "limits.on_redis_error: must be allow or deny."
  }
}

variable "ledger" {
  type = object({
    dsn            = optional(string, "")
    postgres_image = optional(string, "postgres:17-alpine")
    storage        = optional(string, "20Gi")
    storage_class  = optional(string)
  })
  description = "The usage ledger: dsn of an existing PostgreSQL (postgresql://user:password@host:5432/db), or empty to run one in the namespace (StatefulSet with a volume of `storage`)."
  default     = {}
  sensitive   = true

  validation {
    condition     = var.ledger.dsn == "" || startswith(var.ledger.dsn, "postgresql://") || startswith(var.ledger.dsn, "postgres://")
    error_message = "ledger.dsn: must start with postgresql:// (or be empty for the in-cluster database)."
  }
}
