# The shared LLM gateway. It learns tenants from the TenantRoute objects each tenant apply writes
# into this namespace (key hashes only, see tenant_routes.tf), the models it serves from its config (the
# catalogue, var.models) and each self-hosted model's servers from the EndpointSlices of its headless
# Service (models.tf): it may read those two kinds of object in its own namespace, and nothing else.

locals {
  gateway_name     = "llm-gateway"
  gateway_port     = 8080
  gateway_metrics  = 9464 # /metrics only here (METRICS_PORT); only Prometheus may reach it
  gateway_selector = { "app.kubernetes.io/name" = local.gateway_name }
  gateway_labels   = merge(local.common_labels, local.gateway_selector, { "app.kubernetes.io/component" = "gateway" })
  openai_enabled   = nonsensitive(var.openai.api_key != "")

  # llm_gateway/config.py: GatewayConfig.
  gateway_config = merge(
    {
      # A new tenant's key works within this many seconds of its apply (one list of TenantRoutes).
      tenant_discovery = {
        namespace       = var.namespace
        refresh_seconds = 2
      }
      # Rate limits and budgets (redis.tf); the ledger's DSN comes from a Secret (ledger.tf).
      limits = { redis_url = local.redis_url, on_redis_error = var.limits.on_redis_error }
      # The catalogue, every field of each entry (llm_common/catalogue.py: CatalogueModel). Every gateway
      # process of every replica shares each model's max_sequences x ready replicas through Redis.
      models = local.catalogue
      # A self-hosted model's servers: the ready Pods behind its headless Service, re-read every few seconds.
      pools = { for name, server in local.model_servers : name => {
        discovery   = { namespace = var.namespace, service = server.service, port_name = "http", refresh_seconds = 5 }
        health_path = "/health"
      } }
    },
    local.openai_enabled ? { openai = { base_url = nonsensitive(var.openai.base_url) } } : {},
  )
}

module "gateway_identity" {
  source = "../modules/service-identity"

  name      = local.gateway_name
  namespace = var.namespace
  labels    = local.gateway_labels
  rules = [
    { apiGroups = ["llm-tenants.io"], resources = ["tenantroutes"], verbs = ["get", "list", "watch"] },
    { apiGroups = ["discovery.k8s.io"], resources = ["endpointslices"], verbs = ["get", "list", "watch"] },
  ]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "gateway_config" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.gateway_name}-config", namespace = var.namespace, labels = local.gateway_labels }
    data       = { "gateway.json" = jsonencode(local.gateway_config) }
  })
  # After the catalogue is published: a catalogue the admission policies refuse (a model tenants still name
  # removed) stops the apply before the gateway is told of it.
  depends_on = [kubectl_manifest.namespace, kubectl_manifest.model_catalogue]

  lifecycle {
    precondition {
      condition     = anytrue([for model in values(local.catalogue) : model.enabled && model.kind == "chat"])
      error_message = "models: no enabled chat model (an openai model is enabled only with openai.api_key): the gateway would answer nothing."
    }
  }
}

