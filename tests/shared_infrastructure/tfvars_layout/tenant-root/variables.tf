# The tenant spec: terraform.tfvars.json in this directory sets these (tenantctl reads the same
# file for local mode and validates it the same way; keep the two in step).

variable "name" {
  type        = string
  description = "Tenant name: a DNS-1123 label of at most 40 characters; also the namespace and the directory name."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "name: must be a DNS-1123 label of at most 40 characters: lower-case letters, digits and '-', starting and ending with a letter or digit."
  }
  validation {
    condition     = !contains(["default", "monitoring"], var.name) && !startswith(var.name, "kube-")
    error_message = "name: 'default', 'monitoring' and 'kube-*' are reserved for the platform."
  }
}

variable "display_name" {
  type        = string
  description = "Human-readable name, e.g. \"Acme Corp\"."

  validation {
    condition     = length(trimspace(var.display_name)) > 0 && length(var.display_name) <= 100
    error_message = "display_name: must not be blank (at most 100 characters)."
  }
}

variable "industry" {
  type        = string
  description = "The tenant's industry, e.g. \"Insurance\"."

  validation {
    condition     = length(trimspace(var.industry)) > 0 && length(var.industry) <= 60
    error_message = "industry: must not be blank (at most 60 characters)."
  }
}

variable "system_prompt" {
  type        = string
  description = "The tenant's system prompt, put before every conversation by its proxy."

  validation {
    condition     = length(trimspace(var.system_prompt)) > 0 && length(var.system_prompt) <= 16384
    error_message = "system_prompt: must not be blank (at most 16384 characters)."
  }
}

variable "backend" {
  type        = string
  description = "openai, vllm, or auto (the vLLM pool with failover to OpenAI)."
  default     = "auto"

  validation {
    condition     = contains(["openai", "vllm", "auto"], var.backend)
    error_message = "backend: must be one of openai, vllm, auto."
  }
}

variable "model" {
  type        = string
  description = "Model name served by the vLLM pool."
  default     = "smollm2-135m-instruct"

  validation {
    condition     = length(trimspace(var.model)) > 0
    error_message = "model: must not be blank."
  }
}

variable "openai_model" {
  type        = string
  description = "Model used when the request goes to OpenAI."
  default     = "gpt-4o-mini"

  validation {
    condition     = length(trimspace(var.openai_model)) > 0
    error_message = "openai_model: must not be blank."
  }
}

variable "max_tokens" {
  type        = number
  description = "Cap on completion tokens per request."
  default     = 256

  validation {
    condition     = var.max_tokens >= 1 && var.max_tokens <= 32768 && floor(var.max_tokens) == var.max_tokens
    error_message = "max_tokens: must be a whole number from 1 to 32768."
  }
}

variable "quota" {
  type = object({
    cpu    = optional(string, "2")
    memory = optional(string, "4Gi")
    pods   = optional(number, 10)
  })
  description = "Namespace ResourceQuota: CPU and memory (Kubernetes quantities) and the number of Pods."
  default     = {}

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?|[0-9]+m)$", var.quota.cpu)) && !can(regex("^[0.]+m?$", var.quota.cpu))
    error_message = "quota.cpu: must be a positive Kubernetes CPU quantity such as '2' or '500m'."
  }
  validation {
    condition     = can(regex("^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", var.quota.memory)) && !can(regex("^0+[A-Za-z]*$", var.quota.memory))
    error_message = "quota.memory: must be a positive Kubernetes memory quantity such as '4Gi' or '512Mi'."
  }
  validation {
    condition     = var.quota.pods >= 1 && var.quota.pods <= 1000 && floor(var.quota.pods) == var.quota.pods
    error_message = "quota.pods: must be a whole number from 1 to 1000."
  }
}

variable "rate_limits" {
  type = object({
    requests_per_minute = optional(number, 60)
    requests_per_hour   = optional(number, 1000)
    tokens_per_minute   = optional(number, 20000)
  })
  description = "Per-tenant limits the shared gateway enforces."
  default     = {}

  validation {
    condition     = alltrue([for value in values(var.rate_limits) : value >= 1 && floor(value) == value])
    error_message = "rate_limits: requests_per_minute, requests_per_hour and tokens_per_minute must be whole numbers >= 1."
  }
}

