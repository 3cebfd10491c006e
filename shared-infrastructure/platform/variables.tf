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
  description = "Image with the gateway and the tenant proxy (the repository's Dockerfile); tenants' proxy_image is the same image."
  default     = "ghcr.io/llm-tenants/platform:0.1.0"
}

variable "gateway" {
  type = object({
    replicas       = optional(number, 2)
    workers        = optional(number, 2)
    cpu_request    = optional(string, "250m")
    memory_request = optional(string, "256Mi")
  })
  description = "Gateway Deployment size: replicas, gunicorn workers per replica, and what each Pod requests."
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
  description = "OpenAI backend; an empty api_key leaves it out (the model pool must then be enabled). embedding_model is used when embeddings.backend is openai."
  default     = {}
  sensitive   = true

  validation {
    condition     = startswith(var.openai.base_url, "https://") || startswith(var.openai.base_url, "http://")
    error_message = "openai.base_url: must be an http(s) URL."
  }
}

variable "model_pool" {
  type = object({
    server        = optional(string, "vllm")
    replicas      = optional(number, 1)
    served_model  = optional(string, "smollm2-135m-instruct")
    max_sequences = optional(number)
  })
  description = "The self-hosted model pool the gateway balances over, one member per Pod: server `vllm` (GPU nodes, see var.vllm), `cpu` (the llama.cpp model server with SmolLM2-135M-Instruct, see var.cpu_model_server: for clusters without GPUs) or `none` (OpenAI only). served_model is the model name tenants ask for. max_sequences: the sequences one member runs at once (passed to vLLM as --max-num-seqs); when set, the gateway shares a full pool between tenants in fair queues, each gateway process counting floor(max_sequences / (gateway.replicas x gateway.workers)) slots per member; null: no queue."
  default     = {}

  validation {
    condition     = contains(["vllm", "cpu", "none"], var.model_pool.server) && var.model_pool.replicas >= 0
    error_message = "model_pool.server must be vllm, cpu or none, and model_pool.replicas >= 0."
  }
  validation {
    condition = var.model_pool.max_sequences == null || try(
    var.model_pool.max_sequences >= 1 && floor(var.model_pool.max_sequences) == var.model_pool.max_sequences, false)
    error_message = "model_pool.max_sequences must be a whole number >= 1 (or null: no fair queue)."
  }
}

