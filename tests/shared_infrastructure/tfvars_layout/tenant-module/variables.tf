# Inputs of one tenant. The tenant's spec file (tenants/<name>/terraform.tfvars.json) is
# validated field by field in the tenant root; the checks here protect every other caller.

variable "name" {
  type        = string
  description = "Tenant name: a DNS-1123 label of at most 40 characters. Also the namespace name and the `tenant` label of its metrics."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "name: must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric) of at most 40 characters."
  }
  validation {
    condition     = !contains(["default", "monitoring", "kube-system", "kube-public", "kube-node-lease"], var.name) && !startswith(var.name, "kube-")
    error_message = "name: must not be a namespace the platform or Kubernetes uses (default, monitoring, kube-*)."
  }
}

variable "display_name" {
  type        = string
  description = "Human-readable tenant name, shown in the dashboard title and labels."
}

variable "industry" {
  type        = string
  description = "The tenant's industry, recorded as a namespace annotation."
}

variable "system_prompt" {
  type        = string
  description = "The tenant's system prompt; the proxy puts it before every conversation."

  validation {
    condition     = length(trimspace(var.system_prompt)) > 0
    error_message = "system_prompt: must not be empty."
  }
}

variable "route" {
  type = object({
    backend      = string
    model        = string
    openai_model = string
    max_tokens   = number

    allowed_request_extensions = optional(list(string), [])
  })
  description = "How the shared gateway serves this tenant: backend (openai, vllm or auto = vLLM with OpenAI failover), model names, the max_tokens cap, and the backend-specific request fields it passes on (allowed_request_extensions)."

  validation {
    condition     = contains(["openai", "vllm", "auto"], var.route.backend)
    error_message = "backend: must be one of openai, vllm, auto."
  }
  validation {
    condition     = var.route.max_tokens >= 1 && floor(var.route.max_tokens) == var.route.max_tokens
    error_message = "max_tokens: must be a positive whole number."
  }
  validation {
    # Keep in step with ALLOWABLE_EXTENSIONS in llm_common/request_contract.py (a test compares them).
    condition = length(distinct(var.route.allowed_request_extensions)) == length(var.route.allowed_request_extensions) && alltrue([
      for name in var.route.allowed_request_extensions : contains([
        "grammar", "guided_choice", "guided_decoding_backend", "guided_grammar", "guided_json", "guided_regex",
        "guided_whitespace_pattern", "ignore_eos", "include_stop_str_in_output", "length_penalty", "min_p",
        "min_tokens", "mirostat_eta", "mirostat_mode", "mirostat_tau", "repeat_penalty", "repetition_penalty",
        "skip_special_tokens", "spaces_between_special_tokens", "stop_token_ids", "top_k", "typical_p",
      ], name)
    ])
    error_message = "allowed_request_extensions: each entry must be a known backend extension, listed once (see llm_common/request_contract.py: ALLOWABLE_EXTENSIONS); fields that can change the prompt, such as chat_template, are never allowed."
  }
}

variable "limits" {
  type = object({
    rate_limits = object({
      requests_per_minute = number
      requests_per_hour   = number
      tokens_per_minute   = number
    })
    monthly_token_budget = optional(number)
    monthly_budget_usd   = optional(number)

    max_concurrent_requests = optional(number)
  })
  description = "What the shared gateway enforces for this tenant (written into its route): rate limits, monthly budgets in tokens and in estimated US dollars (null: no budget), and requests in progress at once (null: no limit)."

  validation {
    condition     = alltrue([for value in values(var.limits.rate_limits) : value >= 1 && floor(value) == value])
    error_message = "rate_limits: requests_per_minute, requests_per_hour and tokens_per_minute must be whole numbers >= 1."
  }
  validation {
    condition     = var.limits.monthly_token_budget == null || try(var.limits.monthly_token_budget >= 1 && floor(var.limits.monthly_token_budget) == var.limits.monthly_token_budget, false)
    error_message = "monthly_token_budget: must be a whole number >= 1 (or null)."
  }
  validation {
    condition     = var.limits.monthly_budget_usd == null || try(var.limits.monthly_budget_usd > 0, false)
    error_message = "monthly_budget_usd: must be > 0 (or null)."
  }
  validation {
    condition     = var.limits.max_concurrent_requests == null || try(var.limits.max_concurrent_requests >= 1 && floor(var.limits.max_concurrent_requests) == var.limits.max_concurrent_requests, false)
    error_message = "max_concurrent_requests: must be a whole number >= 1 (or null)."
  }
}

