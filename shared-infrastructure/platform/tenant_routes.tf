# TenantRoute (llm-tenants.io/v1alpha1): what the gateway knows of a tenant, and where its alerts go.
# Each tenant apply writes one into this namespace (shared-infrastructure/modules/tenant); the gateway
# and Alertmanager's config sync (alertmanager.tf) list them.
#
# A kind of its own rather than labelled Secrets or ConfigMaps: RBAC cannot grant "the Secrets with
# this label", so reading route Secrets meant reading every Secret of the namespace (the ledger's
# DSN, the OpenAI key). The gateway's Role names only `tenantroutes`. A route holds nothing secret
# (the SHA-256 of the tenant's keys, never a key), and the API server checks its shape on apply.

locals {
  tenant_route_schema = {
    type     = "object"
    required = ["spec"]
    properties = {
      spec = {
        type     = "object"
        required = ["backend", "model", "key_sha256"]
        # Fields this schema does not name are kept: the gateway validates the whole route itself.
        "x-kubernetes-preserve-unknown-fields" = true
        properties = {
          backend      = { type = "string", enum = ["openai", "vllm", "auto"] }
          model        = { type = "string", minLength = 1 }
          openai_model = { type = "string", minLength = 1 }
          max_tokens   = { type = "integer", minimum = 1 }
          key_sha256 = {
            type     = "array"
            minItems = 1
            items    = { type = "string", pattern = "^[0-9a-f]{64}$" }
          }
          rate_limits             = { type = "object", "x-kubernetes-preserve-unknown-fields" = true }
          monthly_token_budget    = { type = "integer", minimum = 1 }
          monthly_budget_usd      = { type = "number", exclusiveMinimum = true, minimum = 0 }
          max_concurrent_requests = { type = "integer", minimum = 1 }
          weight                  = { type = "number", exclusiveMinimum = true, minimum = 0, maximum = 1000 }
          prefix_cache_group      = { type = "string", pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" }
          allowed_request_extensions = {
            type  = "array"
            items = { type = "string", minLength = 1 }
          }
          # Where the tenant's alerts go (alertmanager.tf; llm_common/alert_routing.py validates the rest).
          alerts = {
            type = "object"
            properties = {
              webhook_urls         = { type = "array", maxItems = 10, items = { type = "string", pattern = "^https?://" } }
              email                = { type = "array", maxItems = 10, items = { type = "string", minLength = 3 } }
              webhook_token_secret = { type = "string", minLength = 1 }
              severity_min         = { type = "string", enum = ["warning", "critical"] }
            }
          }
        }
      }
    }
  }
}

resource "kubectl_manifest" "tenant_route_crd" {
  yaml_body = yamlencode({
    apiVersion = "apiextensions.k8s.io/v1"
    kind       = "CustomResourceDefinition"
    metadata   = { name = "tenantroutes.llm-tenants.io", labels = local.common_labels }
    spec = {
      group = "llm-tenants.io"
      scope = "Namespaced"
      names = { plural = "tenantroutes", singular = "tenantroute", kind = "TenantRoute", listKind = "TenantRouteList" }
      versions = [{
        name    = "v1alpha1"
        served  = true
        storage = true
        schema  = { openAPIV3Schema = local.tenant_route_schema }
        additionalPrinterColumns = [
          { name = "Backend", type = "string", jsonPath = ".spec.backend" },
          { name = "Model", type = "string", jsonPath = ".spec.model" },
        ]
      }]
    }
  })
  wait = true
}
