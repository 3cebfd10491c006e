# The self-hosted model pool and the embedding servers, both OpenAI-compatible.
#
# Pool: vLLM on GPU nodes (model_pool.server = "vllm") or, on clusters without GPUs, the CPU model
# server (llama.cpp with SmolLM2-135M-Instruct, the same API). Embeddings: all-MiniLM-L6-v2 on the
# CPU model server image, so tenant documents work without an OpenAI key.
#
# Each has a headless Service: its EndpointSlices list every Pod, and the gateway balances over the
# Pods themselves (least outstanding requests, health checks and ejection per replica) instead of
# over one virtual IP that would hide which replica failed.

locals {
  pool_name     = "llm-model-pool"
  pool_port     = 8000
  pool_enabled  = var.model_pool.server != "none"
  pool_selector = { "app.kubernetes.io/name" = local.pool_name }
  pool_labels   = merge(local.common_labels, local.pool_selector, { "app.kubernetes.io/component" = "model-pool" })

  embeddings_name     = "llm-embeddings"
  embeddings_model    = "all-minilm-l6-v2"
  embeddings_in_pool  = var.embeddings.backend == "pool"
  embeddings_selector = { "app.kubernetes.io/name" = local.embeddings_name }
  embeddings_labels   = merge(local.common_labels, local.embeddings_selector, { "app.kubernetes.io/component" = "embeddings" })

  # The model Deployments that run here, by name (= their Service and selector), with their labels.
  model_services = merge(
    local.pool_enabled ? { (local.pool_name) = local.pool_labels } : {},
    local.embeddings_in_pool ? { (local.embeddings_name) = local.embeddings_labels } : {},
  )

  # The CPU model server's image holds both models (tenantctl/images/model-server.Dockerfile).
  cpu_model_server_args = ["--host", "0.0.0.0", "--port", tostring(local.pool_port), "--interrupt_requests", "false",
  "--n_threads", tostring(var.cpu_model_server.threads)]
  model_pod_security = {
    runAsNonRoot   = true
    runAsUser      = 10001
    runAsGroup     = 10001
    seccompProfile = { type = "RuntimeDefault" }
  }
  # Both servers answer /health once their model is loaded.
  model_probes = {
    startupProbe   = { httpGet = { path = "/health", port = "http" }, periodSeconds = 2, failureThreshold = 600 }
    readinessProbe = { httpGet = { path = "/health", port = "http" }, periodSeconds = 5 }
    livenessProbe  = { httpGet = { path = "/health", port = "http" }, periodSeconds = 15, failureThreshold = 4 }
  }

  vllm_container = {
    name  = "vllm"
    image = var.vllm.image
    args = concat(
      ["--model", var.vllm.model, "--served-model-name", var.model_pool.served_model, "--port", tostring(local.pool_port)],
      var.model_pool.max_sequences == null ? [] : ["--max-num-seqs", tostring(var.model_pool.max_sequences)],
      var.vllm.extra_args,
    )
    resources = {
      requests = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(var.vllm.gpus) }
      limits   = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(var.vllm.gpus) }
    }
    volumeMounts = [{ name = "shm", mountPath = "/dev/shm" }, { name = "cache", mountPath = "/root/.cache" }]
  }
  cpu_pool_container = {
    name  = "model-server"
    image = var.cpu_model_server.image
    args = concat(["--model", "/models/chat.gguf", "--model_alias", var.model_pool.served_model, "--n_ctx", "2048"],
    local.cpu_model_server_args)
    resources = {
      requests = { cpu = var.cpu_model_server.cpu_request, memory = var.cpu_model_server.memory_request }
      limits   = { cpu = var.cpu_model_server.cpu_limit, memory = var.cpu_model_server.memory_limit }
    }
    securityContext = local.restricted_container_security
  }
  # (Through JSON: the two Pod specs have different shapes, which a conditional cannot return as such.)
  pool_pod_spec = jsondecode(var.model_pool.server == "vllm" ? jsonencode({
    # Loading a model takes minutes on a GPU node: the startup probe allows 20 minutes.
    nodeSelector = var.vllm.node_selector
    tolerations  = [for t in var.vllm.tolerations : { for k, v in t : k => v if v != null }]
    volumes = [
      { name = "shm", emptyDir = { medium = "Memory", sizeLimit = "2Gi" } },
      { name = "cache", emptyDir = {} },
    ]
    containers = [merge(local.vllm_container, local.model_probes, { ports = [{ name = "http", containerPort = local.pool_port }] })]
    }) : jsonencode({
    automountServiceAccountToken = false
    securityContext              = local.model_pod_security
    containers = [merge(local.cpu_pool_container, local.model_probes, {
      ports = [{ name = "http", containerPort = local.pool_port }]
    })]
  }))
}

