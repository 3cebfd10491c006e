# Redis: the gateway's rate limit and budget counters, shared by every gateway replica and
# worker (llm_gateway/limits.py). Nothing is persisted: budget counters are reloaded from the
# usage ledger when Redis starts empty, rate limit windows last a minute or an hour.

locals {
  redis_name     = "llm-redis"
  redis_port     = 6379
  redis_selector = { "app.kubernetes.io/name" = local.redis_name }
  redis_labels   = merge(local.common_labels, local.redis_selector, { "app.kubernetes.io/component" = "rate-limits" })
  redis_url      = "redis://${local.redis_name}.${var.namespace}.svc.cluster.local:${local.redis_port}/0"

  # Redis and PostgreSQL images both run as uid/gid 999.
  data_store_pod_security = {
    runAsNonRoot   = true
    runAsUser      = 999
    runAsGroup     = 999
    fsGroup        = 999
    seccompProfile = { type = "RuntimeDefault" }
  }
}

resource "kubectl_manifest" "redis_deployment" {
  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.redis_name, namespace = var.namespace, labels = local.redis_labels }
    spec = {
      replicas = 1
      selector = { matchLabels = local.redis_selector }
      strategy = { type = "Recreate" }
      template = {
        metadata = { labels = local.redis_labels }
        spec = {
          automountServiceAccountToken = false
          securityContext              = local.data_store_pod_security
          containers = [{
            name  = "redis"
            image = var.redis.image
            args = [
              "--port", tostring(local.redis_port), "--save", "", "--appendonly", "no", "--protected-mode", "no",
              "--maxmemory", var.redis.maxmemory, "--maxmemory-policy", "volatile-lru",
            ]
            ports = [{ name = "redis", containerPort = local.redis_port }]
            resources = {
              requests = { cpu = var.redis.cpu_request, memory = var.redis.memory_request }
              limits   = { cpu = "1", memory = var.redis.memory_limit }
            }
            readinessProbe  = { exec = { command = ["redis-cli", "ping"] }, periodSeconds = 5 }
            livenessProbe   = { tcpSocket = { port = "redis" }, periodSeconds = 10 }
            securityContext = local.restricted_container_security
            volumeMounts    = [{ name = "data", mountPath = "/data" }]
          }]
          volumes = [{ name = "data", emptyDir = { sizeLimit = "64Mi" } }]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.namespace]
}

resource "kubectl_manifest" "redis_service" {
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = local.redis_name, namespace = var.namespace, labels = local.redis_labels }
    spec = {
      selector = local.redis_selector
      ports    = [{ name = "redis", port = local.redis_port, targetPort = "redis" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# Only the gateway talks to Redis.
resource "kubectl_manifest" "redis_network_policy" {
  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${local.redis_name}-ingress", namespace = var.namespace, labels = local.redis_labels }
    spec = {
      podSelector = { matchLabels = local.redis_selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from  = [{ podSelector = { matchLabels = local.gateway_selector } }]
        ports = [{ protocol = "TCP", port = local.redis_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
