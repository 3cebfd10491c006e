# The tenant spec (tenants/<name>/tenant.json): its fields, their defaults and their rules.
#
# `spec` is the typed spec; `document` the same JSON as decoded, untyped, for the checks in main.tf.

variable "spec" {
  type = object({
    name          = string
    display_name  = string
    industry      = string
    system_prompt = string
    # The catalogue models (names or aliases) the tenant may use, its default and its fallback
    # (tenant_spec/models.py); the platform's ModelCatalogue admits them at the tenant's apply.
    models = optional(object({
      allowed  = optional(list(string), ["smollm2-135m-instruct"])
      default  = optional(string)
      fallback = optional(string)
    }), {})
    max_tokens = optional(number, 256)
    quota = optional(object({
      cpu    = optional(string, "2")
      memory = optional(string, "4Gi")
      pods   = optional(number, 10)
    }), {})
    rate_limits = optional(object({
      requests_per_minute = optional(number, 60)
      requests_per_hour   = optional(number, 1000)
      tokens_per_minute   = optional(number, 20000)
    }), {})
    monthly_budget_usd      = optional(number)
    monthly_token_budget    = optional(number)
    max_concurrent_requests = optional(number)
    guardrails = optional(object({
      sensitive_patterns = optional(list(object({ name = string, pattern = string })), [])
      refusal_rules      = optional(list(object({ contains = optional(string), regex = optional(string), reason = string })), [])
      blocked_topics     = optional(list(object({ topic = string, keywords = list(string) })), [])
    }), {})
    end_user_key_sha256        = optional(list(string), [])
    admin_key_sha256           = optional(list(string), [])
    allowed_request_extensions = optional(list(string), [])
    local_port                 = optional(number)
    weight                     = optional(number, 1)
    prefix_cache_group         = optional(string)
    # Where the tenant's own alerts go (docs/cluster-operations.md, "Where alerts go"); null: the platform's receivers only. Nothing here
    # chooses which alerts: the route matches this tenant's name.
    alerts = optional(object({
      webhook_urls         = optional(list(string), [])
      email                = optional(list(string), [])
      webhook_token_secret = optional(string)
      severity_min         = optional(string, "warning")
    }))

    # On a cluster only (local mode ignores them).
    proxy = optional(object({
      replicas       = optional(number, 1)
      workers        = optional(number, 2)
      cpu_request    = optional(string, "100m")
      memory_request = optional(string, "256Mi")
      cpu_limit      = optional(string, "500m")
      memory_limit   = optional(string, "512Mi")
    }), {})
    knowledge_storage = optional(object({
      size          = optional(string, "1Gi")
      storage_class = optional(string)
      access_mode   = optional(string, "ReadWriteOnce")
    }), {})
    admin_group                 = optional(string)
    ingress_namespace           = optional(string, "ingress-nginx")
    previous_gateway_key_sha256 = optional(list(string), [])
  })
  description = "The tenant spec; docs/tenant-spec.md documents each field."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.spec.name))
    error_message = "name: must be a DNS-1123 label of at most 40 characters: lower-case letters, digits and '-', starting and ending with a letter or digit."
  }
  validation {
    condition     = !contains(["default", "monitoring"], var.spec.name) && !startswith(var.spec.name, "kube-")
    error_message = "name: 'default', 'monitoring' and 'kube-*' are reserved for the platform."
  }
  validation {
    condition     = length(trimspace(var.spec.display_name)) > 0 && length(var.spec.display_name) <= 100
    error_message = "display_name: must not be blank (at most 100 characters)."
  }
  validation {
    condition     = length(trimspace(var.spec.industry)) > 0 && length(var.spec.industry) <= 60
    error_message = "industry: must not be blank (at most 60 characters)."
  }
  validation {
    condition     = length(trimspace(var.spec.system_prompt)) > 0 && length(var.spec.system_prompt) <= 16384
    error_message = "system_prompt: must not be blank (at most 16384 characters)."
  }
  validation {
    condition = length(var.spec.models.allowed) >= 1 && length(var.spec.models.allowed) <= 50 && alltrue([
      for model in var.spec.models.allowed : can(regex("^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,126}[A-Za-z0-9])?$", model))
    ])
    error_message = "models.allowed: 1 to 50 catalogue model names or aliases, each letters, digits and . _ : / - (starting and ending with a letter or digit, at most 128 characters)."
  }
  validation {
    condition     = length(distinct(var.spec.models.allowed)) == length(var.spec.models.allowed)
    error_message = "models.allowed: each model may be listed once."
  }
  validation {
    condition     = var.spec.models.default == null ? true : contains(var.spec.models.allowed, var.spec.models.default)
    error_message = "models.default: must be one of models.allowed."
  }
  validation {
    condition     = var.spec.models.fallback == null ? true : contains(var.spec.models.allowed, var.spec.models.fallback)
    error_message = "models.fallback: must be one of models.allowed."
  }
  validation {
    condition     = var.spec.models.fallback == null ? true : var.spec.models.fallback != coalesce(var.spec.models.default, try(var.spec.models.allowed[0], "-"))
    error_message = "models.fallback: must differ from the default model (models.default, else the first of models.allowed)."
  }
  validation {
    condition     = var.spec.max_tokens >= 1 && var.spec.max_tokens <= 32768 && floor(var.spec.max_tokens) == var.spec.max_tokens
    error_message = "max_tokens: must be a whole number from 1 to 32768."
  }

  # -- quota and limits
  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?|[0-9]+m)$", var.spec.quota.cpu)) && !can(regex("^[0.]+m?$", var.spec.quota.cpu))
    error_message = "quota.cpu: must be a positive Kubernetes CPU quantity such as '2' or '500m'."
  }
  validation {
    condition     = can(regex("^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", var.spec.quota.memory)) && !can(regex("^0+[A-Za-z]*$", var.spec.quota.memory))
    error_message = "quota.memory: must be a positive Kubernetes memory quantity such as '4Gi' or '512Mi'."
  }
  validation {
    condition     = var.spec.quota.pods >= 1 && var.spec.quota.pods <= 1000 && floor(var.spec.quota.pods) == var.spec.quota.pods
    error_message = "quota.pods: must be a whole number from 1 to 1000."
  }
  validation {
    condition     = alltrue([for value in values(var.spec.rate_limits) : value >= 1 && floor(value) == value])
    error_message = "rate_limits: requests_per_minute, requests_per_hour and tokens_per_minute must be whole numbers >= 1."
  }
  validation {
    condition     = var.spec.monthly_budget_usd == null || try(var.spec.monthly_budget_usd > 0 && var.spec.monthly_budget_usd <= 10000000, false)
    error_message = "monthly_budget_usd: must be > 0 and at most 10000000."
  }
  validation {
    condition     = var.spec.monthly_token_budget == null || try(var.spec.monthly_token_budget >= 1 && var.spec.monthly_token_budget <= 1000000000000 && floor(var.spec.monthly_token_budget) == var.spec.monthly_token_budget, false)
    error_message = "monthly_token_budget: must be a whole number from 1 to 1000000000000."
  }
  validation {
    condition     = var.spec.max_concurrent_requests == null || try(var.spec.max_concurrent_requests >= 1 && var.spec.max_concurrent_requests <= 10000 && floor(var.spec.max_concurrent_requests) == var.spec.max_concurrent_requests, false)
    error_message = "max_concurrent_requests: must be a whole number from 1 to 10000."
  }

  validation {
    condition     = var.spec.weight > 0 && var.spec.weight <= 1000
    error_message = "weight: must be a number above 0 and at most 1000."
  }

  validation {
    condition     = var.spec.prefix_cache_group == null || can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.spec.prefix_cache_group))
    error_message = "prefix_cache_group: must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)."
  }

  validation {
    condition = var.spec.alerts == null || try(
      length(var.spec.alerts.webhook_urls) <= 10 && length(var.spec.alerts.email) <= 10 &&
      alltrue([for url in var.spec.alerts.webhook_urls : can(regex("^https?://[^/@\\s]+(/\\S*)?$", url))]) &&
      alltrue([for address in var.spec.alerts.email : can(regex("^[^@\\s<>,]+@[^@\\s<>,]+\\.[^@\\s<>,]+$", address))]) &&
      contains(["warning", "critical"], var.spec.alerts.severity_min) &&
      (var.spec.alerts.webhook_token_secret == null || can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.spec.alerts.webhook_token_secret))),
    false)
    error_message = "alerts: at most 10 webhook_urls (http/https, no credentials in the URL: use webhook_token_secret) and 10 plain e-mail addresses; severity_min warning or critical; webhook_token_secret a Secret name."
  }
  validation {
    condition     = var.spec.local_port == null || try(var.spec.local_port >= 1024 && var.spec.local_port <= 65535 && floor(var.spec.local_port) == var.spec.local_port, false)
    error_message = "local_port: must be a whole number from 1024 to 65535."
  }

  # -- what the proxy enforces (app/guardrails.py, app/end_user_keys.py, app/admin_keys.py)
  validation {
    condition = alltrue(concat(
      [for pattern in var.spec.guardrails.sensitive_patterns : length(pattern.name) >= 1 && length(pattern.name) <= 100 && length(pattern.pattern) >= 1 && length(pattern.pattern) <= 1000],
      [for rule in var.spec.guardrails.refusal_rules : (rule.contains == null) != (rule.regex == null) && length(rule.reason) >= 1 && length(rule.reason) <= 500 && length(coalesce(rule.contains, rule.regex, "?")) <= 1000 && length(coalesce(rule.contains, rule.regex, "?")) >= 1],
      [for topic in var.spec.guardrails.blocked_topics : length(topic.topic) >= 1 && length(topic.topic) <= 100 && length(topic.keywords) >= 1 && length(topic.keywords) <= 100 && alltrue([for k in topic.keywords : length(trimspace(k)) > 0])],
      [for rules in values(var.spec.guardrails) : length(rules) <= 100],
    ))
    error_message = "guardrails: each refusal rule needs exactly one of contains and regex, and a reason; each blocked topic at least one keyword, none blank; at most 100 entries per list; names, topics and keywords 1-100 characters, patterns 1-1000, reasons 1-500."
  }
  validation {
    condition = alltrue(concat(
      [for rule in var.spec.guardrails.refusal_rules : rule.regex == null || can(regexall(coalesce(rule.regex, "x"), ""))],
      [for pattern in var.spec.guardrails.sensitive_patterns : can(regexall(pattern.pattern, ""))],
    ))
    error_message = "guardrails: every pattern and regex must be a valid RE2 regular expression (the proxy matches them in linear time with RE2): no look-arounds, no back-references."
  }
  validation {
    condition     = length(var.spec.end_user_key_sha256) <= 20 && alltrue([for digest in var.spec.end_user_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "end_user_key_sha256: at most 20 entries, each a lower-case hex SHA-256 digest."
  }
  validation {
    condition     = length(var.spec.admin_key_sha256) <= 20 && alltrue([for digest in var.spec.admin_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))])
    error_message = "admin_key_sha256: at most 20 entries, each a lower-case hex SHA-256 digest."
  }
  validation {
    # The gateway's list: ALLOWABLE_EXTENSIONS in llm_common/request_contract.py (a test compares them).
    condition = length(var.spec.allowed_request_extensions) <= 50 && length(distinct(var.spec.allowed_request_extensions)) == length(var.spec.allowed_request_extensions) && alltrue([
      for name in var.spec.allowed_request_extensions : contains([
        "grammar", "guided_choice", "guided_decoding_backend", "guided_grammar", "guided_json", "guided_regex",
        "guided_whitespace_pattern", "ignore_eos", "include_stop_str_in_output", "length_penalty", "min_p",
        "min_tokens", "mirostat_eta", "mirostat_mode", "mirostat_tau", "repeat_penalty", "repetition_penalty",
        "skip_special_tokens", "spaces_between_special_tokens", "stop_token_ids", "top_k", "typical_p",
      ], name)
    ])
    error_message = "allowed_request_extensions: each entry must be a known backend extension, listed once (see llm_common/request_contract.py: ALLOWABLE_EXTENSIONS); fields that can change the prompt, such as chat_template, are never allowed."
  }

  # -- on a cluster
  validation {
    condition     = var.spec.proxy.replicas >= 0 && var.spec.proxy.replicas <= 100 && floor(var.spec.proxy.replicas) == var.spec.proxy.replicas && var.spec.proxy.workers >= 1 && var.spec.proxy.workers <= 32 && floor(var.spec.proxy.workers) == var.spec.proxy.workers
    error_message = "proxy: replicas must be a whole number from 0 to 100, workers from 1 to 32."
  }
  validation {
    condition     = alltrue([for field in ["cpu_request", "cpu_limit"] : can(regex("^([0-9]+(\\.[0-9]+)?|[0-9]+m)$", var.spec.proxy[field]))]) && alltrue([for field in ["memory_request", "memory_limit"] : can(regex("^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", var.spec.proxy[field]))])
    error_message = "proxy: cpu_request and cpu_limit must be Kubernetes CPU quantities such as '100m', memory_request and memory_limit memory quantities such as '256Mi'."
  }
  validation {
    condition     = contains(["ReadWriteOnce", "ReadWriteMany"], var.spec.knowledge_storage.access_mode) && can(regex("^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", var.spec.knowledge_storage.size))
    error_message = "knowledge_storage: access_mode must be ReadWriteOnce or ReadWriteMany, size a Kubernetes memory quantity such as '1Gi'."
  }
  validation {
    condition     = var.spec.proxy.replicas <= 1 || var.spec.knowledge_storage.access_mode == "ReadWriteMany"
    error_message = "knowledge_storage.access_mode: more than one proxy replica needs ReadWriteMany storage (every replica mounts the same index)."
  }
  validation {
    condition     = alltrue([for digest in var.spec.previous_gateway_key_sha256 : can(regex("^[0-9a-f]{64}$", digest))]) && length(var.spec.previous_gateway_key_sha256) <= 20
    error_message = "previous_gateway_key_sha256: at most 20 entries, each a lower-case hex SHA-256 digest."
  }
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.spec.ingress_namespace)) && (var.spec.admin_group == null || try(length(trimspace(var.spec.admin_group)) > 0 && length(var.spec.admin_group) <= 253, false))
    error_message = "ingress_namespace: must be a DNS-1123 label; admin_group: must not be blank (at most 253 characters)."
  }
}

variable "document" {
  type        = any
  description = "The spec's JSON exactly as decoded (jsondecode of tenant.json): main.tf checks it for unknown fields and wrong JSON types."

  validation {
    condition     = can(keys(var.document))
    error_message = "the tenant spec must be a JSON object."
  }
  # An older spec's backend, model and openai_model, told apart from a misspelt field: what to write instead.
  validation {
    condition     = length(setintersection(try(keys(var.document), []), ["backend", "model", "openai_model"])) == 0
    error_message = "models: backend, model and openai_model were replaced by models (catalogue names the tenant may use); this spec reads as \"models\": ${try(var.document.backend, "auto") == "openai" ? jsonencode({ allowed = [try(var.document.openai_model, "gpt-4o-mini")] }) : try(var.document.backend, "auto") == "vllm" ? jsonencode({ allowed = [try(var.document.model, "smollm2-135m-instruct")] }) : jsonencode({ allowed = [try(var.document.model, "smollm2-135m-instruct"), try(var.document.openai_model, "gpt-4o-mini")], fallback = try(var.document.openai_model, "gpt-4o-mini") })} (docs/tenant-spec.md)."
  }
}
