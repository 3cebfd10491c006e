# The GPU vLLM pool: OpenAI-compatible servers behind one Service the gateway calls.

locals {
  vllm_name     = "vllm"
  vllm_port     = 8000
  vllm_selector = { "app.kubernetes.io/name" = local.vllm_name }
  vllm_labels   = merge(local.common_labels, local.vllm_selector, { "app.kubernetes.io/component" = "model-pool" })
}

resource "kubectl_manifest" "vllm_deployment" {
  count = var.vllm.enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.vllm_name, namespace = var.namespace, labels = local.vllm_labels }
    spec = {
      replicas = var.vllm.replicas
      selector = { matchLabels = local.vllm_selector }
      template = {
        metadata = {
          labels      = local.vllm_labels
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.vllm_port) })
        }
        spec = {
          nodeSelector = var.vllm.node_selector
          tolerations  = [for t in var.vllm.tolerations : { for k, v in t : k => v if v != null }]
          containers = [{
            name  = "vllm"
            image = var.vllm.image
            args = concat(
              ["--model", var.vllm.model, "--served-model-name", var.vllm.served_model, "--port", tostring(local.vllm_port)],
              var.vllm.extra_args,
            )
            ports = [{ name = "http", containerPort = local.vllm_port }]
            resources = {
              requests = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(var.vllm.gpus) }
              limits   = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(var.vllm.gpus) }
            }
            # Loading a model takes minutes: the startup probe allows 20 minutes before liveness applies.
            startupProbe   = { httpGet = { path = "/health", port = "http" }, periodSeconds = 10, failureThreshold = 120 }
            readinessProbe = { httpGet = { path = "/health", port = "http" }, periodSeconds = 5 }
            livenessProbe  = { httpGet = { path = "/health", port = "http" }, periodSeconds = 15, failureThreshold = 4 }
            volumeMounts = [
              { name = "shm", mountPath = "/dev/shm" },
              { name = "cache", mountPath = "/root/.cache" },
            ]
          }]
          volumes = [
            { name = "shm", emptyDir = { medium = "Memory", sizeLimit = "2Gi" } },
            { name = "cache", emptyDir = {} },
          ]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "vllm_service" {
  count = var.vllm.enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.vllm_name, namespace = var.namespace, labels = local.vllm_labels }
    spec = {
      selector = local.vllm_selector
      ports    = [{ name = "http", port = local.vllm_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# Only the gateway (and Prometheus) talk to the pool.
resource "kubectl_manifest" "vllm_network_policy" {
  count = var.vllm.enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${local.vllm_name}-ingress", namespace = var.namespace, labels = local.vllm_labels }
    spec = {
      podSelector = { matchLabels = local.vllm_selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from = [
          { podSelector = { matchLabels = local.gateway_selector } },
          { podSelector = { matchLabels = local.prometheus_selector } },
        ]
        ports = [{ protocol = "TCP", port = local.vllm_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
