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
  description = "Namespace of the platform: the gateway, the model servers, the ModelCatalogue and TenantRoutes, Prometheus, Alertmanager and Grafana."
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
    api_key  = optional(string, "")
    base_url = optional(string, "https://api.openai.com/v1")
  })
  description = "The OpenAI API, for the catalogue's openai models (var.models): an empty api_key leaves it out, and those models are then published disabled (they answer 503 model_disabled)."
  default     = {}
  sensitive   = true

  validation {
    condition     = startswith(var.openai.base_url, "https://") || startswith(var.openai.base_url, "http://")
    error_message = "openai.base_url: must be an http(s) URL."
  }
}

# The model catalogue: llm_common/catalogue.py (CatalogueModel, ModelCatalogue) in Terraform, same fields
# and rules. Rendered into the gateway's config and published as the ModelCatalogue `platform` (catalogue.tf),
# which TenantRoutes are admitted by.
variable "models" {
  type = map(object({
    engine                        = string
    kind                          = optional(string, "chat")
    source                        = optional(string)
    served_name                   = optional(string)
    aliases                       = optional(list(string), [])
    gpus                          = optional(number, 0)
    max_sequences                 = optional(number)
    replicas                      = optional(number, 1)
    context_length                = optional(number, 2048)
    usd_per_million_input_tokens  = optional(number, 0)
    usd_per_million_output_tokens = optional(number, 0)
    dimensions                    = optional(number)
    enabled                       = optional(bool, true)
  }))
  description = "The model catalogue: every model the platform serves, by name (a DNS label of at most 40 characters; a self-hosted one runs as the Deployment and headless Service `model-<name>`). engine: `vllm` (GPU nodes, see var.vllm; source: a Hugging Face repo id; gpus per replica), `cpu` (the llama.cpp model server, see var.cpu_model_server; source: a GGUF file in its image's /models) or `openai` (served_name: the OpenAI model; disabled while openai.api_key is empty). kind: chat or embedding (at most one embedding model). served_name: the name the engine knows it by (null: the catalogue name); aliases: other names callers and tenant specs may use, unique across the catalogue. max_sequences: sequences one replica runs at once (vLLM --max-num-seqs); set, the gateway shares a full model between tenants in fair queues; null: no queue. replicas (self-hosted), context_length, prices in USD per million input/output tokens, dimensions (embedding models that take one), enabled (false: requests get 503 model_disabled, tenants may still name it). docs/cluster-operations.md, \"The model catalogue\"."
  nullable    = false
  default = {
    "smollm2-135m-instruct" = {
      engine                        = "cpu"
      source                        = "SmolLM2-135M-Instruct.Q4_1.gguf"
      aliases                       = ["smollm2"]
      context_length                = 2048
      usd_per_million_input_tokens  = 0.02
      usd_per_million_output_tokens = 0.05
    }
    "gemma-3-270m" = {
      engine                        = "cpu"
      source                        = "gemma-3-270m-q4_k_m.gguf"
      aliases                       = ["gemma3"]
      context_length                = 2048
      usd_per_million_input_tokens  = 0.02
      usd_per_million_output_tokens = 0.05
    }
    "all-minilm-l6-v2" = {
      engine         = "cpu"
      kind           = "embedding"
      source         = "all-MiniLM-L6-v2.f32.gguf"
      context_length = 512
    }
    "gpt-4o-mini" = {
      engine                        = "openai"
      usd_per_million_input_tokens  = 0.15
      usd_per_million_output_tokens = 0.6
    }
  }

  validation {
    condition     = length(var.models) >= 1
    error_message = "models: the catalogue needs at least one model."
  }
  validation {
    condition     = alltrue([for name in keys(var.models) : can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", name))])
    error_message = "models: ${join(", ", [for name in keys(var.models) : "'${name}'" if !can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", name))])}: a model's name must be a DNS label of at most 40 characters (lower-case letters, digits and '-', starting and ending with a letter or digit): it names the Deployment and Service model-<name>."
  }
  validation {
    condition     = alltrue([for model in values(var.models) : contains(["vllm", "cpu", "openai"], model.engine) && contains(["chat", "embedding"], model.kind)])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}" if !(contains(["vllm", "cpu", "openai"], model.engine) && contains(["chat", "embedding"], model.kind))])}: engine must be vllm, cpu or openai, and kind chat or embedding."
  }
  validation {
    condition     = alltrue([for model in values(var.models) : (model.source == null ? model.engine == "openai" : length(model.source) >= 1 && length(model.source) <= 500)])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}.source" if !(model.source == null ? model.engine == "openai" : length(model.source) >= 1 && length(model.source) <= 500)])}: a vllm model needs one (a Hugging Face repo id), a cpu model too (a GGUF file in the model server's /models); 1 to 500 characters."
  }
  validation {
    condition = alltrue([for model in values(var.models) : length(model.aliases) <= 20 && alltrue([
      for called in concat(model.served_name == null ? [] : [model.served_name], model.aliases) :
      can(regex("^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,126}[A-Za-z0-9])?$", called))
    ])])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}" if !(length(model.aliases) <= 20 && alltrue([for called in concat(model.served_name == null ? [] : [model.served_name], model.aliases) : can(regex("^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,126}[A-Za-z0-9])?$", called))]))])}: served_name and each alias (at most 20) must be letters, digits and . _ : / - (starting and ending with a letter or digit, at most 128 characters)."
  }
  validation {
    condition = alltrue([for model in values(var.models) : (
      model.gpus >= 0 && model.gpus <= 16 && floor(model.gpus) == model.gpus && (model.engine == "vllm" ? model.gpus >= 1 : model.gpus == 0)
    )])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}.gpus" if !(model.gpus >= 0 && model.gpus <= 16 && floor(model.gpus) == model.gpus && (model.engine == "vllm" ? model.gpus >= 1 : model.gpus == 0))])}: a vllm model needs a whole number of GPUs from 1 to 16 per replica; only vllm models run on GPUs (0 for cpu and openai)."
  }
  validation {
    condition = alltrue([for model in values(var.models) : (
      model.max_sequences == null ? true : model.max_sequences >= 1 && model.max_sequences <= 4096 && floor(model.max_sequences) == model.max_sequences
    )])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}.max_sequences" if !(model.max_sequences == null ? true : model.max_sequences >= 1 && model.max_sequences <= 4096 && floor(model.max_sequences) == model.max_sequences)])}: must be a whole number from 1 to 4096 (or null: no fair queue)."
  }
  validation {
    condition = alltrue([for model in values(var.models) : (
      model.replicas >= 0 && model.replicas <= 100 && floor(model.replicas) == model.replicas && (model.engine != "cpu" || model.replicas <= 8)
    )])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}.replicas" if !(model.replicas >= 0 && model.replicas <= 100 && floor(model.replicas) == model.replicas && (model.engine != "cpu" || model.replicas <= 8))])}: must be a whole number from 0 to 100; at most 8 for a cpu model (the CPU model server is a stand-in for small clusters: use vllm for more)."
  }
  validation {
    condition = alltrue([for model in values(var.models) : (
      model.context_length >= 128 && model.context_length <= 10000000 && floor(model.context_length) == model.context_length &&
      model.usd_per_million_input_tokens >= 0 && model.usd_per_million_input_tokens <= 10000 &&
      model.usd_per_million_output_tokens >= 0 && model.usd_per_million_output_tokens <= 10000 &&
      (model.dimensions == null ? true : model.dimensions >= 1 && model.dimensions <= 65536 && floor(model.dimensions) == model.dimensions)
    )])
    error_message = "${join(", ", [for name, model in var.models : "models.${name}" if !(model.context_length >= 128 && model.context_length <= 10000000 && floor(model.context_length) == model.context_length && model.usd_per_million_input_tokens >= 0 && model.usd_per_million_input_tokens <= 10000 && model.usd_per_million_output_tokens >= 0 && model.usd_per_million_output_tokens <= 10000 && (model.dimensions == null ? true : model.dimensions >= 1 && model.dimensions <= 65536 && floor(model.dimensions) == model.dimensions))])}: context_length must be a whole number from 128 to 10000000, the prices from 0 to 10000 USD per million tokens, dimensions (when set) a whole number from 1 to 65536."
  }
  validation {
    condition     = !anytrue([for name, model in var.models : contains(concat([name], model.aliases), "tenant-default")])
    error_message = "models: 'tenant-default' is reserved (it means a tenant's default model): name no model or alias so."
  }
  validation {
    # Each name and alias calls one model: an alias equal to its own model's name is harmless, any other repeat is not.
    condition = length(flatten([for name, model in var.models : concat([name], [for alias in model.aliases : alias if alias != name])])) == length(distinct(flatten([
      for name, model in var.models : concat([name], [for alias in model.aliases : alias if alias != name])
    ])))
    error_message = "models: ${join(", ", [for called in distinct(flatten([for name, model in var.models : concat([name], [for alias in model.aliases : alias if alias != name])])) : "'${called}'" if length([for other in flatten([for name, model in var.models : concat([name], [for alias in model.aliases : alias if alias != name])]) : other if other == called]) > 1])}: each name and alias must call one model (aliases unique across the catalogue, none another model's name)."
  }
  validation {
    condition     = length([for model in values(var.models) : model if model.kind == "embedding"]) <= 1
    error_message = "models: at most one embedding model (a tenant's documents are searchable only with the vectors of the model that indexed them), found ${join(", ", [for name, model in var.models : name if model.kind == "embedding"])}."
  }
}

variable "vllm" {
  type = object({
    image         = optional(string, "vllm/vllm-openai:v0.11.0")
    extra_args    = optional(list(string), [])
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
  description = "How every vllm model of the catalogue runs (each model's source, gpus, replicas and max_sequences are in var.models): the image, extra vllm serve arguments, CPU and memory per Pod, scheduling on GPU nodes. Each Pod serves its model with --max-model-len = the model's context_length."
  default     = {}
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
  description = "How every cpu model of the catalogue runs: the CPU model server image (tenantctl/images/model-server.Dockerfile: llama.cpp's OpenAI server, each model's source under /models), its threads and the resources of each Pod."
  default     = {}

  validation {
    condition     = var.cpu_model_server.threads >= 1 && floor(var.cpu_model_server.threads) == var.cpu_model_server.threads
    error_message = "cpu_model_server.threads must be a whole number >= 1."
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