variable "monthly_budget_usd" {
  type        = number
  description = "Estimated spend per month in US dollars (priced per model by the gateway); the gateway refuses requests once it is used up. null: no budget."
  default     = null

  validation {
    condition     = var.monthly_budget_usd == null || try(var.monthly_budget_usd > 0 && var.monthly_budget_usd <= 10000000, false)
    error_message = "monthly_budget_usd: must be > 0 and at most 10000000."
  }
}

variable "monthly_token_budget" {
  type        = number
  description = "Prompt + completion tokens per calendar month (UTC); the gateway refuses requests once it is used up. null: no limit."
  default     = null

  validation {
    condition     = var.monthly_token_budget == null || try(var.monthly_token_budget >= 1 && var.monthly_token_budget <= 1000000000000 && floor(var.monthly_token_budget) == var.monthly_token_budget, false)
    error_message = "monthly_token_budget: must be a whole number from 1 to 1000000000000."
  }
}

variable "guardrails" {
  type = object({
    sensitive_patterns = optional(list(object({ name = string, pattern = string })), [])
    refusal_rules      = optional(list(object({ contains = optional(string), regex = optional(string), reason = string })), [])
    blocked_topics     = optional(list(object({ topic = string, keywords = list(string) })), [])
  })
  description = "What the tenant proxy refuses before calling the gateway: sensitive-data patterns, refusal rules (contains or regex, with the reason shown to the user) and blocked topics (keywords)."
  default     = {}

  validation {
    condition     = alltrue([for rule in var.guardrails.refusal_rules : (rule.contains == null) != (rule.regex == null) && length(trimspace(rule.reason)) > 0])
    error_message = "guardrails.refusal_rules: each rule needs exactly one of contains and regex, and a reason."
  }
  validation {
    condition = alltrue(concat(
      [for rule in var.guardrails.refusal_rules : rule.regex == null || can(regexall(coalesce(rule.regex, "x"), ""))],
      [for pattern in var.guardrails.sensitive_patterns : can(regexall(pattern.pattern, ""))],
    ))
    error_message = "guardrails: every pattern and regex must be a valid RE2 regular expression (the proxy matches them in linear time with RE2): no look-arounds, no back-references."
  }
  validation {
    condition     = alltrue([for topic in var.guardrails.blocked_topics : length(topic.keywords) > 0 && alltrue([for k in topic.keywords : length(trimspace(k)) > 0])])
    error_message = "guardrails.blocked_topics: each topic needs at least one keyword, none blank."
  }
}

