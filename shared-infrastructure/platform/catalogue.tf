# The model catalogue, published: ModelCatalogue (llm-tenants.io/v1alpha1) `platform` in this namespace holds
# the catalogue as the gateway serves it (var.models; an openai model is disabled without an API key), every
# name and alias (`served`) and those of the enabled models (`enabled`). Alertmanager's config sync reads it.
#
# Admission, by the API server itself (ValidatingAdmissionPolicy, no webhook to run):
# - a TenantRoute (a tenant's apply) whose models.allowed names anything the catalogue does not serve is
#   refused, naming the tenant, the unknown models and what is served;
# - a catalogue (the platform's apply) that stops serving a model or alias some tenant still names is
#   refused, naming the tenant; one that disables such a model is let through with a warning.
# The order: the CRDs, then the policies; the models' Deployments, Services and NetworkPolicies, then the
# catalogue object, then the bindings (a TenantRoute binding without its catalogue would refuse every tenant)
# and the gateway's config. A model leaving the catalogue is removed only after the catalogue's update
# (models.tf: create_before_destroy), so a refused catalogue leaves its server running.

locals {
  model_catalogue_name = "platform"
  model_catalogue_labels = merge(local.common_labels, {
    "app.kubernetes.io/name"      = "model-catalogue"
    "app.kubernetes.io/component" = "model-catalogue"
  })
  # Every name and alias, and those of the enabled models, sorted (llm_common/catalogue.py: served_names).
  served_models  = sort(distinct(flatten([for name, model in local.catalogue : concat([name], model.aliases)])))
  enabled_models = sort(distinct(flatten([for name, model in local.catalogue : concat([name], model.aliases) if model.enabled])))

  model_name_schema  = { type = "string", maxLength = 128 }
  model_names_schema = { type = "array", maxItems = 2000, items = local.model_name_schema }
  model_catalogue_schema = {
    type        = "object"
    description = "The platform's model catalogue (llm_common/catalogue.py), published by the platform root."
    properties = {
      spec = {
        type     = "object"
        required = ["models", "served", "enabled"]
        properties = {
          models = {
            type        = "object"
            description = "The catalogue: name -> entry (llm_common/catalogue.py: CatalogueModel; unset fields are its defaults)."
            additionalProperties = {
              type     = "object"
              required = ["engine"]
              properties = {
                engine                        = { type = "string", enum = ["vllm", "cpu", "openai"] }
                kind                          = { type = "string", enum = ["chat", "embedding"] }
                source                        = { type = "string", maxLength = 500 }
                served_name                   = local.model_name_schema
                aliases                       = { type = "array", maxItems = 20, items = local.model_name_schema }
                gpus                          = { type = "integer", minimum = 0 }
                max_sequences                 = { type = "integer", minimum = 1 }
                replicas                      = { type = "integer", minimum = 0 }
                context_length                = { type = "integer", minimum = 1 }
                usd_per_million_input_tokens  = { type = "number", minimum = 0 }
                usd_per_million_output_tokens = { type = "number", minimum = 0 }
                dimensions                    = { type = "integer", minimum = 1 }
                enabled                       = { type = "boolean" }
              }
            }
          }
          served  = merge(local.model_names_schema, { description = "Every name and alias, sorted: what a tenant's models.allowed may name." })
          enabled = merge(local.model_names_schema, { description = "The names and aliases of the enabled models, sorted." })
        }
      }
    }
  }

  # What a TenantRoute (or, for the catalogue's policies, each TenantRoute as the parameter) names.
  route_allowed = "has(%s.spec) && has(%s.spec.models) && has(%s.spec.models.allowed) ? %s.spec.models.allowed : []"
  admission_policies = {
    # A tenant's apply: models.allowed names only what the catalogue serves.
    "llm-tenants-tenant-models-served" = {
      paramKind  = { apiVersion = "llm-tenants.io/v1alpha1", kind = "ModelCatalogue" }
      resources  = ["tenantroutes"]
      operations = ["CREATE", "UPDATE"]
      paramRef   = { name = local.model_catalogue_name, namespace = var.namespace, parameterNotFoundAction = "Deny" }
      action     = "Deny"
      variables = [
        { name = "allowed", expression = replace(local.route_allowed, "%s", "object") },
        { name = "unknown", expression = "variables.allowed.filter(m, !(m in params.spec.served))" },
      ]
      validation = {
        expression        = "size(variables.unknown) == 0"
        message           = "models.allowed names a model the platform does not serve (kubectl -n ${var.namespace} get modelcatalogue ${local.model_catalogue_name} -o yaml)."
        messageExpression = "'tenant ' + object.metadata.name + ': models.allowed: ' + variables.unknown.join(', ') + (size(variables.unknown) == 1 ? ' is' : ' are') + ' not served by the platform; served: ' + params.spec.served.join(', ')"
        reason            = "Invalid"
      }
    }
    # The platform's apply: no model or alias some tenant names leaves the catalogue (each TenantRoute is a parameter).
    "llm-tenants-catalogue-keeps-tenant-models" = {
      paramKind  = { apiVersion = "llm-tenants.io/v1alpha1", kind = "TenantRoute" }
      resources  = ["modelcatalogues"]
      operations = ["UPDATE"]
      paramRef   = { namespace = var.namespace, selector = {}, parameterNotFoundAction = "Allow" }
      action     = "Deny"
      variables = [
        { name = "named", expression = replace(local.route_allowed, "%s", "params") },
        { name = "missing", expression = "variables.named.filter(m, !(m in object.spec.served))" },
      ]
      validation = {
        expression        = "size(variables.missing) == 0"
        message           = "the catalogue no longer serves a model a tenant names in models.allowed: move the tenants to other models first."
        messageExpression = "'tenant ' + params.metadata.name + ' names ' + variables.missing.join(', ') + ' (models.allowed), which this catalogue no longer serves: move the tenant to other models (its spec, then its apply) before removing ' + (size(variables.missing) == 1 ? 'it' : 'them')"
        reason            = "Forbidden"
      }
    }
    # ... and disabling one a tenant names is let through, with a warning (kubectl shows it; see the docs for Terraform).
    "llm-tenants-catalogue-disables-tenant-models" = {
      paramKind  = { apiVersion = "llm-tenants.io/v1alpha1", kind = "TenantRoute" }
      resources  = ["modelcatalogues"]
      operations = ["UPDATE"]
      paramRef   = { namespace = var.namespace, selector = {}, parameterNotFoundAction = "Allow" }
      action     = "Warn"
      variables = [
        { name = "named", expression = replace(local.route_allowed, "%s", "params") },
        {
          name       = "disabled"
          expression = "variables.named.filter(m, m in oldObject.spec.enabled && !(m in object.spec.enabled) && m in object.spec.served)"
        },
      ]
      validation = {
        expression        = "size(variables.disabled) == 0"
        message           = "the catalogue disables a model a tenant names in models.allowed: its requests for it get 503 model_disabled."
        messageExpression = "'tenant ' + params.metadata.name + ' names ' + variables.disabled.join(', ') + ' (models.allowed), disabled by this catalogue: its requests for ' + (size(variables.disabled) == 1 ? 'it' : 'them') + ' get 503 model_disabled until enabled again or the tenant moves to other models'"
        reason            = "Forbidden"
      }
    }
  }
}

