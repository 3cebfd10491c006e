# The shared LLM gateway. It learns tenants from the labelled route Secrets each tenant apply
# writes into this namespace (key hashes only), so it needs no rights outside it.

locals {
  gateway_name     = "llm-gateway"
  gateway_port     = 8080
  gateway_metrics  = 9464 # /metrics only here (METRICS_PORT); only Prometheus may reach it
  gateway_selector = { "app.kubernetes.io/name" = local.gateway_name }
  gateway_labels   = merge(local.common_labels, local.gateway_selector, { "app.kubernetes.io/component" = "gateway" })
  openai_enabled   = nonsensitive(var.openai.api_key != "")

  gateway_config = merge(
    {
      tenant_discovery = {
        namespace       = var.namespace
        label_selector  = "llm-tenants.io/gateway-route=true"
        refresh_seconds = 10
      }
      # Rate limits and budgets (redis.tf); the ledger's DSN comes from a Secret (ledger.tf).
      limits = { redis_url = local.redis_url, on_redis_error = var.limits.on_redis_error }
    },
    var.vllm.enabled ? {
      pool = {
        endpoints   = ["http://${local.vllm_name}.${var.namespace}.svc.cluster.local:${local.vllm_port}"]
        health_path = "/health"
      }
    } : {},
    local.openai_enabled ? {
      openai = { base_url = nonsensitive(var.openai.base_url) }
      # Tenant knowledge: one embedding model for every tenant (app/knowledge, README "The embedding model").
      embeddings = { backend = "openai", model = nonsensitive(var.openai.embedding_model) }
    } : {},
  )
}

module "gateway_identity" {
  source = "../modules/service-identity"

  name      = local.gateway_name
  namespace = var.namespace
  labels    = local.gateway_labels
  rules     = [{ apiGroups = [""], resources = ["secrets"], verbs = ["get", "list", "watch"] }]

  depends_on = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "gateway_config" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "${local.gateway_name}-config", namespace = var.namespace, labels = local.gateway_labels }
    data       = { "gateway.json" = jsonencode(local.gateway_config) }
  })
  depends_on = [kubectl_manifest.namespace]

  lifecycle {
    precondition {
      condition     = var.vllm.enabled || local.openai_enabled
      error_message = "vllm.enabled is false and openai.api_key is empty: the gateway needs at least one backend."
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
          labels      = local.gateway_labels
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.gateway_metrics) })
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
            command = ["gunicorn", "-c", "python:llm_common.gunicorn_conf", "llm_gateway:build_from_environment()"]
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
              requests = { cpu = "250m", memory = "256Mi" }
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
  depends_on       = [kubectl_manifest.gateway_config, kubectl_manifest.openai_key, kubectl_manifest.ledger_dsn]
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