resource "kubectl_manifest" "openai_key" {
  count = local.openai_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "openai-api-key", namespace = var.namespace, labels = local.gateway_labels }
    type       = "Opaque"
    data       = { api_key = base64encode(var.openai.api_key) }
  })
  sensitive_fields = ["data"]
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "gateway_deployment" {
  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.gateway_name, namespace = var.namespace, labels = local.gateway_labels }
    spec = {
      replicas = var.gateway.replicas
      selector = { matchLabels = local.gateway_selector }
      template = {
        metadata = {
          labels = local.gateway_labels
          annotations = merge(local.scrape_annotations, {
            "prometheus.io/port" = tostring(local.gateway_metrics)
            # The gateway reads its config once: a change rolls the Pods.
            "llm-tenants.io/config-sha256" = sha256(jsonencode(local.gateway_config))
          })
        }
        spec = {
          serviceAccountName = module.gateway_identity.service_account
          securityContext = {
            runAsNonRoot   = true
            runAsUser      = 10001
            runAsGroup     = 10001
            seccompProfile = { type = "RuntimeDefault" }
          }
          containers = [{
            name    = "gateway"
            image   = var.platform_image
            command = ["gunicorn", "-c", "python:llm_gateway.gunicorn_conf", "llm_gateway:build_from_environment()"]
            ports   = [{ name = "http", containerPort = local.gateway_port }, { name = "metrics", containerPort = local.gateway_metrics }]
            env = concat(
              [
                { name = "LLM_GATEWAY_CONFIG", value = "/etc/llm-gateway/gateway.json" },
                { name = "BIND", value = "0.0.0.0:${local.gateway_port}" },
                { name = "METRICS_PORT", value = tostring(local.gateway_metrics) },
                { name = "WEB_CONCURRENCY", value = tostring(var.gateway.workers) },
                { name = "PROMETHEUS_MULTIPROC_DIR", value = "/tmp/metrics" },
                { name = "LLM_LEDGER_URL_FILE", value = "/etc/llm-gateway/ledger/dsn" },
              ],
              local.openai_enabled ? [{ name = "OPENAI_API_KEY_FILE", value = "/etc/llm-gateway/openai/api_key" }] : [],
            )
            resources = {
              requests = { cpu = var.gateway.cpu_request, memory = var.gateway.memory_request }
              limits   = { cpu = "2", memory = "1Gi" }
            }
            readinessProbe  = { httpGet = { path = "/readyz", port = "http" }, periodSeconds = 5 }
            livenessProbe   = { httpGet = { path = "/healthz", port = "http" }, periodSeconds = 10 }
            securityContext = local.restricted_container_security
            volumeMounts = concat(
              [
                { name = "config", mountPath = "/etc/llm-gateway", readOnly = true },
                { name = "ledger", mountPath = "/etc/llm-gateway/ledger", readOnly = true },
                { name = "tmp", mountPath = "/tmp" },
              ],
              local.openai_enabled ? [{ name = "openai", mountPath = "/etc/llm-gateway/openai", readOnly = true }] : [],
            )
          }]
          volumes = concat(
            [
              { name = "config", configMap = { name = "${local.gateway_name}-config" } },
              { name = "ledger", secret = { secretName = "llm-gateway-ledger" } },
              { name = "tmp", emptyDir = { medium = "Memory", sizeLimit = "64Mi" } },
            ],
            local.openai_enabled ? [{ name = "openai", secret = { secretName = "openai-api-key" } }] : [],
          )
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on = [
    kubectl_manifest.gateway_config, kubectl_manifest.openai_key, kubectl_manifest.ledger_dsn, kubectl_manifest.tenant_route_crd,
  ]
}

resource "kubectl_manifest" "gateway_service" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.gateway_name, namespace = var.namespace, labels = local.gateway_labels }
    spec = {
      selector = local.gateway_selector
      ports    = [{ name = "http", port = local.gateway_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# Tenant namespaces and this one may call the gateway's API; only Prometheus may read its metrics
# (every tenant's usage and remaining budget), which it serves on their own port.
resource "kubectl_manifest" "gateway_network_policy" {
  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${local.gateway_name}-ingress", namespace = var.namespace, labels = local.gateway_labels }
    spec = {
      podSelector = { matchLabels = local.gateway_selector }
      policyTypes = ["Ingress"]
      ingress = [
        {
          from = [
            { namespaceSelector = { matchExpressions = [{ key = "llm-tenants.io/tenant", operator = "Exists" }] } },
            { podSelector = {} },
          ]
          ports = [{ protocol = "TCP", port = local.gateway_port }]
        },
        {
          from  = [{ podSelector = { matchLabels = local.prometheus_selector } }]
          ports = [{ protocol = "TCP", port = local.gateway_metrics }]
        },
      ]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