resource "kubectl_manifest" "pool_deployment" {
  count = local.pool_enabled ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.pool_name, namespace = var.namespace, labels = local.pool_labels }
    spec = {
      replicas = var.model_pool.replicas
      selector = { matchLabels = local.pool_selector }
      template = {
        metadata = {
          labels      = merge(local.pool_labels, { "llm-tenants.io/model-server" = var.model_pool.server })
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.pool_port) })
        }
        spec = local.pool_pod_spec
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.namespace]

  lifecycle {
    precondition {
      condition     = var.model_pool.server != "cpu" || var.model_pool.replicas <= 8
      error_message = "model_pool.replicas: the CPU model server is a stand-in for small clusters; use vllm for more than 8 replicas."
    }
  }
}

resource "kubectl_manifest" "embeddings_deployment" {
  count = local.embeddings_in_pool ? 1 : 0

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = local.embeddings_name, namespace = var.namespace, labels = local.embeddings_labels }
    spec = {
      replicas = var.embeddings.replicas
      selector = { matchLabels = local.embeddings_selector }
      template = {
        metadata = {
          labels      = local.embeddings_labels
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.pool_port) })
        }
        spec = {
          automountServiceAccountToken = false
          securityContext              = local.model_pod_security
          containers = [merge(local.model_probes, {
            name  = "embedding-server"
            image = var.cpu_model_server.image
            # BERT's context is 512 tokens; a batch of inputs is decoded together up to n_batch tokens.
            args = concat(["--model", "/models/embedding.gguf", "--model_alias", local.embeddings_model,
            "--embedding", "true", "--n_ctx", "512", "--n_batch", "512"], local.cpu_model_server_args)
            ports = [{ name = "http", containerPort = local.pool_port }]
            resources = {
              requests = { cpu = var.embeddings.cpu_request, memory = var.embeddings.memory_request }
              limits   = { cpu = var.cpu_model_server.cpu_limit, memory = var.cpu_model_server.memory_limit }
            }
            securityContext = local.restricted_container_security
          })]
        }
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.namespace]
}

# Headless: no virtual IP, the EndpointSlices name each Pod (the gateway reads them, see gateway.tf).
resource "kubectl_manifest" "model_services" {
  for_each = local.model_services

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = each.key, namespace = var.namespace, labels = each.value }
    spec = {
      clusterIP = "None"
      selector  = { "app.kubernetes.io/name" = each.key }
      ports     = [{ name = "http", port = local.pool_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}

# Only the gateway (and Prometheus) talk to the model servers.
resource "kubectl_manifest" "model_network_policies" {
  for_each = local.model_services

  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${each.key}-ingress", namespace = var.namespace, labels = each.value }
    spec = {
      podSelector = { matchLabels = { "app.kubernetes.io/name" = each.key } }
      policyTypes = ["Ingress"]
      ingress = [{
        from = [
          { podSelector = { matchLabels = local.gateway_selector } },
          { podSelector = { matchLabels = local.prometheus_selector } },
        ]
        ports = [{ protocol = "TCP", port = local.pool_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]
}