variable "previous_gateway_key_sha256" {
  type        = list(string)
  description = "SHA-256 of earlier gateway keys the gateway still accepts, for a rotation without downtime: put the current key's hash (output gateway_key_sha256) here, replace the key, and remove the hash once every proxy runs with the new key."
  default     = []

  validation {
    condition     = alltrue([for digest in var.previous_gateway_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "previous_gateway_key_sha256: each entry must be a lower-case hex SHA-256 digest."
  }
}

variable "proxy_policy" {
  type = object({
    guardrails = object({
      sensitive_patterns = list(object({ name = string, pattern = string }))
      refusal_rules      = list(object({ contains = optional(string), regex = optional(string), reason = string }))
      blocked_topics     = list(object({ topic = string, keywords = list(string) }))
    })
    end_user_key_sha256 = list(string)
    admin_key_sha256    = optional(list(string), [])
  })
  description = "What the tenant proxy enforces itself (app/guardrails.py, app/end_user_keys.py, app/admin_keys.py): guardrails, the SHA-256 of end-user API keys (empty: none required) and of tenant admin keys (empty: nobody may change documents)."

  validation {
    condition     = alltrue([for rule in var.proxy_policy.guardrails.refusal_rules : (rule.contains == null) != (rule.regex == null)])
    error_message = "guardrails.refusal_rules: set exactly one of contains and regex in each rule."
  }
  validation {
    condition = alltrue(concat(
      [for rule in var.proxy_policy.guardrails.refusal_rules : rule.regex == null || can(regexall(coalesce(rule.regex, "x"), ""))],
      [for pattern in var.proxy_policy.guardrails.sensitive_patterns : can(regexall(pattern.pattern, ""))],
    ))
    error_message = "guardrails: every pattern and regex must be a valid RE2 regular expression (the proxy matches them in linear time with RE2): no look-arounds, no back-references."
  }
  validation {
    condition     = alltrue([for digest in var.proxy_policy.end_user_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "end_user_key_sha256: each entry must be a lower-case hex SHA-256 digest."
  }
  validation {
    condition     = alltrue([for digest in var.proxy_policy.admin_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "admin_key_sha256: each entry must be a lower-case hex SHA-256 digest."
  }
}

variable "quota" {
  type = object({
    cpu    = string
    memory = string
    pods   = number
  })
  description = "ResourceQuota of the tenant namespace: total CPU and memory (requests and limits, Kubernetes quantities) and the number of Pods."
}

variable "admin_group" {
  type        = string
  description = "Identity-provider group whose members administer the tenant's namespace (and nothing else)."
}

variable "ingress_namespace" {
  type        = string
  description = "Namespace of the ingress controller allowed to reach the tenant proxy."
}

variable "gateway" {
  type = object({
    namespace  = string
    service    = string
    port       = number
    pod_labels = map(string)
  })
  description = "The shared gateway the proxy may reach (the only egress besides DNS)."
}

variable "proxy" {
  type = object({
    image            = string
    replicas         = optional(number, 1)
    workers          = optional(number, 2)
    cpu_request      = optional(string, "100m")
    memory_request   = optional(string, "256Mi")
    cpu_limit        = optional(string, "500m")
    memory_limit     = optional(string, "512Mi")
    wait_for_rollout = optional(bool, true)
  })
  description = "The tenant proxy Deployment: image, replicas, gunicorn workers, per-container requests and limits (null: the defaults here), and whether apply waits for the rollout (set false where Pods cannot run)."

  validation {
    condition     = var.proxy.replicas >= 0 && var.proxy.workers >= 1
    error_message = "proxy.replicas must be >= 0 and proxy.workers >= 1."
  }
}

variable "container_defaults" {
  type = object({
    cpu_request    = string
    memory_request = string
    cpu_limit      = string
    memory_limit   = string
  })
  description = "LimitRange defaults for containers in the tenant namespace that declare no resources (the quota requires every Pod to have them)."
}

variable "knowledge_storage" {
  type = object({
    size          = string
    storage_class = optional(string)
    access_mode   = optional(string, "ReadWriteOnce")
  })
  description = "PersistentVolumeClaim holding the tenant's document index, mounted in the proxy at /var/lib/tenant-proxy/knowledge. The access mode is fixed by the first apply (a claim's access mode cannot change): ReadWriteOnce rolls the proxy by Recreate, ReadWriteMany allows several replicas and rolling updates."

  validation {
    condition     = contains(["ReadWriteOnce", "ReadWriteMany"], var.knowledge_storage.access_mode)
    error_message = "knowledge_storage.access_mode: must be ReadWriteOnce or ReadWriteMany."
  }
  validation {
    condition     = var.proxy.replicas <= 1 || var.knowledge_storage.access_mode == "ReadWriteMany"
    error_message = "knowledge_storage.access_mode: more than one proxy replica needs ReadWriteMany storage (every replica mounts the same index)."
  }
}

variable "prometheus_pod_labels" {
  type        = map(string)
  description = "Labels of the Prometheus Pods in the monitoring namespace: the only Pods there that may reach the proxy."
  default     = { "app.kubernetes.io/name" = "prometheus" }
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of the gateway, Prometheus and Grafana. The tenant writes its key hash and its dashboard there."
}

variable "dashboard_json" {
  type        = string
  description = "Grafana dashboard JSON for this tenant (dashboards/generated/tenant-template.json with __TENANT__ replaced)."
}

variable "labels" {
  type        = map(string)
  description = "Extra labels added to every object."
  default     = {}
}
