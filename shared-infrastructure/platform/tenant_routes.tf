# TenantRoute (llm-tenants.io/v1alpha1): what the gateway knows of a tenant, and where its alerts go.
# Each tenant apply writes one into this namespace (shared-infrastructure/modules/tenant); the gateway
# and Alertmanager's config sync (alertmanager.tf) list them.
#
# A kind of its own rather than labelled Secrets or ConfigMaps: RBAC cannot grant "the Secrets with
# this label", so reading route Secrets meant reading every Secret of the namespace (the ledger's
# DSN, the OpenAI key). The gateway's Role names only `tenantroutes`. A route holds nothing secret
# (the SHA-256 of the tenant's keys, never a key), and the API server checks its shape on apply.

# The schema is generated from the route model (tenant_spec/route.py) by `python -m tenant_spec.generate`:
# a spec field the gateway reads is declared once, in the spec package. Fields it does not name are kept
# (the gateway validates the whole route itself). The models a route names are admitted by the model
# catalogue (catalogue.tf).
locals {
  tenant_route_schema = jsondecode(file("${path.module}/tenant_route_schema.json"))
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
          { name = "Models", type = "string", jsonPath = ".spec.models.allowed" },
          { name = "Default", type = "string", jsonPath = ".spec.models.default" },
        ]
      }]
    }
  })
  wait = true
}