resource "kubectl_manifest" "model_catalogue_crd" {
  yaml_body = yamlencode({
    apiVersion = "apiextensions.k8s.io/v1"
    kind       = "CustomResourceDefinition"
    metadata   = { name = "modelcatalogues.llm-tenants.io", labels = local.model_catalogue_labels }
    spec = {
      group = "llm-tenants.io"
      scope = "Namespaced"
      names = { plural = "modelcatalogues", singular = "modelcatalogue", kind = "ModelCatalogue", listKind = "ModelCatalogueList" }
      versions = [{
        name                     = "v1alpha1"
        served                   = true
        storage                  = true
        schema                   = { openAPIV3Schema = local.model_catalogue_schema }
        additionalPrinterColumns = [{ name = "Served", type = "string", jsonPath = ".spec.served" }]
      }]
    }
  })
  wait = true
}

# Published once the models it lists run; before the gateway's config names them (gateway.tf).
resource "kubectl_manifest" "model_catalogue" {
  yaml_body = yamlencode({
    apiVersion = "llm-tenants.io/v1alpha1"
    kind       = "ModelCatalogue"
    metadata   = { name = local.model_catalogue_name, namespace = var.namespace, labels = local.model_catalogue_labels }
    spec = {
      # Unset fields left out (the API server would prune a null); readers take CatalogueModel's defaults.
      models  = { for name, model in local.catalogue : name => { for field, value in model : field => value if value != null } }
      served  = local.served_models
      enabled = local.enabled_models
    }
  })
  depends_on = [
    kubectl_manifest.namespace, kubectl_manifest.model_catalogue_crd,
    kubectl_manifest.model_deployments, kubectl_manifest.model_services, kubectl_manifest.model_network_policies,
  ]
}

resource "kubectl_manifest" "admission_policies" {
  for_each = toset(keys(local.admission_policies))

  yaml_body = yamlencode({
    apiVersion = "admissionregistration.k8s.io/v1"
    kind       = "ValidatingAdmissionPolicy"
    metadata   = { name = each.key, labels = local.model_catalogue_labels }
    spec = {
      failurePolicy = "Fail"
      paramKind     = local.admission_policies[each.key].paramKind
      matchConstraints = {
        resourceRules = [{
          apiGroups  = ["llm-tenants.io"], apiVersions = ["*"],
          operations = local.admission_policies[each.key].operations, resources = local.admission_policies[each.key].resources
        }]
      }
      variables   = local.admission_policies[each.key].variables
      validations = [local.admission_policies[each.key].validation]
    }
  })
  depends_on = [kubectl_manifest.tenant_route_crd, kubectl_manifest.model_catalogue_crd]
}

resource "kubectl_manifest" "admission_policy_bindings" {
  for_each = toset(keys(local.admission_policies))

  yaml_body = yamlencode({
    apiVersion = "admissionregistration.k8s.io/v1"
    kind       = "ValidatingAdmissionPolicyBinding"
    metadata   = { name = each.key, labels = local.model_catalogue_labels }
    spec = {
      policyName        = each.key
      validationActions = [local.admission_policies[each.key].action]
      paramRef          = local.admission_policies[each.key].paramRef
      matchResources = {
        namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.namespace } }
      }
    }
  })
  depends_on = [kubectl_manifest.admission_policies, kubectl_manifest.model_catalogue]
}
