# One tenant, as a Terraform root: copy this directory to tenants/<name>/, edit
# terraform.tfvars.json (the tenant spec), then `terraform -chdir=tenants/<name> init` and `apply`.
# Every resource lives in the shared module, so a fix there reaches all tenants.

provider "kubectl" {
  config_path      = var.kubeconfig_path
  config_context   = var.kube_context
  load_config_file = true
}

module "tenant" {
  source = "../../shared-infrastructure/modules/tenant"

  name          = var.name
  display_name  = var.display_name
  industry      = var.industry
  system_prompt = var.system_prompt
  route = {
    backend      = var.backend
    model        = var.model
    openai_model = var.openai_model
    max_tokens   = var.max_tokens

    allowed_request_extensions = var.allowed_request_extensions
  }
  limits = {
    rate_limits             = var.rate_limits
    monthly_token_budget    = var.monthly_token_budget
    monthly_budget_usd      = var.monthly_budget_usd
    max_concurrent_requests = var.max_concurrent_requests
  }
  previous_gateway_key_sha256 = var.previous_gateway_key_sha256
  proxy_policy = {
    guardrails          = var.guardrails
    end_user_key_sha256 = var.end_user_key_sha256
    admin_key_sha256    = var.admin_key_sha256
  }
  quota             = var.quota
  admin_group       = coalesce(var.admin_group, "${var.name}-admins")
  ingress_namespace = var.ingress_namespace
  gateway = {
    namespace  = var.monitoring_namespace
    service    = "llm-gateway"
    port       = 8080
    pod_labels = { "app.kubernetes.io/name" = "llm-gateway" }
  }
  proxy = merge(var.proxy_resources, {
    image            = var.proxy_image
    replicas         = var.proxy_replicas
    workers          = var.proxy_workers
    wait_for_rollout = var.wait_for_rollout
  })
  container_defaults = {
    cpu_request    = "100m"
    memory_request = "128Mi"
    cpu_limit      = "500m"
    memory_limit   = "512Mi"
  }
  knowledge_storage = {
    size          = var.knowledge_storage_size
    storage_class = var.knowledge_storage_class
    access_mode   = var.knowledge_storage_access_mode
  }
  monitoring_namespace = var.monitoring_namespace
  dashboard_json       = replace(file("${path.module}/../../dashboards/generated/tenant-template.json"), "__TENANT__", var.name)
}