variable "end_user_key_sha256" {
  type        = list(string)
  description = "SHA-256 of the API keys end users must send to the proxy (Authorization: Bearer); empty (the default): no key needed."
  default     = []

  validation {
    condition     = length(var.end_user_key_sha256) <= 20 && alltrue([for digest in var.end_user_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "end_user_key_sha256: at most 20 entries, each a lower-case hex SHA-256 digest."
  }
}

variable "admin_key_sha256" {
  type        = list(string)
  description = "SHA-256 of the tenant admin keys (Authorization: Bearer) that may add and delete the tenant's documents; empty (the default): nobody can."
  default     = []

  validation {
    condition     = length(var.admin_key_sha256) <= 20 && alltrue([for digest in var.admin_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "admin_key_sha256: at most 20 entries, each a lower-case hex SHA-256 digest."
  }
}

variable "max_concurrent_requests" {
  type        = number
  description = "Requests of this tenant in progress at once, across every gateway replica; over it the gateway answers 429 (concurrency_limit_exceeded). null: no limit."
  default     = null

  validation {
    condition     = var.max_concurrent_requests == null || try(var.max_concurrent_requests >= 1 && var.max_concurrent_requests <= 10000 && floor(var.max_concurrent_requests) == var.max_concurrent_requests, false)
    error_message = "max_concurrent_requests: must be a whole number from 1 to 10000."
  }
}

variable "allowed_request_extensions" {
  type        = list(string)
  description = "Backend-specific request fields the gateway passes on for this tenant (e.g. guided_json, top_k; the list is in llm_common/request_contract.py); any other unknown field is refused with a 400."
  default     = []
}

variable "alerts" {
  type = object({
    webhook_urls         = optional(list(string), [])
    email                = optional(list(string), [])
    webhook_token_secret = optional(string)
    severity_min         = optional(string, "warning")
  })
  description = "Where this tenant's alerts go (README \"Alerts\"); null: the platform's receivers only. Validated by the module."
  default     = null
}

variable "local_port" {
  type        = number
  description = "Port of the tenant proxy in local mode (`tenantctl up`); not used on a cluster."
  default     = null

  validation {
    condition     = var.local_port == null || (try(var.local_port >= 1024 && var.local_port <= 65535, false))
    error_message = "local_port: must be from 1024 to 65535."
  }
}

# -- How to reach the cluster and run the proxy (not part of the tenant spec) -------------------

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

variable "previous_gateway_key_sha256" {
  type        = list(string)
  description = "Earlier gateway key hashes still accepted during a key rotation (see README: rotating a tenant's gateway key)."
  default     = []

  validation {
    condition     = alltrue([for digest in var.previous_gateway_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "previous_gateway_key_sha256: each entry must be a lower-case hex SHA-256 digest."
  }
}

variable "admin_group" {
  type        = string
  description = "Group bound to the tenant-admin Role; null means \"<name>-admins\"."
  default     = null
}

variable "ingress_namespace" {
  type        = string
  description = "Namespace of the ingress controller allowed to reach the proxy."
  default     = "ingress-nginx"
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of the platform (gateway, Prometheus, Grafana), created by shared-infrastructure/platform."
  default     = "monitoring"
}

variable "proxy_image" {
  type        = string
  description = "Container image with the tenant proxy (built from the repository's Dockerfile)."
  default     = "ghcr.io/llm-tenants/platform:0.1.0"
}

variable "proxy_replicas" {
  type        = number
  description = "Proxy replicas. More than one needs the document volume to be ReadWriteMany (knowledge_storage_access_mode, set at onboarding)."
  default     = 1

  validation {
    condition     = var.proxy_replicas >= 0 && floor(var.proxy_replicas) == var.proxy_replicas
    error_message = "proxy_replicas: must be a whole number >= 0."
  }
}

variable "proxy_workers" {
  type        = number
  description = "gunicorn workers per proxy Pod; null means the module's default (2)."
  default     = null
}

variable "proxy_resources" {
  type = object({
    cpu_request    = optional(string)
    memory_request = optional(string)
    cpu_limit      = optional(string)
    memory_limit   = optional(string)
  })
  description = "Requests and limits of the proxy container; unset fields take the module's defaults (100m/256Mi requested, 500m/512Mi limit). Lower requests pack more tenants on a node."
  default     = {}
}

variable "wait_for_rollout" {
  type        = bool
  description = "Wait until the proxy Deployment is rolled out (set false where Pods cannot run, e.g. the test control plane)."
  default     = true
}

variable "knowledge_storage_size" {
  type        = string
  description = "Size of the PersistentVolumeClaim holding the tenant's document index."
  default     = "1Gi"
}

variable "knowledge_storage_access_mode" {
  type        = string
  description = "Access mode of the document volume, fixed when the tenant is first applied: ReadWriteOnce (one proxy replica, which rolls by Recreate) or ReadWriteMany (several replicas; needs a storage class that offers it)."
  default     = "ReadWriteOnce"

  validation {
    condition     = contains(["ReadWriteOnce", "ReadWriteMany"], var.knowledge_storage_access_mode)
    error_message = "knowledge_storage_access_mode: must be ReadWriteOnce or ReadWriteMany."
  }
}

variable "knowledge_storage_class" {
  type        = string
  description = "StorageClass of that claim; null means the cluster default."
  default     = null
}
