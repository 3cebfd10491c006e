# The catalogue's self-hosted models (var.models, engine vllm or cpu), each an OpenAI-compatible server:
# one Deployment `model-<name>` (its replicas), a headless Service of the same name and an ingress
# NetworkPolicy. vllm models run vLLM on GPU nodes (var.vllm), cpu models the llama.cpp model server
# (var.cpu_model_server: the image holds each model's source under /models). openai models run nothing here.
#
# Each Service is headless: its EndpointSlices list every Pod, and the gateway balances over the Pods
# themselves (least outstanding requests, health checks and ejection per replica) instead of over one
# virtual IP that would hide which replica failed.

locals {
  model_port = 8000

  # The catalogue as the gateway and the ModelCatalogue see it: an openai model without an API key is
  # published disabled (it answers 503 model_disabled; tenants may still name it, e.g. as their fallback).
  catalogue = { for name, model in var.models : name => merge(model, {
    enabled = model.enabled && (model.engine != "openai" || local.openai_enabled)
  }) }
  self_hosted_models = { for name, model in local.catalogue : name => model if contains(["vllm", "cpu"], model.engine) }

  # Per model: its Deployment's and Service's name, selector and labels.
  model_servers = { for name, model in local.self_hosted_models : name => {
    service  = "model-${name}"
    selector = { "app.kubernetes.io/name" = "model-${name}" }
    labels = merge(local.common_labels, {
      "app.kubernetes.io/name"      = "model-${name}"
      "app.kubernetes.io/component" = "model-server"
      "llm-tenants.io/model"        = name
    })
  } }

  model_pod_security = {
    runAsNonRoot   = true
    runAsUser      = 10001
    runAsGroup     = 10001
    seccompProfile = { type = "RuntimeDefault" }
  }
  # Both servers answer /health once their model is loaded; loading a model on a GPU node takes minutes,
  # so the startup probe allows 20.
  model_probes = {
    startupProbe   = { httpGet = { path = "/health", port = "http" }, periodSeconds = 2, failureThreshold = 600 }
    readinessProbe = { httpGet = { path = "/health", port = "http" }, periodSeconds = 5 }
    livenessProbe  = { httpGet = { path = "/health", port = "http" }, periodSeconds = 15, failureThreshold = 4 }
  }
  model_ports = [{ name = "http", containerPort = local.model_port }]

  # (Through JSON: the two engines' Pod specs have different shapes, which a conditional cannot return as such.)
  model_pod_specs = { for name, model in local.self_hosted_models : name => jsondecode(model.engine == "vllm" ? jsonencode({
    nodeSelector = var.vllm.node_selector
    tolerations  = [for t in var.vllm.tolerations : { for k, v in t : k => v if v != null }]
    volumes = [
      { name = "shm", emptyDir = { medium = "Memory", sizeLimit = "2Gi" } },
      { name = "cache", emptyDir = {} },
    ]
    containers = [merge(local.model_probes, {
      name  = "vllm"
      image = var.vllm.image
      args = concat(
        ["--model", model.source, "--served-model-name", coalesce(model.served_name, name), "--port", tostring(local.model_port),
        "--max-model-len", tostring(model.context_length)],
        model.max_sequences == null ? [] : ["--max-num-seqs", tostring(model.max_sequences)],
        var.vllm.extra_args,
      )
      ports = local.model_ports
      resources = {
        requests = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(model.gpus) }
        limits   = { cpu = var.vllm.cpu, memory = var.vllm.memory, "nvidia.com/gpu" = tostring(model.gpus) }
      }
      volumeMounts = [{ name = "shm", mountPath = "/dev/shm" }, { name = "cache", mountPath = "/root/.cache" }]
    })]
    }) : jsonencode({
    automountServiceAccountToken = false
    securityContext              = local.model_pod_security
    containers = [merge(local.model_probes, {
      name  = "model-server"
      image = var.cpu_model_server.image
      args = concat(
        ["--model", "/models/${model.source}", "--model_alias", coalesce(model.served_name, name), "--n_ctx", tostring(model.context_length)],
        # An embedding model decodes a batch of inputs together, up to n_batch tokens.
        model.kind == "embedding" ? ["--embedding", "true", "--n_batch", tostring(model.context_length)] : [],
        ["--host", "0.0.0.0", "--port", tostring(local.model_port), "--interrupt_requests", "false",
        "--n_threads", tostring(var.cpu_model_server.threads)],
      )
      ports = local.model_ports
      resources = {
        requests = { cpu = var.cpu_model_server.cpu_request, memory = var.cpu_model_server.memory_request }
        limits   = { cpu = var.cpu_model_server.cpu_limit, memory = var.cpu_model_server.memory_limit }
      }
      securityContext = local.restricted_container_security
    })]
  })) }
}

resource "kubectl_manifest" "model_deployments" {
  for_each = local.model_servers

  yaml_body = yamlencode({
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = each.value.service, namespace = var.namespace, labels = each.value.labels }
    spec = {
      replicas = local.self_hosted_models[each.key].replicas
      selector = { matchLabels = each.value.selector }
      template = {
        metadata = {
          labels      = merge(each.value.labels, { "llm-tenants.io/engine" = local.self_hosted_models[each.key].engine })
          annotations = merge(local.scrape_annotations, { "prometheus.io/port" = tostring(local.model_port) })
        }
        spec = local.model_pod_specs[each.key]
      }
    }
  })
  wait_for_rollout = var.wait_for_rollout
  depends_on       = [kubectl_manifest.namespace]

  # A model leaving the catalogue goes after the catalogue's update (catalogue.tf), which the API server refuses
  # while a tenant names the model: refused, its server keeps running. (Terraform removes a dependency before
  # updating what depends on it, unless the dependency is create_before_destroy; a model's objects are never
  # replaced under the same name, so creating first cannot collide.)
  lifecycle {
    create_before_destroy = true
  }
}

# Headless: no virtual IP, the EndpointSlices name each Pod (the gateway reads them, see gateway.tf).
resource "kubectl_manifest" "model_services" {
  for_each = local.model_servers

  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = each.value.service, namespace = var.namespace, labels = each.value.labels }
    spec = {
      clusterIP = "None"
      selector  = each.value.selector
      ports     = [{ name = "http", port = local.model_port, targetPort = "http" }]
    }
  })
  depends_on = [kubectl_manifest.namespace]

  lifecycle {
    create_before_destroy = true # see model_deployments
  }
}

# Only the gateway (and Prometheus) talk to the model servers.
resource "kubectl_manifest" "model_network_policies" {
  for_each = local.model_servers

  yaml_body = yamlencode({
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "${each.value.service}-ingress", namespace = var.namespace, labels = each.value.labels }
    spec = {
      podSelector = { matchLabels = each.value.selector }
      policyTypes = ["Ingress"]
      ingress = [{
        from = [
          { podSelector = { matchLabels = local.gateway_selector } },
          { podSelector = { matchLabels = local.prometheus_selector } },
        ]
        ports = [{ protocol = "TCP", port = local.model_port }]
      }]
    }
  })
  depends_on = [kubectl_manifest.namespace]

  lifecycle {
    create_before_destroy = true # see model_deployments
  }
}