variable "vllm" {
  type = object({
    image         = optional(string, "vllm/vllm-openai:v0.11.0")
    model         = optional(string, "HuggingFaceTB/SmolLM2-1.7B-Instruct")
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
  description = "vLLM pool members (model_pool.server = vllm): image, the model they load, extra vllm serve arguments, GPUs, CPU and memory per Pod, scheduling on GPU nodes."
  default     = {}

  validation {
    condition     = var.vllm.gpus >= 1
    error_message = "vllm.gpus must be >= 1."
  }
}

variable "cpu_model_server" {
  type = object({
    image          = optional(string, "ghcr.io/llm-tenants/model-server:0.1.0")
    threads        = optional(number, 2)
    cpu_request    = optional(string, "500m")
    memory_request = optional(string, "512Mi")
    cpu_limit      = optional(string, "2")
    memory_limit   = optional(string, "2Gi")
  })
  description = "The CPU model server image (tenantctl/images/model-server.Dockerfile: llama.cpp's OpenAI server with SmolLM2-135M-Instruct and all-MiniLM-L6-v2), used by the pool when model_pool.server = cpu and by the embedding servers; threads and resources per Pod."
  default     = {}
}

variable "embeddings" {
  type = object({
    backend        = optional(string, "pool")
    replicas       = optional(number, 1)
    cpu_request    = optional(string, "100m")
    memory_request = optional(string, "256Mi")
  })
  description = "The one embedding model of every tenant's documents: backend `pool` runs all-MiniLM-L6-v2 servers (the cpu_model_server image, on any node, no API key needed), `openai` uses openai.embedding_model with the OpenAI key."
  default     = {}

  validation {
    condition     = contains(["pool", "openai"], var.embeddings.backend) && var.embeddings.replicas >= 1
    error_message = "embeddings.backend must be pool or openai, and embeddings.replicas >= 1."
  }
}

variable "prometheus" {
  type = object({
    image           = optional(string, "prom/prometheus:v2.55.1")
    retention       = optional(string, "35d") # the budget alert looks back 30 days
    scrape_interval = optional(string, "15s")
    storage         = optional(string, "20Gi")
    cpu_request     = optional(string, "250m")
    memory_request  = optional(string, "512Mi")
  })
  description = "Prometheus image, retention, scrape interval, the size of its data volume and what its Pod requests."
  default     = {}
}

variable "grafana" {
  type = object({
    enabled        = optional(bool, true)
    image          = optional(string, "grafana/grafana:11.3.0")
    sidecar_image  = optional(string, "quay.io/kiwigrid/k8s-sidecar:1.28.0")
    admin_password = optional(string)
  })
  description = "Grafana (enabled: false leaves it out, e.g. where its image cannot be had), its image, its dashboard-sidecar image and the admin password (null: generated, see the grafana_admin_password output)."
  default     = {}
  sensitive   = true
}

variable "kube_state_metrics" {
  type = object({
    enabled = optional(bool, true)
    image   = optional(string, "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0")
  })
  description = "kube-state-metrics (quota usage per tenant on the dashboards); enabled: false leaves it out."
  default     = {}
}

variable "redis" {
  type = object({
    image          = optional(string, "redis:7.4-alpine")
    maxmemory      = optional(string, "200mb")
    memory_limit   = optional(string, "256Mi")
    cpu_request    = optional(string, "100m")
    memory_request = optional(string, "128Mi")
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
    cpu_request    = optional(string, "250m")
    memory_request = optional(string, "256Mi")
  })
  description = "The usage ledger: dsn of an existing PostgreSQL (postgresql://user:password@host:5432/db), or empty to run one in the namespace (StatefulSet with a volume of `storage`)."
  default     = {}
  sensitive   = true

  validation {
    condition     = var.ledger.dsn == "" || startswith(var.ledger.dsn, "postgresql://") || startswith(var.ledger.dsn, "postgres://")
    error_message = "ledger.dsn: must start with postgresql:// (or be empty for the in-cluster database)."
  }
}

variable "alertmanager" {
  type = object({
    image                 = optional(string, "prom/alertmanager:v0.25.0")
    webhook_urls          = optional(list(string), [])
    email                 = optional(list(string), [])
    receive_tenant_alerts = optional(bool, true)
    group_wait            = optional(string, "30s")
    group_interval        = optional(string, "5m")
    repeat_interval       = optional(string, "4h")
    storage               = optional(string, "1Gi")
    cpu_request           = optional(string, "25m")
    memory_request        = optional(string, "64Mi")
    smtp = optional(object({
      smarthost     = string
      from          = string
      auth_username = optional(string)
      require_tls   = optional(bool, true)
    }))
  })
  description = "Alertmanager (docs/cluster-operations.md): its image; the platform's receivers (webhook_urls, email via smtp), which hear the platform's alerts and, with receive_tenant_alerts, every tenant's too; grouping and repeat intervals; the volume holding silences. Tenants' receivers come from their specs."
  default     = {}

  validation {
    condition = alltrue([for url in var.alertmanager.webhook_urls : can(regex("^https?://[^/@\\s]+(/\\S*)?$", url))]) && alltrue([
      for duration in [var.alertmanager.group_wait, var.alertmanager.group_interval, var.alertmanager.repeat_interval] :
      can(regex("^[1-9][0-9]*(ms|s|m|h|d|w)$", duration))
    ])
    error_message = "alertmanager: webhook_urls must be http(s) URLs without credentials (tokens go in alert_receiver_secrets), and the intervals durations such as 30s, 5m, 4h."
  }

  validation {
    condition     = length(var.alertmanager.email) == 0 || var.alertmanager.smtp != null
    error_message = "alertmanager.email needs alertmanager.smtp (the relay mail goes through)."
  }
}

variable "alert_receiver_secrets" {
  type = object({
    webhook_token = optional(string, "")
    smtp_password = optional(string, "")
  })
  description = "The platform receivers' secrets: a bearer token sent to alertmanager.webhook_urls, the SMTP password. Kept in a Secret Alertmanager reads as files; never in its config."
  default     = {}
  sensitive   = true
}
